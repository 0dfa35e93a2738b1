/**
 * POST /v1/images, /v1/videos and the vendor-compatible `POST /?Action=…`: a multipart
 * body in IVA's own format, validated, recorded in the ledger, and submitted to IVA
 * with Source=file (the file part's chunks, views of the one decoded body buffer: the
 * file is never copied) or Source=url.
 *
 * Memory per request: the event's base64 text (given), the decoded body (≈1× the
 * file), and the IVA client's small framing buffers — nothing else scales with the file.
 */
import { randomUUID } from 'node:crypto';
import { IvaAmbiguousError, IvaError } from '../iva/errors';
import { IVA_VERSION, KIND_PROTOCOL } from '../iva/protocol';
import type { SubmitInput } from '../iva/types';
import { countFailure, METRIC, MetricUnit } from '../observability';
import { MultipartError, type ParsedForm, parseMultipart } from '../multipart-parser/index';
import { decodeBody, header } from './body';
import { ApiError } from './errors';
import { errorResponse, json, SUBMISSION_ID_HEADER } from './responses';
import type { Route } from './router';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';
import { fingerprint, withIdempotency } from './idempotency';
import { isCredentialRejection, mapIvaError } from './upstream';
import {
  checkMultipartContentType,
  fromMultipartError,
  MAX_REQUEST_FIELD_BYTES,
  validateDirect,
  type DirectSubmission,
} from './validate';

/** API Gateway REST APIs cut integrations at 29 s; keep time to record and answer. */
export const DEFAULT_MAX_BUDGET_MS = 27_000;
export const DEFAULT_BUDGET_MARGIN_MS = 1_500;
/** Below this there is no point calling IVA at all. */
const MIN_BUDGET_MS = 200;

export function newSubmissionId(source: 'api' | 'upload'): string {
  return `${source === 'api' ? 'api' : 'upl'}_${randomUUID()}`;
}

/**
 * Time left to call IVA: the gateway's budget counted from when API Gateway received the
 * request (its 29 s include the body upload and a cold start; handler entry would start
 * the clock late and let IVA accept after the client already got a 504), and never past
 * what Lambda itself allows. A receive time in the future (clock skew between API
 * Gateway and the function) counts as now.
 */
export function submitBudgetMs(deps: ApiDeps, req: ApiRequest, startedAt: number): number {
  const margin = deps.config.budgetMarginMs ?? DEFAULT_BUDGET_MARGIN_MS;
  const now = Date.now();
  const since = Math.min(req.receivedAtMs ?? startedAt, startedAt, now);
  const gatewayLeft = (deps.config.maxBudgetMs ?? DEFAULT_MAX_BUDGET_MS) - (now - since);
  return Math.min(gatewayLeft, req.remainingMs() - margin);
}

function toSubmitInput(sub: DirectSubmission): SubmitInput {
  const source: SubmitInput['source'] =
    sub.source.type === 'url'
      ? { type: 'url', url: sub.source.url }
      : {
          type: 'file',
          // The views themselves: the client hashes and writes them in place.
          data: sub.source.chunks,
          contentType: sub.source.contentType,
          ...(sub.source.filename !== undefined ? { filename: sub.source.filename } : {}),
        };
  return {
    kind: sub.kind,
    taskId: sub.taskId,
    name: sub.name,
    ...(sub.desc !== undefined ? { desc: sub.desc } : {}),
    ...(sub.algoParamConf !== undefined ? { algoParamConf: sub.algoParamConf } : {}),
    source,
  };
}

/** Parses and validates; throws ApiError for every client mistake. */
export async function readDirectSubmission(
  req: ApiRequest,
  kind: DirectSubmission['kind'],
  maxBytes: number,
): Promise<DirectSubmission> {
  const contentType = checkMultipartContentType(header(req, 'content-type'));
  const body = decodeBody(
    req,
    maxBytes,
    (size) =>
      new ApiError(
        'PayloadTooLarge',
        `The body is ${size} bytes; direct submissions take at most ${maxBytes} bytes (API Gateway and Lambda payload limits). For larger files call POST /v1/uploads for a presigned PUT URL, then PUT the file there.`,
      ),
  );
  let form: ParsedForm;
  try {
    form = await parseMultipart(body, contentType, { maxFieldBytes: MAX_REQUEST_FIELD_BYTES });
  } catch (error) {
    if (error instanceof MultipartError) throw fromMultipartError(error);
    throw error;
  }
  return validateDirect(form, kind);
}

