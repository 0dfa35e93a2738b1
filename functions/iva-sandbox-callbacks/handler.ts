/**
 * Posts the sandbox's queued result callbacks (SQS event source, partial batch
 * failures) to the stack's own callback URL: `CALLBACK_BASE_URL` + the current callback
 * secret. Deployed only by `-c ivaMode=sandbox`; see local/iva-sandbox/queued.ts.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { ENV, type Env, required } from '../../lib/config';
import { logger } from '../../lib/observability';
import { lazy } from '../../lib/runtime';
import { callbackSecretsFrom } from '../../lib/secrets/index';
import { type CallbackSenderDeps, sendCallbacks } from '../../local/iva-sandbox/queued';

export function depsFromEnv(env: Env = process.env): CallbackSenderDeps {
  const base = required(env, ENV.callbackBaseUrl);
  const secrets = callbackSecretsFrom(env);
  return {
    // The current secret (the first value while a rotation keeps both).
    callbackUrl: async () => `${base}${(await secrets.get())[0]}`,
    logger,
  };
}

export function createHandler(deps: CallbackSenderDeps | (() => CallbackSenderDeps)) {
  const getDeps = lazy(deps);
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .handler((event) => sendCallbacks(event.Records, getDeps()));
}

export const handler = createHandler(() => depsFromEnv());
