/**
 * SQS (S3 ObjectCreated notifications) → IVA submissions by presigned URL.
 * Wiring only: the logic is lib/s3-intake. Answers SQS partial batch failures, so only
 * the messages that must be retried come back (ReportBatchItemFailures on the mapping).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DEFAULTS, ENV, number, optional, required, type Env } from '../../lib/config';
import { logger, metrics, withObservability } from '../../lib/observability';
import { ivaFromEnv, lazy, ledgerFromEnv } from '../../lib/runtime';
import { createLimiter } from '../../lib/s3-intake/limiter';
import { createIntake, type IntakeDeps } from '../../lib/s3-intake/process';
import { presignerFromEnv } from '../../lib/storage/presign';
import { createPacer } from '../../lib/s3-intake/pacer';
import { createSharedPacer } from '../../lib/s3-intake/shared-pacer';
import { defaultDocumentClient } from '../../lib/ledger/dynamo';
import { redeliver, type QueuePort } from '../../lib/s3-intake/redelivery';
import { createSqsQueue } from '../../lib/s3-intake/sqs-queue';
import { createSubmissionEventPublisher } from '../../lib/callback/events';
import { createS3Client } from '../../lib/storage/s3-client';

/** The intake's own deps, with IVA's concurrency as a number (IVA_CONCURRENCY) instead of a limiter. */
export type ObjectCreatedDeps = Omit<IntakeDeps, 'limiter'> & {
  /** IVA calls in flight at once per container. */
  concurrency?: number;
  /**
   * Pace IVA calls at the rate IVA accepts, learnt from its throttles (IVA_PACING=on).
   * Default off: a storm of 429s before any success collapses the learnt rate, and it
   * then climbs back too slowly (lib/s3-intake/README.md, "Throttling").
   */
  pacing?: boolean;
  /** The intake queue, for growing redelivery delays and requeues (lib/s3-intake/redelivery.ts); absent: plain batch failures. */
  queue?: QueuePort;
  /** The queue's redrive maxReceiveCount (MAX_RECEIVE_COUNT). */
  maxReceiveCount?: number;
};

export function depsFromEnv(env: Env = process.env): ObjectCreatedDeps {
  const s3 = createS3Client({ env });
  const iva = ivaFromEnv(env);
  return {
    s3,
    ledger: ledgerFromEnv(env),
    iva: iva.client,
    refreshCredentials: () => iva.credentials.refresh(),
    presigner: presignerFromEnv(s3, { env }),
    defaultTaskId: optional(env, ENV.defaultTaskId),
    concurrency: number(env, ENV.ivaConcurrency, DEFAULTS.ivaConcurrency),
    pacing: optional(env, ENV.ivaPacing) === 'on',
    ...sharedPacerFromEnv(env),
    events: createSubmissionEventPublisher({ eventBusName: env[ENV.eventBusName] || DEFAULTS.eventBusName }),
    ...queueFromEnv(env),
  };
}

/** IVA_RATE_LIMIT: the account's flow limit, one schedule shared by every container (shared-pacer.ts). */
function sharedPacerFromEnv(env: Env): Pick<ObjectCreatedDeps, 'pacer'> {
  const rate = optional(env, ENV.ivaRateLimit) ? number(env, ENV.ivaRateLimit, 0) : 0;
  if (!(rate > 0)) return {};
  return {
    pacer: createSharedPacer({
      doc: defaultDocumentClient(),
      tableName: required(env, ENV.ledgerTable),
      rate,
      // Without DynamoDB, this container alone: its share of the limit.
      fallbackRate: rate / Math.max(1, number(env, ENV.ivaInvocations, 4)),
    }),
  };
}

function queueFromEnv(env: Env): Pick<ObjectCreatedDeps, 'queue' | 'maxReceiveCount'> {
  const url = optional(env, ENV.intakeQueueUrl);
  const maxReceiveCount = optional(env, ENV.maxReceiveCount);
  return {
    ...(url ? { queue: createSqsQueue(url) } : {}),
    ...(maxReceiveCount ? { maxReceiveCount: number(env, ENV.maxReceiveCount, 0) } : {}),
  };
}

export function createHandler(deps: ObjectCreatedDeps | (() => ObjectCreatedDeps)) {
  const getDeps = lazy(deps);
  const getIntake = lazy(() => {
    const { concurrency = DEFAULTS.ivaConcurrency, pacing, queue: _q, maxReceiveCount: _m, ...intakeDeps } = getDeps();
    return createIntake({
      ...withObservability(intakeDeps),
      limiter: createLimiter(Math.max(1, Math.floor(concurrency))),
      // One per container, shared by its invocations: what it learns outlives a batch.
      // A known limit's shared schedule (IVA_RATE_LIMIT) comes with the deps; else the learnt rate.
      ...(intakeDeps.pacer ? {} : pacing === true ? { pacer: createPacer() } : {}),
    });
  });

  const base = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const messages = (event.Records ?? []).map((r) => ({
      messageId: r.messageId,
      body: r.body ?? '',
      receiptHandle: r.receiptHandle,
      receiveCount: Number(r.attributes?.ApproximateReceiveCount ?? 1),
    }));
    const outcomes = await getIntake().processBatch(messages, () => context.getRemainingTimeInMillis());
    const { queue, maxReceiveCount } = getDeps();
    const failed = await redeliver(outcomes, messages, queue, {
      ...(maxReceiveCount ? { maxReceiveCount } : {}),
      log: logger,
    });
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };

  return middy(base)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics));
}

/** The deployed entry point: clients are built from the environment on first use. */
export const handler = createHandler(() => depsFromEnv());