export async function handleSubmit(
  req: ApiRequest,
  route: Extract<Route, { op: 'submit' }>,
  deps: ApiDeps,
  startedAt = Date.now(),
): Promise<ApiResponse> {
  const sub = await readDirectSubmission(req, route.kind, deps.config.directMaxBytes);
  const id = (deps.newId ?? newSubmissionId)('api');
  const print = (): string =>
    fingerprint(
      `${req.method.toUpperCase()} ${req.resource ?? req.path} ${route.kind}`,
      {
        taskId: sub.taskId,
        name: sub.name,
        desc: sub.desc ?? null,
        algoParamConf: sub.algoParamConf ?? null,
        source:
          sub.source.type === 'url'
            ? { type: 'url', url: sub.source.url }
            : { type: 'file', filename: sub.source.filename ?? null, contentType: sub.source.contentType },
      },
      sub.source.type === 'file' ? [sub.source.chunks] : [],
    );
  return withIdempotency(req, deps, print, { submissionId: id }, () =>
    submitDirect(req, route, deps, startedAt, sub, id),
  );
}

async function submitDirect(
  req: ApiRequest,
  route: Extract<Route, { op: 'submit' }>,
  deps: ApiDeps,
  startedAt: number,
  sub: DirectSubmission,
  id: string,
): Promise<ApiResponse> {
  const log = deps.logger;
  log?.appendKeys({ submissionId: id, taskId: sub.taskId });

  const begun = await deps.ledger.begin({
    id,
    source: 'api',
    taskId: sub.taskId,
    kind: sub.kind,
    name: sub.name,
    ...(sub.desc !== undefined ? { desc: sub.desc } : {}),
    ...(req.caller ? { caller: req.caller } : {}),
  });
  if (begun.action !== 'proceed')
    throw new Error(`fresh submission id ${id} was already in the ledger (${begun.action})`);

  const meta = { action: route.action, version: IVA_VERSION, requestId: req.requestId };
  const input = toSubmitInput(sub);
  let refreshed = false;
  for (;;) {
    const budgetMs = submitBudgetMs(deps, req, startedAt);
    try {
      if (budgetMs < MIN_BUDGET_MS)
        throw new ApiError('UpstreamUnavailable', 'Not enough time left to call IVA; retry', { retryAfterSeconds: 1 });
      const result = await deps.iva.submit(input, {
        budgetMs,
        onRetry: (info) => {
          deps.metrics?.addMetric(METRIC.retried, MetricUnit.Count, 1);
          log?.warn('IVA call failed, retrying', {
            code: info.error.code,
            requestId: info.error.requestId,
            attempt: info.attempt,
            delayMs: info.delayMs,
          });
        },
      });
      log?.appendKeys({ dataId: result.dataId, requestId: result.requestId });
      try {
        await deps.ledger.markSubmitted(id, { dataId: result.dataId, requestId: result.requestId, kind: sub.kind });
      } catch (error) {
        // IVA has it: answering an error now would make the client submit it twice.
        log?.error('IVA accepted the submission but the ledger update failed', { error: (error as Error).message });
      }
      deps.metrics?.addMetric(METRIC.submitted, MetricUnit.Count, 1);
      log?.info('submitted to IVA', {
        attempts: result.attempts,
        source: sub.source.type,
        size: sub.source.type === 'file' ? sub.source.size : undefined,
      });
      return json(
        200,
        {
          ResponseMetadata: {
            RequestId: result.requestId,
            Action: route.action,
            Version: IVA_VERSION,
            Service: deps.config.ivaService,
            Region: deps.config.ivaRegion,
          },
          Result: { [KIND_PROTOCOL[sub.kind].idKey]: result.dataId, SubmissionId: id },
        },
        { [SUBMISSION_ID_HEADER]: id },
      );
    } catch (error) {
      // IVA may have it: record and say so; never `failed` + "retry", which makes a duplicate.
      if (error instanceof IvaAmbiguousError) return await answerUncertain(error, id, sub, meta, deps);
      // Our keys refused: most likely a rotation this container has not seen yet.
      if (isCredentialRejection(error) && !refreshed && deps.credentials) {
        refreshed = true;
        log?.warn('IVA refused our credentials; refreshing the secret and trying once more', {
          code: error.code,
          requestId: error.requestId,
        });
        try {
          await deps.credentials.refresh();
          continue;
        } catch (refreshError) {
          log?.error('refreshing the Volcengine credentials failed', { error: (refreshError as Error).message });
        }
      }
      return await answerFailure(error, id, meta, deps);
    }
  }
}

