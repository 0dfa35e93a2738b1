import { createHash } from 'node:crypto';
/**
 * The HTTP API behind API Gateway, as plain functions: `createApi(deps).handle(request)`.
 * Every failure a client can cause becomes a 4xx in IVA's error shape; only our own
 * faults (ledger down, bugs) become a 5xx, and never with internal details.
 */
import { handleSubmit } from './direct';
import { handleResolve } from './resolve';
import { handleResubmit } from './resubmit';
import { ApiError } from './errors';
import { errorResponse } from './responses';
import { route, UNKNOWN_ACTION, type Route } from './router';
import { handleGetResult, handleGetResultById, handleListResults } from './results';
import { handleGetSubmission, handleListSubmissions, handleListTaskSubmissions } from './status';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';
import { handleCreateUpload } from './uploads';
import { handleAbortUpload, handleCompleteUpload, handleUploadParts } from './multipart-uploads';

export * from './types';
export { ApiError, API_ERRORS, type ApiErrorCode } from './errors';
export { SUBMISSION_ID_HEADER } from './responses';
export { VIDEO_MAX_BYTES, uploadKey, sanitizeSegment } from './uploads';
export {
  DEFAULT_PART_BYTES,
  MULTIPART_MAX_BYTES,
  S3_MAX_PARTS,
  S3_MIN_PART_BYTES,
  planPartSize,
} from './multipart-uploads';
export { INLINE_RESULT_MAX_BYTES, RESULT_ID_HEADER, RESULT_URL_TTL_SECONDS } from './results';
export { newSubmissionId, DEFAULT_MAX_BUDGET_MS } from './direct';

export interface Api {
  handle(request: ApiRequest): Promise<ApiResponse>;
}

function dispatch(r: Route, req: ApiRequest, deps: ApiDeps, startedAt: number): Promise<ApiResponse> {
  switch (r.op) {
    case 'submit':
      return handleSubmit(req, r, deps, startedAt);
    case 'createUpload':
      return handleCreateUpload(req, deps);
    case 'uploadParts':
      return handleUploadParts(r.id, req, deps);
    case 'completeUpload':
      return handleCompleteUpload(r.id, req, deps);
    case 'abortUpload':
      return handleAbortUpload(r.id, deps);
    case 'getSubmission':
      return handleGetSubmission(r.id, deps);
    case 'getResult':
      return handleGetResult(r.id, deps);
    case 'listResults':
      return handleListResults(r.id, deps);
    case 'getResultById':
      return handleGetResultById(r.id, r.resultId, deps);
    case 'listTaskSubmissions':
      return handleListTaskSubmissions(r.taskId, req, deps);
    case 'listSubmissions':
      return handleListSubmissions(req, deps);
    case 'resolveSubmission':
      return handleResolve(r.id, req, deps);
    case 'resubmitSubmission':
      return handleResubmit(r.id, req, deps);
  }
}

/**
 * The authorizer verified the signature over X-Content-Sha256 but could not see the body:
 * the body that arrived must hash to it, else the request was altered on the way (or the
 * client signed another body) and nothing of it is used.
 */
function checkSignedBody(req: ApiRequest): void {
  if (req.signedBodySha256 === undefined) return;
  const hash = createHash('sha256');
  if (req.body)
    hash.update(req.body.base64 ? Buffer.from(req.body.text, 'base64') : Buffer.from(req.body.text, 'utf8'));
  if (hash.digest('hex') !== req.signedBodySha256)
    throw new ApiError(
      'SignatureDoesNotMatch',
      'The body does not match the signed X-Content-Sha256: sign the SHA-256 of the exact body bytes sent',
    );
}

export function createApi(deps: ApiDeps): Api {
  return {
    async handle(req) {
      const startedAt = Date.now();
      let action = UNKNOWN_ACTION;
      try {
        checkSignedBody(req);
        const r = route(req);
        action = r.action;
        return await dispatch(r, req, deps, startedAt);
      } catch (error) {
        const meta = { action, requestId: req.requestId };
        if (error instanceof ApiError) {
          deps.logger?.info('request refused', { code: error.code, status: error.httpStatus });
          return errorResponse(error, meta);
        }
        deps.logger?.error('unexpected error', {
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        });
        return errorResponse(
          new ApiError(
            'InternalError',
            `An internal error occurred; retry later and quote RequestId ${req.requestId} if it persists`,
          ),
          meta,
        );
      }
    },
  };
}
