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
 * Event emission is at-least-once without duplicates in the normal case: after PutEvents
 * succeeds, a zero-byte marker `results/_emitted/<sha256>` is written. A replay whose
 * marker exists does nothing more; a replay without one (the previous attempt crashed
 * or failed between storing and publishing) records and publishes again. Only two
 * deliveries of the same body racing each other, or a crash between PutEvents and the
 * marker, can publish twice. The marker is an S3 object rather than a ledger attribute
 * because the ledger contract has no such field and the function may already write
 * under `results/`.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { sha256Hex } from '../signer/index';
import type { Ledger, ResultOutcome } from '../ledger/types';
import { type LoggerPort, METRIC, MetricUnit, noMetrics, type ObservabilityDeps, silentLogger } from '../observability';
import { secretMatches } from './auth';
import {
  CallbackError,
  LedgerUnavailableError,
  MalformedJsonError,
  NotFoundError,
  SecretUnavailableError,
} from './errors';
import type { EventPublisher } from './events';
import { identify, isMatchable, type CallbackIdentity } from './identify';
import { bodyBytes, MAX_CALLBACK_BYTES, mediaType, parseBody } from './parse';
import { awsErrorName } from '../aws/errors';
import { toWellFormed } from '../storage/wtf8';
import { hasMarker, placeResult, putMarker, putOnce, type StoreOutcome, type UnmatchedReason } from './store';

/** `logger` and `metrics` (lib/observability): silent by default; the handler passes Powertools'. */
export interface CallbackDeps extends ObservabilityDeps {
  s3: S3Client;
  bucket: string;
  ledger: Ledger;
  /** The accepted secrets (current, and previous while rotating). */
  secrets: { get(): Promise<string[]> };
  publisher: EventPublisher;
  now?: () => Date;
  maxBytes?: number;
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
    return await handle(deps, request, log, count);
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
): Promise<CallbackAnswer> {
  let accepted: string[];
  try {
    accepted = await deps.secrets.get();
  } catch (error) {
    log.error('Callback secret unavailable', { errorName: awsErrorName(error) });
    throw new SecretUnavailableError();
  }
  // No refresh on a mismatch: anyone could then make every request read Secrets Manager.
  if (!secretMatches(request.secret, accepted)) {
    log.warn('Callback refused: wrong or missing secret');
    throw new NotFoundError();
  }

  const bytes = bodyBytes(request, deps.maxBytes ?? MAX_CALLBACK_BYTES);
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
  const receivedAt = (deps.now?.() ?? new Date()).toISOString();
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
  if (stored.duplicate && (await hasMarker(deps.s3, deps.bucket, sha256))) {
    // Fully handled before: recorded and published. A pure replay.
    log.info('Callback replay; already recorded and published', { ...where, ...ids });
    return answer(stored);
  }

  const outcome = await record(deps.ledger, identity, stored);
  const submissionId = outcome.submission?.id;
  if (!submissionId) log.info('Callback has no known submission yet; kept on its data id', { ...where, ...ids });

  await deps.publisher.publishResultStored({
    ...(ids.taskId !== undefined ? { taskId: ids.taskId } : {}),
    dataId: ids.dataId,
    ...(identity.kind ? { kind: identity.kind } : {}),
    status: identity.status,
    ...(identity.rawStatus !== undefined ? { rawStatus: identity.rawStatus } : {}),
    ...(submissionId ? { submissionId } : {}),
    location: { bucket: stored.bucket, key: stored.key, uri: stored.uri },
    receivedAt: stored.receivedAt,
  });
  try {
    await putMarker(deps.s3, deps.bucket, sha256, { 'received-at': stored.receivedAt });
  } catch (error) {
    // The event is out; without the marker a replay would publish it again (at-least-once).
    log.warn('Event marker not written; a replay of this callback would publish again', {
      ...where,
      errorName: awsErrorName(error),
    });
  }
  log.info('Callback stored and published', {
    ...where,
    ...ids,
    submissionId,
    status: identity.status,
    rawStatus: identity.rawStatus,
    applied: outcome.applied,
  });
  return answer(stored);
}

async function record(
  ledger: Ledger,
  identity: CallbackIdentity & { dataId: string },
  stored: StoreOutcome,
): Promise<ResultOutcome> {
  try {
    return await ledger.recordResult({
      dataId: identity.dataId,
      taskId: identity.taskId,
      kind: identity.kind,
      status: identity.status,
      rawStatus: identity.rawStatus,
      location: stored.uri,
      receivedAt: stored.receivedAt,
    });
  } catch (error) {
    throw new LedgerUnavailableError(`recordResult failed: ${awsErrorName(error)}`);
  }
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
