/**
 * All errors of the IVA client. Which failures are retried, which end at once and which
 * are ambiguous (IVA may have the request): lib/iva/README.md.
 */

import { BridgeError } from '../errors';

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
  /** IVA may have processed the request (default false). Never retryable. */
  ambiguous?: boolean;
  cause?: unknown;
}

/**
 * IVA's answer (or the failure to get one). `httpStatus` is the status IVA answered;
 * `retryable` says whether sending the same request again can succeed without risking
 * a duplicate.
 */
export class IvaError extends BridgeError {
  override readonly name: string = 'IvaError';
  readonly requestId: string | undefined;
  /**
   * IVA may have received and processed the request: the answer was lost after the
   * body was (partly) sent. Never retried automatically; sending it again may make a
   * second submission at IVA.
   */
  readonly ambiguous: boolean;
  /** The message alone, without the code and RequestId that `message` adds. */
  readonly detail: string;

  constructor(details: IvaErrorDetails) {
    const ambiguous = details.ambiguous ?? false;
    super(
      details.code,
      `${details.code}: ${details.message}${details.requestId ? ` (RequestId ${details.requestId})` : ''}`,
      {
        httpStatus: details.httpStatus,
        retryable: ambiguous ? false : (details.retryable ?? isRetryableCode(details.code, details.httpStatus)),
        cause: details.cause,
      },
    );
    this.detail = details.message;
    this.requestId = details.requestId;
    this.ambiguous = ambiguous;
  }

  toJSON(): {
    code: string;
    message: string;
    requestId?: string;
    httpStatus?: number;
    retryable: boolean;
    ambiguous: boolean;
  } {
    return {
      code: this.code,
      message: this.message,
      requestId: this.requestId,
      httpStatus: this.httpStatus,
      retryable: this.retryable,
      ambiguous: this.ambiguous,
    };
  }
}

/** Codes of connection failures that another attempt within seconds cannot fix. */
export const HOST_NOT_FOUND = 'HostNotFound';
export const CERTIFICATE_REJECTED = 'CertificateRejected';

/** Node's codes for a name that does not exist (not a resolver that is briefly down: EAI_AGAIN). */
const HOST_NOT_FOUND_ERRNOS = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL']);
/** OpenSSL's verification failures as Node reports them, and Node's host-name check. */
const CERTIFICATE_ERRNOS = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
]);

/**
 * No byte of the request reached IVA: the connection (DNS, TCP, TLS) failed before it
 * was established. Retryable, except for a host name that does not exist and a
 * certificate that does not verify, which end at once (code HostNotFound / CertificateRejected).
 */
export class IvaNetworkError extends IvaError {
  override readonly name = 'IvaNetworkError';
  /** Node's error code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED…), when there is one. */
  readonly errno: string | undefined;
  constructor(message: string, cause?: unknown) {
    const errno =
      typeof (cause as { code?: unknown })?.code === 'string' ? (cause as { code: string }).code : undefined;
    const code =
      errno && HOST_NOT_FOUND_ERRNOS.has(errno)
        ? HOST_NOT_FOUND
        : errno && CERTIFICATE_ERRNOS.has(errno)
          ? CERTIFICATE_REJECTED
          : 'NetworkError';
    super({
      code,
      message: errno && !message.includes(errno) ? `${message} (${errno})` : message,
      retryable: code === 'NetworkError',
      cause,
    });
    this.errno = errno;
  }
}

/** No connection to IVA within the per-attempt timeout: nothing was sent. Retryable. */
export class IvaTimeoutError extends IvaError {
  override readonly name = 'IvaTimeoutError';
  constructor(timeoutMs: number, what = 'no connection to IVA') {
    super({ code: 'Timeout', message: `${what} within ${timeoutMs} ms`, retryable: true });
  }
}

/** Codes of the ambiguous failures. */
export const AMBIGUOUS_CODES = {
  /** The connection closed or reset after (part of) the request was sent, before a complete answer. */
  connectionLost: 'ConnectionLostAfterSend',
  /** The per-attempt timeout ran out after (part of) the request was sent. */
  timeout: 'TimeoutAfterSend',
  /** An answer came but it is not IVA's: not JSON, no error code, no data id, too large. */
  unreadable: 'UnreadableResponse',
} as const;

export type AmbiguousCode = (typeof AMBIGUOUS_CODES)[keyof typeof AMBIGUOUS_CODES];

/**
 * IVA may have received and processed the request, and we cannot tell: never retried
 * (retryable false, ambiguous true). The caller records it as `uncertain` and its owner
 * decides (resubmit, or mark it done). `sentAt`/`failedAt` bound when IVA may have got it.
 */
export class IvaAmbiguousError extends IvaError {
  override readonly name = 'IvaAmbiguousError';
  override readonly code: AmbiguousCode;
  /** When the connection that carried the request was ready to send (ms since epoch). */
  readonly sentAt: number;
  /** When the failure was seen (ms since epoch). */
  readonly failedAt: number;
  /** Attempts made, this one included (earlier ones failed without sending anything). */
  attempts = 1;
  constructor(
    code: AmbiguousCode,
    message: string,
    times: { sentAt: number; failedAt: number },
    extra: { httpStatus?: number; requestId?: string; cause?: unknown } = {},
  ) {
    super({ code, message, ambiguous: true, ...extra });
    this.code = code;
    this.sentAt = times.sentAt;
    this.failedAt = times.failedAt;
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
