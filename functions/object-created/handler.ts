/**
 * SQS (S3 ObjectCreated notifications) → IVA submissions by presigned URL.
 * Wiring only: the logic is lib/s3-intake. Answers SQS partial batch failures, so only
 * the messages that must be retried come back (ReportBatchItemFailures on the mapping).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DEFAULTS, ENV, number, optional, type Env } from '../../lib/config';
import { logger, metrics, withObservability } from '../../lib/observability';
import { ivaFromEnv, lazy, ledgerFromEnv } from '../../lib/runtime';
import { createLimiter } from '../../lib/s3-intake/limiter';
import { createIntake, type IntakeDeps } from '../../lib/s3-intake/process';
import { presignerFromEnv } from '../../lib/storage/presign';
import { createS3Client } from '../../lib/storage/s3-client';

/** The intake's own deps, with IVA's concurrency as a number (IVA_CONCURRENCY) instead of a limiter. */
export type ObjectCreatedDeps = Omit<IntakeDeps, 'limiter'> & {
  /** IVA calls in flight at once per container. */
  concurrency?: number;
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
  };
}

export function createHandler(deps: ObjectCreatedDeps | (() => ObjectCreatedDeps)) {
  const getDeps = lazy(deps);
  const getIntake = lazy(() => {
    const { concurrency = DEFAULTS.ivaConcurrency, ...intakeDeps } = getDeps();
    return createIntake({
      ...withObservability(intakeDeps),
      limiter: createLimiter(Math.max(1, Math.floor(concurrency))),
    });
  });

  const base = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const messages = (event.Records ?? []).map((r) => ({ messageId: r.messageId, body: r.body ?? '' }));
    const outcomes = await getIntake().processBatch(messages, () => context.getRemainingTimeInMillis());
    return { batchItemFailures: outcomes.filter((o) => o.retry).map((o) => ({ itemIdentifier: o.messageId })) };
  };

  return middy(base)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics));
}

/** The deployed entry point: clients are built from the environment on first use. */
export const handler = createHandler(() => depsFromEnv());
