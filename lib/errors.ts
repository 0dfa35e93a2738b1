/**
 * The one base of every error iva-bridge throws on purpose. Each module's errors extend
 * it, set `name` to their class name and pass `cause` (the shape of Powertools'
 * idempotency `errors.ts`), so a caller reads the same four facts from any of them:
 *
 * - `code`: stable, machine-readable (clients and dashboards switch on it; never renamed).
 * - `httpStatus`: the status that goes with the error — the one iva-bridge answers for
 *   errors it raises on its routes, the one the remote answered for errors read from a
 *   remote (IVA), or `undefined` when no HTTP exchange is involved.
 * - `retryable`: whether doing the same thing again later can succeed.
 * - `cause`: the error underneath, when there is one (standard `Error.cause`).
 *
 * Messages are safe to show: never a secret, a signed URL, or a request body.
 */

export interface BridgeErrorOptions {
  /** @default undefined (no HTTP exchange) */
  httpStatus?: number;
  /** @default false */
  retryable?: boolean;
  cause?: unknown;
}

/** `C`: the module's own union of codes, so a switch over `code` is checked (default any string). */
export class BridgeError<C extends string = string> extends Error {
  override readonly name: string = 'BridgeError';
  readonly code: C;
  readonly httpStatus: number | undefined;
  readonly retryable: boolean;

  constructor(code: C, message: string, options: BridgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.httpStatus = options.httpStatus;
    this.retryable = options.retryable ?? false;
  }
}

export function isBridgeError(error: unknown): error is BridgeError {
  return error instanceof BridgeError;
}
