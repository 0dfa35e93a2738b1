/**
 * How IVA's failures reach our client. The client never
 * signs towards IVA: our keys being refused is OUR fault (502/503), never a 4xx.
 */
import { CREDENTIAL_CODES, CREDENTIALS_UNAVAILABLE, IvaError, IvaInputError } from '../iva/errors';
import { ApiError } from './errors';

/** Codes IVA sends about the request's content: the client's to fix, whatever the HTTP status. */
const CLIENT_CODES = new Set(['InvalidParameter', 'MissingParameter', 'MissingRequestInfo']);

/** Our own client's codes for failures that never reached IVA. */
const TRANSPORT_CODES = new Set(['NetworkError', 'Timeout', 'HostNotFound', 'CertificateRejected']);

export const RETRY_AFTER_THROTTLED_SECONDS = 2;
export const RETRY_AFTER_SECONDS = 5;

export function isCredentialRejection(error: unknown): error is IvaError {
  return error instanceof IvaError && CREDENTIAL_CODES.has(error.code);
}

export function mapIvaError(error: IvaError): ApiError {
  const requestId = error.requestId;
  const opts = requestId ? { requestId, cause: error } : { cause: error };
  if (error.code === CREDENTIALS_UNAVAILABLE) {
    return new ApiError(
      'UpstreamCredentialsUnavailable',
      'The service could not load its IVA credentials; this is not a problem with your request. Retry later.',
      { ...opts, retryAfterSeconds: RETRY_AFTER_SECONDS },
    );
  }
  if (CREDENTIAL_CODES.has(error.code)) {
    return new ApiError(
      'UpstreamCredentialsRejected',
      `IVA refused this service's credentials (${error.code}); this is not a problem with your request. The operator must check the Volcengine key secret. Retry later.`,
      opts,
    );
  }
  if (error instanceof IvaInputError) {
    return new ApiError(error.code, error.message, { httpStatus: 400, cause: error });
  }
  if (error.retryable) {
    const throttled = error.httpStatus === 429 || /FlowLimit/.test(error.code);
    const code = TRANSPORT_CODES.has(error.code) || !requestId ? 'UpstreamUnavailable' : error.code;
    const message =
      code === 'UpstreamUnavailable'
        ? `IVA is unavailable right now (${error.message}); retry later`
        : `${ivaMessage(error)}; retry later`;
    return new ApiError(code, message, {
      ...opts,
      httpStatus: 503,
      retryAfterSeconds: throttled ? RETRY_AFTER_THROTTLED_SECONDS : RETRY_AFTER_SECONDS,
    });
  }
  if (TRANSPORT_CODES.has(error.code)) {
    return new ApiError('UpstreamError', `IVA cannot be reached: ${error.message}`, opts);
  }
  const status =
    error.httpStatus !== undefined && error.httpStatus >= 400 && error.httpStatus < 500
      ? error.httpStatus
      : CLIENT_CODES.has(error.code)
        ? 400
        : 502;
  return new ApiError(error.code, ivaMessage(error), { ...opts, httpStatus: status });
}

/** IVA's own message, without the client's decorations (code prefix, RequestId suffix). */
export function ivaMessage(error: IvaError): string {
  let message = error.message;
  const prefix = `${error.code}: `;
  if (message.startsWith(prefix)) message = message.slice(prefix.length);
  if (error.requestId) message = message.replace(` (RequestId ${error.requestId})`, '');
  return message || error.code;
}
