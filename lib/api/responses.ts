/** Response bodies in IVA's shape, so a client written for IVA reads ours unchanged. */
import { IVA_VERSION } from '../iva/protocol';
import type { ApiError } from './errors';
import type { ApiResponse } from './types';

export const SUBMISSION_ID_HEADER = 'x-iva-bridge-submission-id';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

export interface Meta {
  /** IVA's action name for submissions; our operation name otherwise. */
  action: string;
  version?: string;
  requestId: string;
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export function errorResponse(error: ApiError, meta: Meta, extra: { submissionId?: string } = {}): ApiResponse {
  const headers: Record<string, string> = { ...error.headers };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  if (extra.submissionId) headers[SUBMISSION_ID_HEADER] = extra.submissionId;
  return json(
    error.httpStatus,
    {
      ResponseMetadata: {
        RequestId: error.requestId ?? meta.requestId,
        Action: meta.action,
        Version: meta.version ?? IVA_VERSION,
        Error: { Code: error.code, Message: error.message },
      },
      ...(extra.submissionId ? { SubmissionId: extra.submissionId } : {}),
    },
    headers,
  );
}
