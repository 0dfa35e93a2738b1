/**
 * S3 ObjectCreated → IVA submission by presigned URL, exactly once per upload.
 *
 * Per record: HeadObject (the event's version) → rules → submission id → ledger.begin →
 * pin the bytes (a copy, unversioned buckets only: pin.ts) → presign → IVA → ledger. The ledger's lease makes concurrent and repeated deliveries of
 * one upload submit once. The one window for a double submission: IVA accepted, then
 * this container died (or the ledger write failed) before markSubmitted; the lease
 * expires and a redelivery submits again. IVA has no idempotency key to close it.
 *
 * The decisions are small functions of their own: which upload and which id
 * (identity.ts), whether it may be sent and what an IVA failure makes of it (policy.ts,
 * pure), the lease, the presigned URL and the paced IVA call (below, each given its
 * ports). processRecord only carries the verdicts out: ledger, metrics, logs.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { IMAGE_MAX_BYTES } from '../config';
import { IvaAbortedError, IvaError } from '../iva/errors';
import type { SubmissionEventPublisher } from '../callback/events';
import type { IvaClient, SubmitInput, SubmitResult } from '../iva/types';
import type { SubmissionLedger } from '../ledger/memory';
import type { BeginOutcome, SubmissionError, SubmissionSource } from '../ledger/types';
import { countFailure, METRIC, MetricUnit, noMetrics, type ObservabilityDeps, silentLogger } from '../observability';
import { type ObjectVersionRef, redactPresignedUrl, type Presigner } from '../storage/presign';
import { INCOMING_PREFIX } from '../storage/prefixes';
import { s3ObjectAbsence } from '../aws/errors';
import { MalformedMessageError } from './errors';
import { parseMessageBody, type ObjectCreatedRecord } from './events';
import {
  belongsToOtherUpload,
  claimSubmissionId,
  derivedIdOf,
  type HeadFacts,
  observeObject,
  type ObservedObject,
  type SubmissionIdentity,
} from './identity';
import { createLimiter, type Limiter } from './limiter';
import { isThrottle, type Pacer } from './pacer';
import type { RetryCause } from './redelivery';
import { pinObject } from './pin';
import { ivaFailurePolicy, preflight } from './policy';
import { errorFields, RecordLog, safeAttrs } from './record-log';
import { decide, isSubmittableKey, type PartialPlan } from './rules';

/** `logger` and `metrics` (lib/observability): silent by default; the handler passes Powertools'. */
export interface IntakeDeps extends ObservabilityDeps {
  s3: S3Client;
  /** The ledger's submission writes (lib/ledger/memory.ts keeps them in memory for tests). */
  ledger: SubmissionLedger;
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
  /** Announces uploads left `uncertain` (EventBridge `IVA Submission Uncertain`); none → not announced. */
  events?: SubmissionEventPublisher;
}

export interface IntakeMessage {
  messageId: string;
  body: string;
}

/**
 * `retry`: handed back after a fault (the DLQ is its end after maxReceiveCount receives).
 * `deferred`: handed back through no fault of its own (IVA throttled it, or there was no
 * time left for it): never sent to the DLQ for that (redelivery.ts).
 */
export type RecordOutcome =
  | 'submitted'
  | 'failed'
  | 'uncertain'
  | 'duplicate'
  | 'busy'
  | 'ignored'
  | 'retry'
  | 'deferred';

export interface MessageOutcome {
  messageId: string;
  /** True when SQS must redeliver it (a batch item failure). */
  retry: boolean;
  /** Why, when `retry`: `deferred` only when every record handed back was deferred. */
  cause?: RetryCause;
  records: RecordOutcome[];
}

const DEFAULT_SAFETY_MS = 5_000;
const DEFAULT_MIN_BUDGET_MS = 1_000;
const DEFAULT_LEASE_MARGIN_MS = 10_000;

