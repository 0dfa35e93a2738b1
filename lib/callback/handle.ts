/**
 * One callback, start to finish: authenticate → read the body → store it verbatim →
 * record it in the ledger → publish its event → answer.
 *
 * Nothing is stored before the secret matched. Nothing is answered 2xx before the body
 * is in S3. Every later failure answers 503 so IVA retries, and a retry is safe: the key
 * is the body's hash (same object), the ledger is given the FIRST receipt time (read
 * back from the object's metadata, so re-recording changes nothing and never outranks
 * a newer callback), and the event is re-sent only if it was never confirmed.
 *
 * One event per stored body: the ledger keeps one history item per body (its SHA-256),
 * and only the delivery that wins a conditional claim on it publishes; `published` is
 * written after PutEvents. Another delivery waits for the holder (up to claimWaitMs),
 * then answers 503 rather than 200, because the holder might still crash. A failed
 * publish gives the claim back. The one window left: a crash after PutEvents and before
 * `published` lets a retry after the claim lease (30 s) publish again.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { sha256Hex } from '../signer/index';
import type { EventClaim, Ledger, ResultOutcome, ResultStatus } from '../ledger/types';
import {
  type LoggerPort,
  METRIC,
  type MetricsPort,
  MetricUnit,
  noMetrics,
  type ObservabilityDeps,
  silentLogger,
} from '../observability';
import { authorizeCallback } from './authorize';
import {
  CallbackError,
  EventInProgressError,
  LedgerUnavailableError,
  MalformedJsonError,
  NotFoundError,
} from './errors';
import type { EventPublisher } from './events';
import { identify, isMatchable, type CallbackIdentity } from './identify';
import { bodyBytes, MAX_CALLBACK_BYTES, mediaType, parseBody } from './parse';
import { awsErrorName } from '../aws/errors';
import { toWellFormed } from '../storage/wtf8';
import { placeResult, putOnce, type StoreOutcome, type UnmatchedReason } from './store';

/** Longer than the function's 15 s timeout: a live holder never loses its claim. */
export const DEFAULT_EVENT_CLAIM_MS = 30_000;
export const DEFAULT_CLAIM_WAIT_MS = 3_000;

/** `logger` and `metrics` (lib/observability): silent by default; the handler passes Powertools'. */
/** What filing a body needs (the inbox step has no secret to check). */
export type StoreDeps = Omit<CallbackDeps, 'secrets'>;

export interface CallbackDeps extends ObservabilityDeps {
  s3: S3Client;
  bucket: string;
  ledger: Ledger;
  /** The accepted secrets (current, and previous while rotating). */
  secrets: { get(): Promise<string[]> };
  publisher: EventPublisher;
  now?: () => Date;
  maxBytes?: number;
  /** How long a delivery owns a body's event before another may take over (default 30 s, over the 15 s timeout). */
  eventClaimMs?: number;
  /** How long a delivery waits for another one holding the claim before answering 503 (default 3 s). */
  claimWaitMs?: number;
}

export interface CallbackRequest {
  /** The `{secret}` path segment. */
  secret: string | undefined;
  body: string | null | undefined;
  isBase64Encoded?: boolean;
  contentType?: string;
  /** API Gateway's request id, kept in the object's metadata for tracing. */
  requestId?: string;
}

export interface CallbackAnswer {
  ok: true;
  /** `s3://bucket/key` of the stored body. */
  stored: string;
  /** True when this exact body had been stored before (a replay). */
  duplicate: boolean;
  /** Why the body was filed under `results/_unmatched/` (absent when it was matched). */
  unmatched?: UnmatchedReason;
}

export async function handleCallback(deps: CallbackDeps, request: CallbackRequest): Promise<CallbackAnswer> {
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? noMetrics;
  const count = (name: string) => metrics.addMetric(name, MetricUnit.Count, 1);
  count(METRIC.callbacksReceived);
  try {
    return await handle(deps, request, log, count, metrics);
  } catch (error) {
    if (error instanceof CallbackError && error.httpStatus < 500) count(METRIC.callbacksRejected);
    throw error;
  }
}

async function handle(
  deps: CallbackDeps,
  request: CallbackRequest,
  log: LoggerPort,
  count: (name: string) => void,
  metrics: MetricsPort,
): Promise<CallbackAnswer> {
  // The same decision as the callback route's authorizer (authorize.ts), logged the same way.
  if ((await authorizeCallback({ secrets: deps.secrets, logger: log }, request.secret)) === 'not-found')
    throw new NotFoundError();

  const bytes = bodyBytes(request, deps.maxBytes ?? MAX_CALLBACK_BYTES);
  return storeAndAnnounce(
    deps,
    {
      bytes,
      contentType: request.contentType,
      requestId: request.requestId,
      receivedAt: (deps.now?.() ?? new Date()).toISOString(),
    },
    log,
    count,
    metrics,
  );
}

