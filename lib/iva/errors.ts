/** All errors of the IVA client. Classification follows docs/iva-api.md (gateway error codes). */

const RETRYABLE_CODES = new Set([
  'FlowLimitExceeded',
  'AccountFlowLimitExceeded',
  'InternalError',
  'FailToConnect',
  'InternalServiceError',
  'ServiceUnavailableTemp',
  'InternalServiceTimeout',
]);

/** Codes that a fresh X-Date fixes: re-signed once, never retried blindly. */
export const RESIGN_CODES = new Set(['InvalidTimestamp']);

/**
 * IVA refusing the caller's own keys or their permissions. No retry can fix these,
 * whatever HTTP status carries them: a wrong key or signature stays wrong, and retrying
 * only burns the budget (and the rate limit).
 */
export const CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKey',
  'InvalidClientTokenId',
  'InvalidSecretToken',
  'InvalidCredential',
  'InvalidAuthorization',
  'MissingAuthenticationToken',
  'MissingSignature',
  'AccessDenied',
  'LackPolicy',
]);

/** The client's code when the credentials provider itself fails (Secrets Manager down). */
export const CREDENTIALS_UNAVAILABLE = 'CredentialsUnavailable';

export function isRetryableCode(code: string, httpStatus?: number): boolean {
  if (CREDENTIAL_CODES.has(code) || RESIGN_CODES.has(code)) return false;
  if (RETRYABLE_CODES.has(code)) return true;
  // Unknown codes: trust the HTTP status class the gateway chose.
  return httpStatus !== undefined && (httpStatus === 429 || httpStatus >= 500);
}

export interface IvaErrorDetails {
  code: string;
  message: string;
  requestId?: string;
  httpStatus?: number;
  retryable?: boolean;
  cause?: unknown;
}

export class IvaError extends Error {
  override readonly name: string = 'IvaError';
  readonly code: string;
  readonly requestId: string | undefined;
  readonly httpStatus: number | undefined;
  /** Whether sending the same request again can succeed. */
  readonly retryable: boolean;
  /** The message alone, without the code and RequestId that `message` adds. */
  readonly detail: string;

  constructor(details: IvaErrorDetails) {
    super(`${details.code}: ${details.message}${details.requestId ? ` (RequestId ${details.requestId})` : ''}`, {
      cause: details.cause,
    });
    this.detail = details.message;
    this.code = details.code;
    this.requestId = details.requestId;
    this.httpStatus = details.httpStatus;
    this.retryable = details.retryable ?? isRetryableCode(details.code, details.httpStatus);
  }

  toJSON(): { code: string; message: string; requestId?: string; httpStatus?: number; retryable: boolean } {
    return {
      code: this.code,
      message: this.message,
      requestId: this.requestId,
      httpStatus: this.httpStatus,
      retryable: this.retryable,
    };
  }
}

/** The connection failed or was dropped before IVA answered. Always retryable. */
export class IvaNetworkError extends IvaError {
  override readonly name = 'IvaNetworkError';
  constructor(message: string, cause?: unknown) {
    super({ code: 'NetworkError', message, retryable: true, cause });
  }
}

/** One attempt took longer than the per-call timeout. */
export class IvaTimeoutError extends IvaError {
  override readonly name = 'IvaTimeoutError';
  constructor(timeoutMs: number) {
    super({ code: 'Timeout', message: `IVA did not answer within ${timeoutMs} ms`, retryable: true });
  }
}

/** IVA answered something that is not its JSON response shape. */
export class IvaProtocolError extends IvaError {
  override readonly name = 'IvaProtocolError';
  constructor(message: string, httpStatus?: number) {
    super({ code: 'InvalidResponse', message, httpStatus, retryable: httpStatus === undefined || httpStatus >= 500 });
  }
}

/**
 * Retryable failures went on until the caller's time budget ran out. Carries the last
 * failure's fields so callers can record them; still `retryable` (a later delivery may work).
 */
export class IvaBudgetExceededError extends IvaError {
  override readonly name = 'IvaBudgetExceededError';
  readonly attempts: number;
  readonly lastError: IvaError;
  constructor(lastError: IvaError, attempts: number) {
    super({
      code: lastError.code,
      message: `${lastError.detail} (gave up after ${attempts} attempts within the time budget)`,
      requestId: lastError.requestId,
      httpStatus: lastError.httpStatus,
      retryable: true,
      cause: lastError,
    });
    this.attempts = attempts;
    this.lastError = lastError;
  }
}

/** The caller's input cannot be sent (empty TaskID, file size mismatch, unreadable file…). */
export class IvaInputError extends IvaError {
  override readonly name = 'IvaInputError';
  constructor(code: string, message: string, cause?: unknown) {
    super({ code, message, retryable: false, cause });
  }
}

/** The caller's AbortSignal fired. */
export class IvaAbortedError extends IvaError {
  override readonly name = 'IvaAbortedError';
  constructor(cause?: unknown) {
    super({ code: 'Aborted', message: 'the submission was aborted by the caller', retryable: false, cause });
  }
}

/**
 * Our own keys are the problem, not the request: IVA refused them, or they could not
 * be loaded. Callers keep the work for later and re-read the secret rather than fail it.
 */
export function isCredentialProblem(error: IvaError): boolean {
  return CREDENTIAL_CODES.has(error.code) || error.code === CREDENTIALS_UNAVAILABLE;
}
