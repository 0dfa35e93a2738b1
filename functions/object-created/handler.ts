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
import type { IvaClient } from '../../lib/iva/types';
import type { Ledger } from '../../lib/ledger/types';
import { logger, metrics } from '../../lib/observability';
import { ivaFromEnv, ledgerFromEnv } from '../../lib/runtime';
import { createLimiter } from '../../lib/s3-intake/limiter';
import { createIntake, type IntakeDeps, type LogSink, type MetricSink } from '../../lib/s3-intake/process';
import { presignerFromEnv, type Presigner } from '../../lib/storage/presign';
import { createS3Client } from '../../lib/storage/s3-client';
import type { S3Client } from '@aws-sdk/client-s3';

export interface ObjectCreatedDeps {
  s3: S3Client;
  ledger: Ledger;
  iva: IvaClient;
  presigner: Presigner;
  defaultTaskId?: string;
  /** IVA calls in flight at once per container (IVA_CONCURRENCY). */
  concurrency?: number;
  imageMaxBytes?: number;
  safetyMarginMs?: number;
  minBudgetMs?: number;
  logger?: LogSink;
  metrics?: MetricSink;
  /** Re-reads the Volcengine secret after IVA refused the keys. */
  refreshCredentials?: () => Promise<unknown>;
}

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
  let intake: ReturnType<typeof createIntake> | undefined;
  const getIntake = () => {
    if (!intake) {
      const d = typeof deps === 'function' ? deps() : deps;
      const intakeDeps: IntakeDeps = {
        s3: d.s3,
        ledger: d.ledger,
        iva: d.iva,
        presigner: d.presigner,
        logger: d.logger ?? logger,
        metrics: d.metrics ?? metrics,
        defaultTaskId: d.defaultTaskId,
        imageMaxBytes: d.imageMaxBytes,
        limiter: createLimiter(Math.max(1, Math.floor(d.concurrency ?? DEFAULTS.ivaConcurrency))),
        safetyMarginMs: d.safetyMarginMs,
        minBudgetMs: d.minBudgetMs,
        refreshCredentials: d.refreshCredentials,
      };
      intake = createIntake(intakeDeps);
    }
    return intake;
  };

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