/** One body, already authenticated and read: what both the inbox and the direct call store. */
export interface AcceptedBody {
  bytes: Buffer;
  /** The Content-Type the sender declared (undefined: none; the body is sniffed). */
  contentType?: string;
  /** API Gateway's request id, kept in the object's metadata for tracing. */
  requestId?: string;
  /** When API Gateway received it (ISO 8601); a replay keeps the first receipt's. */
  receivedAt: string;
}

/**
 * Store verbatim → record in the ledger → publish once. Throws MalformedJsonError (after
 * storing) for declared JSON that does not parse, a RetryableCallbackError for anything
 * transient; a retry of the same bytes is always safe.
 */
export async function storeAndAnnounce(
  deps: StoreDeps,
  request: AcceptedBody,
  log: LoggerPort,
  count: (name: string) => void,
  metrics: MetricsPort,
): Promise<CallbackAnswer> {
  const { bytes } = request;
  const parsed = parseBody(bytes, request.contentType);
  const identity: CallbackIdentity | undefined = parsed.malformed ? undefined : identifySafely(parsed.value, log);
  const sha256 = sha256Hex(bytes);
  const matchable = isMatchable(identity);
  const placement = placeResult(
    sha256,
    parsed.extension,
    matchable ? identity : {},
    parsed.malformed ? 'malformed-json' : identity?.dataId !== undefined ? 'data-id-too-long' : 'no-data-id',
  );
  const { key } = placement;
  const { receivedAt } = request;
  const contentType =
    request.contentType?.trim() || (parsed.format === 'json' ? 'application/json' : 'text/plain; charset=utf-8');

  const stored = await putOnce(deps.s3, {
    bucket: deps.bucket,
    key,
    body: bytes,
    contentType,
    receivedAt,
    metadata: {
      format: parsed.format,
      ...(placement.unmatched ? { 'unmatched-reason': placement.unmatched } : {}),
      ...(request.requestId ? { 'request-id': request.requestId.replace(/[^\x20-\x7E]/g, '') } : {}),
    },
  });
  const where = {
    bucket: stored.bucket,
    key: stored.key,
    duplicate: stored.duplicate,
    format: parsed.format,
    bytes: bytes.length,
  };
  if (!stored.duplicate) count(METRIC.resultsStored);

  if (parsed.malformed) {
    count(METRIC.callbacksUnmatched);
    log.warn('Callback declared JSON but does not parse; kept as unmatched', {
      ...where,
      contentType: mediaType(request.contentType),
    });
    throw new MalformedJsonError(stored.uri);
  }
  if (placement.unmatched || !isMatchable(identity)) {
    count(METRIC.callbacksUnmatched);
    log.warn('Callback without a usable data id; kept as unmatched', {
      ...where,
      reason: placement.unmatched,
      taskId: identity?.taskId === undefined ? undefined : toWellFormed(identity.taskId),
    });
    return answer(stored, placement.unmatched);
  }

  // Display forms: lone surrogates become U+FFFD in logs and the event (EventBridge and
  // consumers want UTF-8); the exact ids are the decoded segments of the key (store.ts).
  const ids = {
    taskId: identity.taskId === undefined ? undefined : toWellFormed(identity.taskId),
    dataId: toWellFormed(identity.dataId),
  };
  const outcome = await record(deps.ledger, identity, stored, sha256);
  const submissionId = outcome.submission?.id;
  if (!stored.duplicate) recordTimeToResult(metrics, identity.status, outcome, stored.receivedAt);
  if (!submissionId) log.info('Callback has no known submission yet; kept on its data id', { ...where, ...ids });

  // One event per stored body: only the delivery holding the ledger's claim publishes.
  const claim = await claimEvent(deps, identity.dataId, sha256);
  if (claim === 'published') {
    log.info('Callback replay; already recorded and published', { ...where, ...ids });
    return answer(stored);
  }
  try {
    await deps.publisher.publishResultStored({
      ...(ids.taskId !== undefined ? { taskId: ids.taskId } : {}),
      dataId: ids.dataId,
      ...(identity.kind ? { kind: identity.kind } : {}),
      status: identity.status,
      ...(identity.rawStatus !== undefined ? { rawStatus: toWellFormed(identity.rawStatus) } : {}),
      ...(submissionId ? { submissionId } : {}),
      applied: outcome.current,
      location: { bucket: stored.bucket, key: stored.key, uri: stored.uri },
      receivedAt: stored.receivedAt,
    });
  } catch (error) {
    // Give the claim back so IVA's retry can publish at once rather than after the lease.
    await deps.ledger.releaseResultEvent(identity.dataId, sha256).catch(() => undefined);
    throw error;
  }
  try {
    await deps.ledger.markResultEventPublished(identity.dataId, sha256);
  } catch (error) {
    // The event is out; unmarked, a delivery after the claim lease would publish it again.
    log.warn('Event not marked as published; a retry after the claim lease would publish again', {
      ...where,
      errorName: awsErrorName(error),
    });
  }
  log.info('Callback stored and published', {
    ...where,
    ...ids,
    submissionId,
    status: identity.status,
    rawStatus: identity.rawStatus === undefined ? undefined : toWellFormed(identity.rawStatus),
    applied: outcome.current,
  });
  return answer(stored);
}

