/**
 * The IVA sandbox behind a Lambda function URL, deployed only by `-c ivaMode=sandbox`:
 * the stack's functions call it instead of Volcengine. The request handling is the local
 * sandbox's (local/iva-sandbox/core.ts); an accepted submission's result callback is put
 * on the sandbox callback queue before the answer (local/iva-sandbox/queued.ts says why),
 * and functions/iva-sandbox-callbacks posts it.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { DEFAULTS, ENV, type Env, required } from '../../lib/config';
import { logger } from '../../lib/observability';
import { lazy } from '../../lib/runtime';
import { volcCredentialsFrom } from '../../lib/secrets/index';
import { sdkRequestHandler } from '../../lib/aws/sdk-http';
import { answerIvaRequest, type QueuedSandboxDeps } from '../../local/iva-sandbox/queued';

export function depsFromEnv(env: Env = process.env): QueuedSandboxDeps {
  const queueUrl = required(env, ENV.sandboxCallbackQueueUrl);
  const sqs = new SQSClient({ requestHandler: sdkRequestHandler() });
  return {
    credentials: volcCredentialsFrom(env),
    region: env[ENV.ivaRegion] || DEFAULTS.ivaRegion,
    service: env[ENV.ivaService] || DEFAULTS.ivaService,
    queue: {
      send: async (message) => {
        await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
      },
    },
    logger,
  };
}

/** `deps` or a factory called on the first invocation (so importing reads no env). */
export function createHandler(deps: QueuedSandboxDeps | (() => QueuedSandboxDeps)) {
  const getDeps = lazy(deps);
  return middy<LambdaFunctionURLEvent, LambdaFunctionURLResult>()
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .handler((event) => answerIvaRequest(event, getDeps()));
}

export const handler = createHandler(() => depsFromEnv());