/** Where the owner reads an uncertain submission and how to resolve it; also used by the upload path. */
export function uncertainAdvice(id: string): string {
  return `It is recorded as uncertain under SubmissionId ${id} and will not be sent again automatically. Do not submit it again blindly: check GET /v1/submissions/${id} (a result callback that arrives is linked to it when you resolve it with its ImageID/VideoID), then POST /v1/submissions/${id}/resolve with {"Status":"submitted"} if IVA has it, or {"Status":"failed"} and submit it again as a new request`;
}

/**
 * The request reached IVA (or may have) but its answer was lost: `uncertain` in the
 * ledger with the cause and times, an `IVA Submission Uncertain` event, and a 202 that
 * says so. 202, not a 5xx: clients and SDKs retry 5xx on their own, which is exactly the
 * duplicate this state exists to prevent.
 */
async function answerUncertain(
  error: IvaAmbiguousError,
  id: string,
  sub: DirectSubmission,
  meta: { action: string; version: string; requestId: string },
  deps: ApiDeps,
): Promise<ApiResponse> {
  const sentAt = new Date(error.sentAt).toISOString();
  const failedAt = new Date(error.failedAt).toISOString();
  try {
    await deps.ledger.markUncertain(id, { code: error.code, message: error.detail, sentAt, failedAt });
  } catch (ledgerError) {
    deps.logger?.error('could not record the uncertain submission in the ledger', {
      error: (ledgerError as Error).message,
    });
  }
  deps.metrics?.addMetric(METRIC.uncertain, MetricUnit.Count, 1);
  deps.logger?.error('IVA may have the submission but its answer was lost; recorded uncertain', {
    code: error.code,
    sentAt,
    failedAt,
  });
  try {
    await deps.events?.publishSubmissionUncertain({
      submissionId: id,
      source: 'api',
      taskId: sub.taskId,
      kind: sub.kind,
      name: sub.name,
      code: error.code,
      message: error.detail,
      sentAt,
      failedAt,
    });
  } catch (eventError) {
    // The ledger holds the state; the event only announces it.
    deps.logger?.error('could not announce the uncertain submission', { error: (eventError as Error).message });
  }
  const answer = new ApiError(
    'SubmissionUncertain',
    `The submission was sent to IVA but its answer was lost (${error.message}); IVA may have accepted it. ${uncertainAdvice(id)}.`,
    { headers: { location: `/v1/submissions/${encodeURIComponent(id)}` }, cause: error },
  );
  return errorResponse(answer, meta, { submissionId: id });
}

async function answerFailure(
  error: unknown,
  id: string,
  meta: { action: string; version: string; requestId: string },
  deps: ApiDeps,
): Promise<ApiResponse> {
  let answer: ApiError;
  if (error instanceof IvaError) answer = mapIvaError(error);
  else if (error instanceof ApiError) answer = error;
  else {
    // A fault of ours (a bug, an unforeseen exception): the client gets a 500 and nothing
    // redelivers this request, so its record ends `failed` rather than `pending` for ever.
    await deps.ledger
      .markFailed(id, { code: 'InternalError', message: 'An internal error ended this submission; resubmit it' })
      .catch((ledgerError: unknown) =>
        deps.logger?.error('could not record the failure in the ledger', { error: (ledgerError as Error).message }),
      );
    countFailure(deps.metrics, 'InternalError');
    throw error;
  }
  // The ledger keeps IVA's own code and message; the client gets ours where they differ.
  const cause = error instanceof IvaError ? error : answer;
  const record = {
    code: cause.code,
    // The code and RequestId have fields of their own; IvaError's message repeats them.
    message: cause instanceof IvaError ? cause.detail : cause.message,
    ...(answer.requestId ? { requestId: answer.requestId } : {}),
  };
  try {
    // Nothing redelivers a direct submission: the client got our answer (503 + Retry-After
    // for retryable causes) and resubmits under a new id, so this one ends `failed` rather
    // than `pending` for ever. The code says whether a resubmission can help.
    await deps.ledger.markFailed(id, record);
  } catch (ledgerError) {
    deps.logger?.error('could not record the failure in the ledger', { error: (ledgerError as Error).message });
  }
  countFailure(deps.metrics, record.code);
  deps.logger?.warn('submission to IVA failed', {
    code: cause.code,
    requestId: answer.requestId,
    status: answer.httpStatus,
  });
  return errorResponse(answer, meta, { submissionId: id });
}
