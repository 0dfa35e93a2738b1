/**
 * IVA's result callbacks, the asynchronous half (lib/callback/README.md): API Gateway
 * has already put each authenticated body under callbacks-inbox/<request id> and
 * answered IVA; S3 notifies the CallbackInboxQueue and this function files each named
 * object (lib/callback/inbox.ts: content-addressed copy under results/, ledger, one
 * event, then the inbox object is deleted). Wiring only.
 *
 * SQS partial batch failures: a record whose object could not be filed (S3, DynamoDB,
 * EventBridge unavailable, another delivery holding the event claim, anything
 * unexpected) is reported failed and comes back after the visibility timeout; after
 * maxReceiveCount it moves to the dead-letter queue, and its inbox object is still in
 * the bucket either way. Final outcomes (filed, malformed JSON kept as unmatched, empty,
 * already done) are acknowledged.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { awsErrorName } from '../../lib/aws/errors';
import { DEFAULTS, ENV, required } from '../../lib/config';
import {
  CallbackError,
  createEventBridgePublisher,
  inboxKeysIn,
  processInboxObject,
  RetryableCallbackError,
  type StoreDeps,
} from '../../lib/callback/index';
import { logger, metrics, withObservability } from '../../lib/observability';
import { lazy, ledgerFromEnv } from '../../lib/runtime';
import { createS3Client } from '../../lib/storage/s3-client';

export function depsFromEnv(env: Record<string, string | undefined> = process.env): StoreDeps {
  return {
    s3: createS3Client({ env }),
    bucket: required(env, ENV.bucket),
    ledger: ledgerFromEnv(env),
    publisher: createEventBridgePublisher({ eventBusName: env[ENV.eventBusName] || DEFAULTS.eventBusName }),
  };
}

/** `deps` or a factory called on the first invocation (so importing reads no env). */
export function createHandler(deps: StoreDeps | (() => StoreDeps)) {
  const given = lazy(deps);
  const getDeps = lazy(() => withObservability(given()));
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics))
    .handler(async (event) => {
      const failures: SQSBatchItemFailure[] = [];
      // One at a time: each body may be 10 MB, and the function's memory holds a few.
      for (const record of event.Records) {
        let keys: string[];
        try {
          keys = inboxKeysIn(record.body);
        } catch {
          // Never a message S3 wrote: failed, so it reaches the dead-letter queue and is seen.
          logger.error('Queue message is not an S3 event', { messageId: record.messageId });
          failures.push({ itemIdentifier: record.messageId });
          continue;
        }
        for (const key of keys) {
          try {
            const outcome = await processInboxObject(getDeps(), key);
            logger.info('Inbox object processed', { inboxKey: key, outcome: outcome.kind });
          } catch (error) {
            logger.error('Inbox object not processed; it stays for the retry', {
              inboxKey: key,
              messageId: record.messageId,
              receiveCount: record.attributes?.ApproximateReceiveCount,
              code: error instanceof CallbackError ? error.code : undefined,
              reason: error instanceof RetryableCallbackError ? error.reason : undefined,
              errorName: error instanceof CallbackError ? undefined : awsErrorName(error),
            });
            failures.push({ itemIdentifier: record.messageId });
            break;
          }
        }
      }
      return { batchItemFailures: failures };
    });
}

export const handler = createHandler(() => depsFromEnv());
