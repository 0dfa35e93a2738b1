/**
 * S3 ObjectCreated → IVA submission by presigned URL, exactly once per upload.
 *
 * Per record: HeadObject (the event's version) → rules → submission id → ledger.begin →
 * presign → IVA → ledger. The ledger's lease makes concurrent and repeated deliveries of
 * one upload submit once. The one window for a double submission: IVA accepted, then
 * this container died (or the ledger write failed) before markSubmitted; the lease
 * expires and a redelivery submits again. IVA has no idempotency key to close it.
 */
import { HeadObjectCommand, type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { IMAGE_MAX_BYTES } from '../config';
import { isCredentialProblem, IvaAbortedError, IvaAmbiguousError, IvaError } from '../iva/errors';
import type { IvaClient, SubmitResult } from '../iva/types';
import type { Ledger, ObjectRef, SubmissionRecord, SubmissionSource } from '../ledger/types';
import { type LoggerPort, METRIC, MetricUnit, noMetrics, type ObservabilityDeps, silentLogger } from '../observability';
import { decodeMetadataValue } from '../storage/metadata';
import { INCOMING_PREFIX } from '../storage/prefixes';
import { redactPresignedUrl, redactSignedUrls, type Presigner } from '../storage/presign';
import { escapeForLog } from '../submission/validate';
import { IntakeRuleError, MalformedMessageError } from './errors';
import { parseMessageBody, type ObjectCreatedRecord } from './events';
import { createLimiter, type Limiter } from './limiter';
import { isThrottle, type Pacer } from './pacer';
import {
  decide,
  derivedSubmissionId,
  isPlausibleSubmissionId,
  isSubmittableKey,
  META,
  objectIdentity,
  stripQuotes,
  type PartialPlan,
} from './rules';
import { awsErrorFields, s3ObjectAbsence } from '../aws/errors';

type Attrs = Record<string, unknown>;

/** `logger` and `metrics` (lib/observability): silent by default; the handler passes Powertools'. */
export interface IntakeDeps extends ObservabilityDeps {
  s3: S3Client;
  ledger: Ledger;
  iva: IvaClient;
  presigner: Presigner;
  defaultTaskId?: string;
  /** Default lib/config IMAGE_MAX_BYTES (50 MB). */
  imageMaxBytes?: number;
  /** Bounds concurrent records (and so IVA calls) in this container. */
  limiter?: Limiter;
  /** Time kept back from the invocation for the ledger write and the answer (default 5 s). */
  safetyMarginMs?: number;
  /** Below this IVA budget a record is not started but redelivered (default 1 s). */
  minBudgetMs?: number;
  /** Added to the remaining time to make the lease (default 10 s). */
  leaseMarginMs?: number;
  /** Re-reads the Volcengine secret after IVA refused the keys (a rotation). */
  refreshCredentials?: () => Promise<unknown>;
  /** Paces IVA calls at the rate IVA accepts (pacer.ts); none: unpaced, the client's own retries only. */
  pacer?: Pacer;
}

export interface IntakeMessage {
  messageId: string;
  body: string;
}

export type RecordOutcome = 'submitted' | 'failed' | 'uncertain' | 'duplicate' | 'busy' | 'ignored' | 'retry';

export interface MessageOutcome {
  messageId: string;
  /** True when SQS must redeliver it (a batch item failure). */
  retry: boolean;
  records: RecordOutcome[];
}

const DEFAULT_SAFETY_MS = 5_000;
const DEFAULT_MIN_BUDGET_MS = 1_000;
const DEFAULT_LEASE_MARGIN_MS = 10_000;

/** Longest string value a log line carries (an S3 key is at most 1024 bytes; IVA's messages are short). */
const LOG_VALUE_MAX_CHARS = 500;

/** Every string in a log line made safe: the key, the metadata and the errors are the uploader's text. */
function safeAttrs(attrs: Attrs): Attrs {
  const out: Attrs = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = typeof v === 'string' ? escapeForLog(v, LOG_VALUE_MAX_CHARS) : v;
  return out;
}

/** Keys every line about one record carries; concurrency-safe (no shared appendKeys). */
class RecordLog {
  readonly keys: Attrs;
  constructor(
    private readonly sink: LoggerPort,
    base: Attrs,
  ) {
    this.keys = { ...base };
  }
  set(more: Attrs): void {
    for (const [k, v] of Object.entries(more)) if (v !== undefined) this.keys[k] = v;
  }
  info(message: string, extra: Attrs = {}): void {
    this.sink.info(message, safeAttrs({ ...this.keys, ...extra }));
  }
  warn(message: string, extra: Attrs = {}): void {
    this.sink.warn(message, safeAttrs({ ...this.keys, ...extra }));
  }
  error(message: string, extra: Attrs = {}): void {
    this.sink.error(message, safeAttrs({ ...this.keys, ...extra }));
  }
}

function errorFields(error: unknown): Attrs {
  // IVA's message may quote the presigned Url it was given: never log its signature.
  if (error instanceof IvaError)
    return {
      errorCode: error.code,
      errorMessage: redactSignedUrls(error.message),
      requestId: error.requestId,
      retryable: error.retryable,
    };
  return awsErrorFields(error);
}

/**
 * Whether the ledger record named by an object's `iva-submission-id` was already used by
 * another upload (the upload URL used twice, or the metadata copied to another object).
 */
export function belongsToOtherUpload(
  existing: SubmissionRecord,
  current: ObjectCreatedRecord,
  headETag?: string,
): boolean {
  const o = existing.object;
  if (o?.bucket && o.bucket !== current.bucket) return true;
  if (o?.key && o.key !== current.key) return true;
  // A matching version or sequencer proves the same upload; a different one proves another.
  for (const [recorded, seen] of [
    [o?.versionId, current.versionId],
    [o?.sequencer, current.sequencer],
  ] as const) {
    if (recorded && seen) return recorded !== seen;
  }
  // Equal ETags only say "same bytes" (a re-upload may repeat them): the time check decides.
  const seenETag = current.eTag ?? headETag;
  if (o?.eTag && seenETag && stripQuotes(o.eTag) !== stripQuotes(seenETag)) return true;
  // No recorded identity: an upload that happened after the record was settled is a new one.
  if (existing.submitStatus !== 'pending' && current.eventTime) {
    const settledAt = existing.submittedAt ?? existing.updatedAt;
    if (settledAt && Date.parse(current.eventTime) > Date.parse(settledAt)) return true;
  }
  return false;
}

export function createIntake(deps: IntakeDeps) {
  const logger = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? noMetrics;
  const imageMaxBytes = deps.imageMaxBytes ?? IMAGE_MAX_BYTES;
  const limiter = deps.limiter ?? createLimiter(4);
  const safety = deps.safetyMarginMs ?? DEFAULT_SAFETY_MS;
  const minBudget = deps.minBudgetMs ?? DEFAULT_MIN_BUDGET_MS;
  const leaseMargin = deps.leaseMarginMs ?? DEFAULT_LEASE_MARGIN_MS;
  const pacer = deps.pacer;
  const count = (name: string) => metrics.addMetric(name, MetricUnit.Count, 1);

  async function head(record: ObjectCreatedRecord): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await deps.s3.send(
        new HeadObjectCommand({
          Bucket: record.bucket,
          Key: record.key,
          ...(record.versionId ? { VersionId: record.versionId } : {}),
        }),
      );
    } catch (error) {
      // Missing, or 403: S3 hides a missing key behind 403 from a role without
      // s3:ListBucket (these functions hold none), and a HEAD answer has no body to tell
      // that from a real denial. Either way the upload cannot be submitted: it ends
      // visibly as ObjectNotFound (the message names both causes) instead of being
      // redelivered until the DLQ alarm fires for an object that was simply deleted.
      if (s3ObjectAbsence(error) !== undefined) return undefined;
      throw error;
    }
  }

  async function submissionIdFor(
    record: ObjectCreatedRecord,
    metadata: Record<string, string>,
    headETag: string | undefined,
    log: RecordLog,
  ): Promise<{ id: string; source: SubmissionSource }> {
    const identity =
      objectIdentity({ versionId: record.versionId, sequencer: record.sequencer, eTag: record.eTag ?? headETag }) ??
      'unknown';
    const derived = { id: derivedSubmissionId(record.bucket, record.key, identity), source: 's3' as const };
    const raw = metadata[META.submissionId];
    if (raw === undefined) return derived;
    const claimed = decodeMetadataValue(raw).trim();
    if (!isPlausibleSubmissionId(claimed)) {
      log.warn('Ignoring malformed iva-submission-id metadata', { claimedLength: claimed.length });
      return derived;
    }
    const existing = await deps.ledger.get(claimed);
    if (!existing) {
      // Only the upload route sets it, after reserving it: an unknown one was set by hand.
      log.warn('iva-submission-id names no reserved submission; using the derived id', {
        claimedSubmissionId: claimed,
      });
      return derived;
    }
    if (belongsToOtherUpload(existing, record, headETag)) {
      log.info('iva-submission-id already used by another upload; this upload is a new submission', {
        claimedSubmissionId: claimed,
      });
      return derived;
    }
    return { id: claimed, source: 'upload' };
  }

  async function processRecord(
    record: ObjectCreatedRecord,
    budgetMs: () => number,
    remainingMs: () => number,
    log: RecordLog,
  ): Promise<RecordOutcome> {
    if (!isSubmittableKey(record.key)) {
      log.info(`Ignored: only objects under ${INCOMING_PREFIX} are submitted`);
      return 'ignored';
    }
    const object = await head(record);
    const objectRef: ObjectRef = { bucket: record.bucket, key: record.key };
    if (record.versionId) objectRef.versionId = record.versionId;
    if (record.sequencer) objectRef.sequencer = record.sequencer;
    const eTag = record.eTag ?? (object?.ETag ? stripQuotes(object.ETag) : undefined);
    if (eTag) objectRef.eTag = eTag;
    // Overwritten since (unversioned bucket): the newer upload has its own event, and a
    // URL signed now would serve its bytes under this upload's id. This upload can never
    // be sent; it is recorded failed so its owner sees what became of it.
    const overwritten =
      object !== undefined &&
      !record.versionId &&
      record.eTag !== undefined &&
      object.ETag !== undefined &&
      stripQuotes(object.ETag) !== stripQuotes(record.eTag);
    if (overwritten) log.info('The object was overwritten since this event; the newer upload has its own event');

    // The newer object's metadata is not this upload's: an overwritten one is known by its key alone.
    const metadata = overwritten ? {} : (object?.Metadata ?? {});
    const { id, source } = await submissionIdFor(record, metadata, overwritten ? undefined : object?.ETag, log);
    log.set({ submissionId: id });

    let decision: ReturnType<typeof decide> | undefined;
    if (object) {
      if (!overwritten) {
        if (object.ContentLength !== undefined) objectRef.size = object.ContentLength;
        if (object.ContentType) objectRef.contentType = object.ContentType;
      }
      decision = decide(
        overwritten
          ? { key: record.key, metadata }
          : { key: record.key, metadata, contentType: object.ContentType, size: object.ContentLength },
        { defaultTaskId: deps.defaultTaskId, imageMaxBytes },
      );
    }
    const fields: PartialPlan = decision ? (decision.ok ? decision.plan : decision.partial) : {};
    log.set({ taskId: fields.taskId });

    const beginFor = (submissionId: string, submissionSource: SubmissionSource) =>
      deps.ledger.begin(
        {
          id: submissionId,
          source: submissionSource,
          taskId: fields.taskId,
          kind: fields.kind,
          name: fields.name,
          desc: fields.desc,
          object: objectRef,
        },
        { leaseMs: remainingMs() + leaseMargin },
      );
    let begun = await beginFor(id, source);
    if (source === 'upload' && begun.action !== 'proceed' && belongsToOtherUpload(begun.record, record, object?.ETag)) {
      // Two uploads through one upload URL raced for its reserved id and the other won.
      const identity =
        objectIdentity({
          versionId: record.versionId,
          sequencer: record.sequencer,
          eTag: record.eTag ?? object?.ETag,
        }) ?? 'unknown';
      const derivedId = derivedSubmissionId(record.bucket, record.key, identity);
      log.info('Reserved submission taken by another upload; this upload is a new submission', {
        claimedSubmissionId: id,
      });
      log.set({ submissionId: derivedId });
      begun = await beginFor(derivedId, 's3');
    }
    if (begun.action === 'duplicate') {
      count(METRIC.duplicate);
      log.info('Duplicate delivery: already handled', {
        status: begun.record.status,
        dataId: begun.record.dataId,
        requestId: begun.record.requestId,
      });
      return 'duplicate';
    }
    if (begun.action === 'busy') {
      // Another container holds the lease; if it fails, its own message is redelivered.
      count(METRIC.duplicate);
      log.info('Concurrent delivery: another invocation is submitting it', { leaseUntil: begun.record.leaseUntil });
      return 'busy';
    }

    let ivaCalled = false;
    try {
      if (!object || !decision) {
        const error = new IntakeRuleError(
          'ObjectNotFound',
          'The object (or this version of it) no longer exists, or this function may not read it (S3 answers both with 403 to a role without s3:ListBucket); nothing to submit',
        );
        await deps.ledger.markFailed(id, { code: error.code, message: error.message });
        count(METRIC.failed);
        log.warn('Recorded as failed', { errorCode: error.code, errorMessage: error.message });
        return 'failed';
      }
      if (overwritten) {
        const failure = {
          code: 'ObjectOverwritten',
          message:
            'The object was overwritten before this upload was submitted; the newer upload is a submission of its own',
        };
        await deps.ledger.markFailed(id, failure, fields);
        count(METRIC.failed);
        log.warn('Recorded as failed', { errorCode: failure.code, errorMessage: failure.message });
        return 'failed';
      }
      if (!decision.ok) {
        await deps.ledger.markFailed(
          id,
          { code: decision.error.code, message: decision.error.message },
          decision.partial,
        );
        count(METRIC.failed);
        log.warn('Recorded as failed', { errorCode: decision.error.code, errorMessage: decision.error.message });
        return 'failed';
      }
      const plan = decision.plan;
      const budget = budgetMs();
      if (budget < minBudget) {
        // Recorded before it is handed back, so the upload is never invisible while it waits.
        const failure = {
          code: 'NoTimeLeft',
          message: `Only ${budget} ms of this invocation were left for IVA; SQS redelivers it`,
        };
        await deps.ledger.markRetrying(id, failure);
        count(METRIC.retried);
        log.warn('Too little time left to call IVA; recorded pending and left to redelivery', { budgetMs: budget });
        return 'retry';
      }
      const presigned = await deps.presigner.presignGet({
        bucket: record.bucket,
        key: record.key,
        versionId: record.versionId,
      });
      for (const warning of presigned.warnings) log.warn(warning, { presignTtlSeconds: presigned.expiresInSeconds });
      log.info('Submitting to IVA', {
        kind: plan.kind,
        url: redactPresignedUrl(presigned.url),
        expiresInSeconds: presigned.expiresInSeconds,
        expiresAt: presigned.expiresAt,
        signedWith: presigned.signedWith,
      });

      ivaCalled = true;
      const input = {
        kind: plan.kind,
        taskId: plan.taskId,
        name: plan.name,
        desc: plan.desc,
        algoParamConf: plan.algoParamConf,
        source: { type: 'url' as const, url: presigned.url },
      };
      let result: SubmitResult | undefined;
      try {
        // Paced (see pacer.ts): a throttle ends the attempt at once (a 429 proves IVA did
        // not take it) and the record waits for its next slot, instead of the client's own
        // backoff sending it again at a rate IVA has just refused.
        while (!result) {
          if (pacer && !(await pacer.acquire(Math.max(0, budgetMs() - minBudget)))) {
            await deps.ledger.markRetrying(id, {
              code: 'FlowLimitExceeded',
              message: 'IVA is throttling: no send slot within this invocation; SQS redelivers it',
            });
            count(METRIC.retried);
            log.warn('IVA is throttling and no send slot is free in time; recorded pending, left to redelivery', {
              pacedRate: pacer.rate,
            });
            return 'retry';
          }
          const abort = new AbortController();
          let throttled = false;
          try {
            result = await deps.iva.submit(input, {
              budgetMs: budgetMs(),
              signal: abort.signal,
              onRetry: (info) => {
                if (pacer && isThrottle(info.error)) {
                  throttled = true;
                  pacer.onThrottle();
                  abort.abort();
                  return;
                }
                log.warn('IVA call retried', {
                  attempt: info.attempt,
                  delayMs: info.delayMs,
                  ...errorFields(info.error),
                });
              },
            });
            pacer?.onSuccess();
          } catch (error) {
            // Aborted in the backoff after a throttle, so nothing was in flight: wait for a slot.
            if (throttled && error instanceof IvaAbortedError) continue;
            if (pacer && error instanceof IvaError && isThrottle(error)) pacer.onThrottle();
            throw error;
          }
        }
      } catch (error) {
        if (!(error instanceof IvaError)) throw error;
        // Recorded in the ledger, which GET /v1/submissions shows: no usable URL in it.
        const failure = {
          code: error.code,
          message: redactSignedUrls(error.message),
          ...(error.requestId ? { requestId: error.requestId } : {}),
        };
        if (isCredentialProblem(error)) {
          // Our Volcengine keys were refused (or could not even be read from Secrets
          // Manager), not this upload: keep it pending and let SQS (then the DLQ, with
          // its redrive) hold it until the secret is fixed. Never `failed`: nothing
          // would ever submit it again.
          await deps.ledger.markRetrying(id, failure);
          await deps.refreshCredentials?.().catch(() => undefined);
          count(METRIC.retried);
          log.error('Our Volcengine credentials were refused or unavailable; left for redelivery', errorFields(error));
          return 'retry';
        }
        if (error instanceof IvaAmbiguousError) {
          // IVA may have it: a redelivery must not send it again (begin() treats an
          // uncertain record as done). Its owner resolves it (lib/iva/README.md).
          await deps.ledger.markUncertain(id, {
            code: error.code,
            message: failure.message,
            sentAt: new Date(error.sentAt).toISOString(),
            failedAt: new Date(error.failedAt).toISOString(),
          });
          count(METRIC.uncertain);
          log.error(
            'IVA may have accepted it but the answer was lost; recorded uncertain, not retried',
            errorFields(error),
          );
          return 'uncertain';
        }
        if (error.retryable) {
          await deps.ledger.markRetrying(id, failure);
          count(METRIC.retried);
          log.warn('IVA failed retryably; SQS will redeliver', errorFields(error));
          return 'retry';
        }
        await deps.ledger.markFailed(id, failure, fields);
        count(METRIC.failed);
        log.warn('IVA refused it; recorded as failed', errorFields(error));
        return 'failed';
      }
      if (result === undefined) throw new Error('IVA submission ended without a result');
      // The double-submission window (see the file comment) is between here and the write.
      log.set({ dataId: result.dataId, requestId: result.requestId });
      await deps.ledger.markSubmitted(id, { dataId: result.dataId, requestId: result.requestId, kind: result.kind });
      count(METRIC.submitted);
      log.info('Submitted', { attempts: result.attempts });
      return 'submitted';
    } catch (error) {
      // Infrastructure (S3, Secrets Manager, DynamoDB): free the lease so the redelivery
      // proceeds at once, unless IVA may already have it (then the lease must run out).
      if (!ivaCalled) {
        await deps.ledger
          .markRetrying(id, {
            code: 'InternalError',
            message: String((error as Error)?.message ?? error).slice(0, 500),
          })
          .catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Processes one SQS batch; returns the messages SQS must redeliver. `remainingMs` is
   * the invocation's remaining time (Lambda's context.getRemainingTimeInMillis).
   */
  async function processBatch(
    messages: readonly IntakeMessage[],
    remainingMs: () => number,
  ): Promise<MessageOutcome[]> {
    type Job = { message: IntakeMessage; record: ObjectCreatedRecord; outcome: MessageOutcome };
    const jobs: Job[] = [];
    const outcomes = new Map<string, MessageOutcome>();
    for (const message of messages) {
      const outcome: MessageOutcome = { messageId: message.messageId, retry: false, records: [] };
      outcomes.set(message.messageId, outcome);
      try {
        const parsed = parseMessageBody(message.body);
        if (parsed.type === 'test') {
          logger.info('S3 test event acknowledged', { messageId: message.messageId });
          continue;
        }
        for (const skipped of parsed.ignored)
          logger.info('Ignored: not an ObjectCreated event', safeAttrs({ messageId: message.messageId, ...skipped }));
        for (const record of parsed.records) jobs.push({ message, record, outcome });
      } catch (error) {
        if (!(error instanceof MalformedMessageError)) throw error;
        // Never dropped silently: the batch failure sends it to the DLQ after maxReceiveCount.
        outcome.retry = true;
        logger.error(
          'Malformed message; left for the dead-letter queue',
          safeAttrs({ messageId: message.messageId, errorCode: error.code, errorMessage: error.message }),
        );
      }
    }

    // Records share the invocation's time: the IVA budget of a record is the time left
    // divided by the waves of records still to start at this concurrency.
    let notStarted = jobs.length;
    await Promise.all(
      jobs.map(({ message, record, outcome }) =>
        limiter.run(async () => {
          const waves = Math.max(1, Math.ceil(notStarted / limiter.limit));
          notStarted--;
          const share = Math.floor((remainingMs() - safety) / waves);
          const budgetMs = () => Math.min(share, remainingMs() - safety);
          const log = new RecordLog(logger, {
            messageId: message.messageId,
            bucket: record.bucket,
            key: record.key,
            versionId: record.versionId,
          });
          try {
            const result = await processRecord(record, budgetMs, remainingMs, log);
            outcome.records.push(result);
            if (result === 'retry') outcome.retry = true;
          } catch (error) {
            outcome.records.push('retry');
            outcome.retry = true;
            log.error('Record not processed; SQS will redeliver the message', errorFields(error));
          }
        }),
      ),
    );
    return [...outcomes.values()];
  }

  return { processBatch, processRecord };
}
