/**
 * Every error code the HTTP API answers, with its status. Codes are part of the API's
 * contract (clients switch on them): add new ones, never rename. IVA's own codes pass
 * through unchanged (see lib/api/upstream.ts) and are not listed here.
 */

import { BridgeError } from '../errors';

export const API_ERRORS = {
  // Routing
  RouteNotFound: 404,
  MissingAction: 400,
  InvalidActionOrVersion: 404,
  InvalidVersion: 400,
  // Body framing
  UnsupportedMediaType: 415,
  MissingBoundary: 400,
  InvalidBoundary: 400,
  InvalidContentType: 400,
  MissingBody: 400,
  MalformedMultipart: 400,
  MalformedPartHeader: 400,
  MissingPartName: 400,
  TruncatedMultipart: 400,
  TooManyParts: 400,
  PayloadTooLarge: 413,
  // The Request field
  MissingRequest: 400,
  DuplicateRequest: 400,
  RequestTooLarge: 400,
  InvalidRequestJson: 400,
  InvalidRequest: 400,
  MissingTaskID: 400,
  InvalidTaskID: 400,
  MissingImage: 400,
  MissingVideo: 400,
  MissingName: 400,
  InvalidName: 400,
  InvalidDesc: 400,
  InvalidSource: 400,
  MissingUrl: 400,
  InvalidUrl: 400,
  InvalidAlgoParamConf: 400,
  // The file part
  MissingFile: 400,
  UnexpectedFile: 400,
  WrongFilePart: 400,
  UnknownFilePart: 400,
  FileNotAFile: 400,
  TooManyFiles: 400,
  EmptyFile: 400,
  ImageTooLarge: 413,
  FileTooLarge: 413,
  // POST /v1/uploads
  InvalidJson: 400,
  InvalidKind: 400,
  InvalidSize: 400,
  InvalidContentTypeField: 400,
  MetadataTooLarge: 400,
  // Multipart uploads (POST /v1/uploads with parts, …/parts, …/complete, …/abort)
  InvalidMultipart: 400,
  InvalidPartSize: 400,
  InvalidPartNumbers: 400,
  InvalidParts: 400,
  /** S3 refused a part at completion: not uploaded, or its ETag is not the one given. */
  InvalidPart: 400,
  /** S3 refused a part other than the last for being under 5 MiB. */
  EntityTooSmall: 400,
  /** The submission is not a multipart upload (a single-PUT upload, a direct or S3 submission). */
  UploadNotMultipart: 409,
  /** The upload is no longer open: its object arrived, or it was aborted. */
  UploadClosed: 409,
  /** S3 holds no such multipart upload any more (aborted by the sweep or the bucket's lifecycle rule). */
  UploadNotFound: 404,
  // Status
  SubmissionNotFound: 404,
  InvalidCursor: 400,
  InvalidLimit: 400,
  InvalidStatus: 400,
  InvalidSubmissionId: 400,
  // Results
  ResultNotReady: 404,
  ResultNotFound: 404,
  InvalidResultId: 400,
  // Submissions whose fate at IVA is unknown (lib/iva/README.md)
  /** Not an error of the request: IVA may have it; answered 202 so that nothing resends it. */
  SubmissionUncertain: 202,
  /** resolve on a submission that is not `uncertain`. */
  SubmissionNotUncertain: 409,
  /** The body of POST /v1/submissions/{id}/resolve (or /resubmit). */
  InvalidResolution: 400,
  /** resubmit of a submission whose bytes came in the request: iva-bridge does not keep them. */
  ResubmitNeedsFile: 409,
  /** resubmit on a deployment with no intake queue configured. */
  ResubmitUnavailable: 503,
  // Idempotency-Key (lib/api/idempotency.ts)
  InvalidIdempotencyKey: 400,
  IdempotencyKeyReuse: 422,
  IdempotencyKeyInFlight: 409,
  // Request signing (lib/client-auth): the body does not hash to the X-Content-Sha256 the
  // authorizer verified. The authorizer's own refusals are gateway answers (infra/stack.ts).
  SignatureDoesNotMatch: 403,
  // Ours, not the client's fault
  UpstreamCredentialsRejected: 502,
  UpstreamCredentialsUnavailable: 503,
  UpstreamUnavailable: 503,
  UpstreamError: 502,
  InternalError: 500,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export interface ApiErrorOptions {
  /** Overrides the code's status (IVA passthrough). */
  httpStatus?: number;
  /** IVA's RequestId when the error is IVA's. */
  requestId?: string;
  /** Seconds, for 503s the client should retry. */
  retryAfterSeconds?: number;
  headers?: Record<string, string>;
  cause?: unknown;
}

/**
 * An error answered to the client as-is: `code` and `message` are safe to show,
 * `httpStatus` is the answer's status, `retryable` is true for 429/500/503 (the
 * client may send the same request again later).
 */
export class ApiError extends BridgeError {
  override readonly name = 'ApiError';
  declare readonly httpStatus: number;
  readonly requestId: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ApiErrorCode, message: string, options?: ApiErrorOptions);
  /** IVA's own code, passed through. */
  constructor(code: string, message: string, options: ApiErrorOptions & { httpStatus: number });
  constructor(code: string, message: string, options: ApiErrorOptions = {}) {
    const httpStatus = options.httpStatus ?? (API_ERRORS as Record<string, number>)[code] ?? 500;
    super(code, message, {
      httpStatus,
      retryable: httpStatus === 429 || httpStatus === 500 || httpStatus === 503,
      cause: options.cause,
    });
    this.requestId = options.requestId;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers ?? {};
  }
}

export function isApiError(error: unknown): error is ApiError {
  return error instanceof ApiError;
}
