/** What the client library throws. `code` is the API's stable error code (or a local one). */

export interface IvaBridgeErrorOptions {
  /** HTTP status of the answer, when there was one. */
  status?: number;
  /** The API's (or IVA's) RequestId, to quote when reporting a problem. */
  requestId?: string;
  /** True when the same call may succeed later (throttling, 5xx, network). */
  retryable?: boolean;
  submissionId?: string;
  cause?: unknown;
}

export class IvaBridgeError extends Error {
  override readonly name: string = 'IvaBridgeError';
  readonly code: string;
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  readonly retryable: boolean;
  readonly submissionId: string | undefined;

  constructor(code: string, message: string, options: IvaBridgeErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.requestId = options.requestId;
    this.retryable = options.retryable ?? false;
    this.submissionId = options.submissionId;
  }
}

/** The API could not be reached (or the connection dropped) after every retry. */
export class IvaBridgeNetworkError extends IvaBridgeError {
  override readonly name = 'IvaBridgeNetworkError';
  constructor(message: string, cause?: unknown) {
    super('NetworkError', message, { retryable: true, cause });
  }
}

/** Local input the client refuses before sending anything (a file it cannot read, no kind). */
export class IvaBridgeInputError extends IvaBridgeError {
  override readonly name = 'IvaBridgeInputError';
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** HTTP statuses worth retrying with the same Idempotency-Key. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}