/**
 * Claims this body's event. Another delivery holding the claim is waited for (it is
 * usually milliseconds from publishing) up to `claimWaitMs`; if it is still busy this
 * delivery answers 503, never a 200 that would stop IVA retrying while the holder might
 * still crash before publishing.
 */
async function claimEvent(deps: StoreDeps, dataId: string, sha256: string): Promise<'claimed' | 'published'> {
  const leaseMs = deps.eventClaimMs ?? DEFAULT_EVENT_CLAIM_MS;
  const waitMs = deps.claimWaitMs ?? DEFAULT_CLAIM_WAIT_MS;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    let claim: EventClaim;
    try {
      claim = await deps.ledger.claimResultEvent(dataId, sha256, { leaseMs });
    } catch (error) {
      throw new LedgerUnavailableError(`claimResultEvent failed: ${awsErrorName(error)}`);
    }
    if (claim === 'claimed' || claim === 'published') return claim;
    if (claim === 'missing') throw new LedgerUnavailableError('the recorded result is missing');
    if (Date.now() - started >= waitMs) throw new EventInProgressError();
    await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 250)));
  }
}

async function record(
  ledger: Ledger,
  identity: CallbackIdentity & { dataId: string },
  stored: StoreOutcome,
  sha256: string,
): Promise<ResultOutcome & { current: boolean }> {
  try {
    const outcome = await ledger.recordResult({
      dataId: identity.dataId,
      resultId: sha256,
      taskId: identity.taskId,
      kind: identity.kind,
      status: identity.status,
      rawStatus: identity.rawStatus,
      location: stored.uri,
      receivedAt: stored.receivedAt,
    });
    // `applied` is false for a replay of the result already shown, too: "current" asks
    // whether this body is the one the data id shows now.
    const shown = outcome.shown?.location;
    return { ...outcome, current: outcome.applied || shown === stored.uri };
  } catch (error) {
    throw new LedgerUnavailableError(`recordResult failed: ${awsErrorName(error)}`);
  }
}

/**
 * The time from IVA accepting the submission to its final result, once per submission:
 * only for a body stored for the first time (the caller skips replays) whose final result
 * was applied (not outranked by an earlier final one), and only for a submission whose
 * acceptance time is known (a callback can arrive before the submission is recorded).
 */
function recordTimeToResult(
  metrics: MetricsPort,
  status: ResultStatus,
  outcome: ResultOutcome,
  receivedAt: string,
): void {
  if (status === 'progress' || !outcome.applied) return;
  const submittedAt = Date.parse(outcome.submission?.submittedAt ?? '');
  const at = Date.parse(receivedAt);
  if (Number.isNaN(submittedAt) || Number.isNaN(at)) return;
  metrics.addMetric(METRIC.submissionToResult, MetricUnit.Milliseconds, Math.max(0, at - submittedAt));
}

/** Reading ids is best effort: whatever the body's shape, it is still stored (as unmatched). */
function identifySafely(value: unknown, log: LoggerPort): CallbackIdentity | undefined {
  try {
    return identify(value);
  } catch (error) {
    log.warn('Callback identifiers could not be read; keeping it as unmatched', {
      errorName: awsErrorName(error),
    });
    return undefined;
  }
}

function answer(stored: StoreOutcome, unmatched?: UnmatchedReason): CallbackAnswer {
  return { ok: true, stored: stored.uri, duplicate: stored.duplicate, ...(unmatched ? { unmatched } : {}) };
}