/** HeadObject of the event's version; undefined when the object is gone (or hidden behind 403). */
export async function headObject(s3: S3Client, record: ObjectCreatedRecord): Promise<HeadFacts | undefined> {
  try {
    return await s3.send(
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

/**
 * Takes the ledger's lease on this upload's submission (`proceed`), or finds it handled
 * (`duplicate`) or held by another container (`busy`). When two uploads through one
 * upload URL raced for its reserved id and the other won, this upload begins under its
 * derived id instead. Returns the id begun under.
 */
export async function beginSubmission(
  ledger: Pick<SubmissionLedger, 'begin'>,
  record: ObjectCreatedRecord,
  claim: SubmissionIdentity,
  observed: Pick<ObservedObject, 'objectRef' | 'headETag'>,
  fields: PartialPlan,
  leaseMs: () => number,
  log: Pick<RecordLog, 'info' | 'set'>,
): Promise<{ id: string; begun: BeginOutcome }> {
  const beginFor = (id: string, source: SubmissionSource) =>
    ledger.begin(
      {
        id,
        source,
        taskId: fields.taskId,
        kind: fields.kind,
        name: fields.name,
        desc: fields.desc,
        object: observed.objectRef,
      },
      { leaseMs: leaseMs() },
    );
  const begun = await beginFor(claim.id, claim.source);
  if (
    claim.source !== 'upload' ||
    begun.action === 'proceed' ||
    !belongsToOtherUpload(begun.record, record, observed.headETag)
  )
    return { id: claim.id, begun };
  const derivedId = derivedIdOf(record, observed.headETag);
  log.info('Reserved submission taken by another upload; this upload is a new submission', {
    claimedSubmissionId: claim.id,
  });
  log.set({ submissionId: derivedId });
  return { id: derivedId, begun: await beginFor(derivedId, 's3') };
}

/** Presigns the GET that IVA downloads the object by, and logs what was signed (never the signature). */
export async function presignFor(
  presigner: Presigner,
  ref: ObjectVersionRef,
  kind: string,
  log: Pick<RecordLog, 'info' | 'warn'>,
): Promise<string> {
  const presigned = await presigner.presignGet(ref);
  for (const warning of presigned.warnings) log.warn(warning, { presignTtlSeconds: presigned.expiresInSeconds });
  log.info('Submitting to IVA', {
    kind,
    url: redactPresignedUrl(presigned.url),
    expiresInSeconds: presigned.expiresInSeconds,
    expiresAt: presigned.expiresAt,
    signedWith: presigned.signedWith,
  });
  return presigned.url;
}

/**
 * Sends one submission to IVA, paced when a pacer is given (see pacer.ts): a throttle
 * ends the attempt at once (a 429 proves IVA did not take it) and the record waits for
 * its next slot, instead of the client's own backoff sending it again at a rate IVA has
 * just refused. Undefined: no send slot came within the budget. Throws the client's errors.
 */
export async function sendPaced(
  iva: IvaClient,
  pacer: Pacer | undefined,
  input: SubmitInput,
  budgetMs: () => number,
  minBudgetMs: number,
  log: Pick<RecordLog, 'warn'>,
): Promise<SubmitResult | undefined> {
  for (;;) {
    if (pacer && !(await pacer.acquire(Math.max(0, budgetMs() - minBudgetMs)))) return undefined;
    const abort = new AbortController();
    let throttled = false;
    try {
      const result = await iva.submit(input, {
        budgetMs: budgetMs(),
        signal: abort.signal,
        onRetry: (info) => {
          if (pacer && isThrottle(info.error)) {
            throttled = true;
            pacer.onThrottle();
            abort.abort();
            return;
          }
          log.warn('IVA call retried', { attempt: info.attempt, delayMs: info.delayMs, ...errorFields(info.error) });
        },
      });
      pacer?.onSuccess();
      return result;
    } catch (error) {
      // Aborted in the backoff after a throttle, so nothing was in flight: wait for a slot.
      if (throttled && error instanceof IvaAbortedError) continue;
      if (pacer && error instanceof IvaError && isThrottle(error)) pacer.onThrottle();
      throw error;
    }
  }
}

/** A message is deferred only while every record it hands back is; one fault makes it a fault. */
function handBack(outcome: MessageOutcome, cause: RetryCause): void {
  outcome.retry = true;
  outcome.cause = outcome.cause === 'fault' || cause === 'fault' ? 'fault' : 'deferred';
}

export function createIntake(deps: IntakeDeps) {
  const logger = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? noMetrics;
  const imageMaxBytes = deps.imageMaxBytes ?? IMAGE_MAX_BYTES;
  const limiter = deps.limiter ?? createLimiter(4);
  const safety = deps.safetyMarginMs ?? DEFAULT_SAFETY_MS;
  const minBudget = deps.minBudgetMs ?? DEFAULT_MIN_BUDGET_MS;
  const leaseMargin = deps.leaseMarginMs ?? DEFAULT_LEASE_MARGIN_MS;
  const count = (name: string) => metrics.addMetric(name, MetricUnit.Count, 1);

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
    const observed = observeObject(record, await headObject(deps.s3, record));
    if (observed.overwritten)
      log.info('The object was overwritten since this event; the newer upload has its own event');
    const claim = await claimSubmissionId(record, observed, deps.ledger, log);
    log.set({ submissionId: claim.id });
    const decision = observed.facts
      ? decide(observed.facts, { defaultTaskId: deps.defaultTaskId, imageMaxBytes })
      : undefined;
    const fields: PartialPlan = decision ? (decision.ok ? decision.plan : decision.partial) : {};
    log.set({ taskId: fields.taskId });

    // Every write below goes to the id begun under: the claimed one, or the derived one
    // when another upload took the reservation meanwhile (never the other upload's record).
    const { id, begun } = await beginSubmission(
      deps.ledger,
      record,
      claim,
      observed,
      fields,
      () => remainingMs() + leaseMargin,
      log,
    );
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
      // An upload that can never be sent: recorded failed, so its owner sees what became of it.
      const recordFailed = async (failure: SubmissionError, failedFields = fields): Promise<'failed'> => {
        await deps.ledger.markFailed(id, failure, failedFields);
        countFailure(metrics, failure.code);
        log.warn('Recorded as failed', { errorCode: failure.code, errorMessage: failure.message });
        return 'failed';
      };
      const gate = preflight(decision, observed.overwritten, fields, budgetMs, minBudget);
      if (gate.action === 'fail') return await recordFailed(gate.failure, gate.fields);
      if (gate.action === 'defer') {
        await deps.ledger.markRetrying(id, gate.failure);
        count(METRIC.retried);
        log.warn('Too little time left to call IVA; recorded pending and left to redelivery', {
          budgetMs: gate.budgetMs,
        });
        return 'deferred';
      }
      const plan = gate.plan;
      // IVA fetches when it gets to the task: the URL must name these bytes, not the key (pin.ts).
      const pinned = await pinObject(
        deps.s3,
        { ...record, eTag: record.eTag ?? observed.headETag, size: observed.objectRef.size },
        id,
      );
      if (pinned.action === 'fail') return await recordFailed(pinned.failure);
      if (pinned.copied) log.info('Unversioned bucket: submitting a pinned copy', { pinnedKey: pinned.ref.key });
      const url = await presignFor(deps.presigner, pinned.ref, plan.kind, log);

      ivaCalled = true;
      const input: SubmitInput = {
        kind: plan.kind,
        taskId: plan.taskId,
        name: plan.name,
        desc: plan.desc,
        algoParamConf: plan.algoParamConf,
        source: { type: 'url', url },
      };
      let result: SubmitResult | undefined;
      try {
        result = await sendPaced(deps.iva, deps.pacer, input, budgetMs, minBudget, log);
      } catch (error) {
        if (!(error instanceof IvaError)) throw error;
        const verdict = ivaFailurePolicy(error);
        switch (verdict.action) {
          case 'retry-credentials':
            await deps.ledger.markRetrying(id, verdict.failure);
            await deps.refreshCredentials?.().catch(() => undefined);
            count(METRIC.retried);
            log.error(
              'Our Volcengine credentials were refused or unavailable; left for redelivery',
              errorFields(error),
            );
            return 'retry';
          case 'uncertain': {
            const marked = await deps.ledger.markUncertain(id, verdict.info);
            count(METRIC.uncertain);
            log.error(
              'IVA may have accepted it but the answer was lost; recorded uncertain, not retried',
              errorFields(error),
            );
            // The ledger holds the state; the event only announces it (as the direct API does).
            await deps.events
              ?.publishSubmissionUncertain({
                submissionId: id,
                source: marked.source,
                taskId: marked.taskId ?? plan.taskId,
                kind: marked.kind ?? plan.kind,
                name: marked.name ?? plan.name,
                code: verdict.info.code,
                message: verdict.info.message,
                ...(verdict.info.sentAt ? { sentAt: verdict.info.sentAt } : {}),
                failedAt: verdict.info.failedAt,
              })
              .catch((eventError: unknown) =>
                log.error('Could not announce the uncertain submission', { errorMessage: String(eventError) }),
              );
            return 'uncertain';
          }
          case 'retry':
          case 'defer':
            await deps.ledger.markRetrying(id, verdict.failure);
            count(METRIC.retried);
            log.warn('IVA failed retryably; SQS will redeliver', errorFields(error));
            return verdict.action === 'defer' ? 'deferred' : 'retry';
          case 'fail':
            await deps.ledger.markFailed(id, verdict.failure, fields);
            countFailure(metrics, verdict.failure.code);
            log.warn('IVA refused it; recorded as failed', errorFields(error));
            return 'failed';
        }
      }
      if (result === undefined) {
        await deps.ledger.markRetrying(id, {
          code: 'FlowLimitExceeded',
          message: 'IVA is throttling: no send slot within this invocation; SQS redelivers it',
        });
        count(METRIC.retried);
        log.warn('IVA is throttling and no send slot is free in time; recorded pending, left to redelivery', {
          pacedRate: deps.pacer?.rate,
        });
        return 'deferred';
      }
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
        handBack(outcome, 'fault');
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
            if (result === 'retry' || result === 'deferred')
              handBack(outcome, result === 'retry' ? 'fault' : 'deferred');
          } catch (error) {
            outcome.records.push('retry');
            handBack(outcome, 'fault');
            log.error('Record not processed; SQS will redeliver the message', errorFields(error));
          }
        }),
      ),
    );
    return [...outcomes.values()];
  }

  return { processBatch, processRecord };
}
