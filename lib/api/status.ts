/** GET /v1/submissions/{id} and GET /v1/tasks/{TaskID}/submissions: the ledger, as users read it. */
import { InvalidCursorError } from '../ledger/errors';
import { KIND_PROTOCOL } from '../iva/protocol';
import type { SubmissionRecord, SubmissionStatus } from '../ledger/types';
import { escapeForLog } from '../submission/validate';
import { ApiError } from './errors';
import { json } from './responses';
import { firstQuery } from './router';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';

export const DEFAULT_PAGE = 25;
export const MAX_PAGE = 100;

const CONTROL = /[\u0000-\u001f\u007f]/;

/** The public view of a ledger record: PascalCase like the rest of the API, no internals (lease, submitStatus). */
export function submissionView(r: SubmissionRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    SubmissionId: r.id,
    Status: r.status,
    Source: r.source,
    TaskID: r.taskId,
    Kind: r.kind,
    Name: r.name,
    Desc: r.desc,
  };
  if (r.dataId !== undefined)
    view[r.kind === 'video' || r.kind === 'image' ? KIND_PROTOCOL[r.kind].idKey : 'DataID'] = r.dataId;
  view['RequestId'] = r.requestId;
  if (r.error) view['Error'] = { Code: r.error.code, Message: r.error.message, RequestId: r.error.requestId };
  view['Attempts'] = r.attempts;
  view['CreatedAt'] = r.createdAt;
  view['UpdatedAt'] = r.updatedAt;
  view['SubmittedAt'] = r.submittedAt;
  if (r.result)
    view['Result'] = {
      Status: r.result.status,
      RawStatus: r.result.rawStatus,
      Location: r.result.location,
      ReceivedAt: r.result.receivedAt,
    };
  if (r.overdueAt) view['OverdueAt'] = r.overdueAt;
  if (r.expiredAt) view['ExpiredAt'] = r.expiredAt;
  if (r.uncertain)
    view['Uncertain'] = {
      Code: r.uncertain.code,
      Message: r.uncertain.message,
      SentAt: r.uncertain.sentAt,
      FailedAt: r.uncertain.failedAt,
    };
  if (r.resolution) view['Resolution'] = { Action: r.resolution.action, At: r.resolution.at, Note: r.resolution.note };
  if (r.caller)
    view['Caller'] =
      r.caller.auth === 'iam'
        ? { Auth: 'iam', Arn: r.caller.arn, AccountId: r.caller.accountId }
        : { Auth: 'client-key', Client: r.caller.client, AccessKeyId: r.caller.accessKeyId };
  if (r.object)
    view['Object'] = { Bucket: r.object.bucket, Key: r.object.key, VersionId: r.object.versionId, Size: r.object.size };
  return view;
}

/** The 400 every `/v1/submissions/{id}…` route answers for an id no submission can have. */
export function checkSubmissionId(id: string): void {
  if (id === '' || id.length > 256 || CONTROL.test(id))
    throw new ApiError('InvalidSubmissionId', 'The submission id must be 1-256 characters without control characters');
}

/** The record, or the 400/404 every `/v1/submissions/{id}…` route answers. */
export async function loadSubmission(id: string, deps: ApiDeps): Promise<SubmissionRecord> {
  checkSubmissionId(id);
  const record = await deps.ledger.get(id);
  if (!record)
    throw new ApiError(
      'SubmissionNotFound',
      `No submission with id "${id.slice(0, 80)}"; ids are returned as SubmissionId by POST /v1/images, /v1/videos and /v1/uploads`,
    );
  return record;
}

export async function handleGetSubmission(id: string, deps: ApiDeps): Promise<ApiResponse> {
  const record = await loadSubmission(id, deps);
  const view = submissionView(record);
  // Every stored callback of this data id, oldest first (the status follows RESULT_ORDER).
  const history = record.dataId === undefined ? [] : await deps.ledger.resultHistory(record.dataId);
  if (history.length > 0)
    view['Results'] = history.map((r) => ({
      Status: r.status,
      RawStatus: r.rawStatus,
      Location: r.location,
      ReceivedAt: r.receivedAt,
    }));
  return json(200, view);
}

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_PAGE;
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_PAGE) {
    throw new ApiError('InvalidLimit', `limit must be an integer from 1 to ${MAX_PAGE}, got "${raw.slice(0, 20)}"`);
  }
  return Number(raw);
}

export async function handleListTaskSubmissions(taskId: string, req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  if (taskId.trim() === '' || taskId.length > 256 || CONTROL.test(taskId))
    throw new ApiError('InvalidTaskID', 'The TaskID must be 1-256 characters without control characters');
  const limit = parseLimit(firstQuery(req, 'limit'));
  const cursor = firstQuery(req, 'cursor');
  try {
    const page = await deps.ledger.listByTask(taskId, { limit, ...(cursor ? { cursor } : {}) });
    return json(200, { Items: page.items.map(submissionView), ...(page.cursor ? { NextCursor: page.cursor } : {}) });
  } catch (error) {
    if (error instanceof InvalidCursorError)
      throw new ApiError(
        'InvalidCursor',
        `${error.message} (cursors are the NextCursor values of this same task's listing)`,
      );
    throw error;
  }
}

/** What `?status=` takes: the statuses users see (docs: the README's status list). */
const LISTABLE_STATUSES: readonly SubmissionStatus[] = [
  'pending',
  'submitted',
  'completed',
  'failed',
  'uncertain',
  'overdue',
  'expired',
];

/** GET /v1/submissions?status=…: every task's submissions in one status, newest first. */
export async function handleListSubmissions(req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  const status = firstQuery(req, 'status');
  const known = LISTABLE_STATUSES.find((s) => s === status);
  if (!known)
    throw new ApiError(
      'InvalidStatus',
      `status is required and must be one of ${LISTABLE_STATUSES.join(', ')}${status === undefined ? '' : `, got "${escapeForLog(status, 20)}"`}`,
    );
  const limit = parseLimit(firstQuery(req, 'limit'));
  const cursor = firstQuery(req, 'cursor');
  try {
    const page = await deps.ledger.listByStatus(known, { limit, ...(cursor ? { cursor } : {}) });
    return json(200, { Items: page.items.map(submissionView), ...(page.cursor ? { NextCursor: page.cursor } : {}) });
  } catch (error) {
    if (error instanceof InvalidCursorError)
      throw new ApiError('InvalidCursor', `${error.message} (cursors are the NextCursor values of this same listing)`);
    throw error;
  }
}
