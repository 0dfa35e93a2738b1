/**
 * POST /callbacks/{secret} (REST API, payload v1, no API key): IVA's result callbacks.
 * Wiring only; the logic is lib/callback/handle.ts.
 *
 * The path holds the secret, so the event is never logged (`logEvent: false` overrides
 * POWERTOOLS_LOGGER_LOG_EVENT) and only the redacted route is. Every failure becomes a
 * small JSON answer `{ "error": { "code", "message" } }`: a CallbackError keeps its own
 * status; anything unexpected is 503, so IVA retries rather than drops the result. A
 * wrong secret is the exception: it gets API Gateway's own RouteNotFound answer.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { DEFAULTS, ENV, required } from '../../lib/config';
import {
  CallbackError,
  RetryableCallbackError,
  createEventBridgePublisher,
  handleCallback,
  NotFoundError,
  REDACTED_CALLBACK_PATH,
  type CallbackDeps,
} from '../../lib/callback/index';
import { lowerCaseHeaders } from '../../lib/http/headers';
import {
  gatewayErrorBody,
  gatewayErrorHeaders,
  ROUTE_NOT_FOUND_CODE,
  ROUTE_NOT_FOUND_MESSAGE,
  ROUTE_NOT_FOUND_STATUS,
} from '../../lib/http/route-not-found';
import { logger, metrics, withObservability } from '../../lib/observability';
import { lazy, ledgerFromEnv } from '../../lib/runtime';
import { callbackSecretsFrom } from '../../lib/secrets/index';
import { createS3Client } from '../../lib/storage/s3-client';

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

function json(statusCode: number, body: unknown): APIGatewayProxyResult {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify(body) };
}

/** Maps every error to the JSON error shape; never lets a throw become a bare 500/502. */
function jsonErrors(): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  return {
    onError: (request) => {
      const error = request.error;
      if (error instanceof NotFoundError) {
        // Byte for byte what API Gateway answers for a path that does not exist.
        const requestId = request.event?.requestContext?.requestId ?? '';
        request.response = {
          statusCode: ROUTE_NOT_FOUND_STATUS,
          headers: gatewayErrorHeaders(ROUTE_NOT_FOUND_CODE),
          body: gatewayErrorBody(requestId, ROUTE_NOT_FOUND_CODE, ROUTE_NOT_FOUND_MESSAGE),
        };
        return;
      }
      if (error instanceof CallbackError) {
        if (error.httpStatus >= 500)
          logger.error('Callback not completed', {
            code: error.code,
            reason: error instanceof RetryableCallbackError ? error.reason : undefined,
          });
        request.response = json(error.httpStatus, { error: { code: error.code, message: error.message } });
        return;
      }
      logger.error('Callback failed unexpectedly', { errorName: error?.name, errorMessage: error?.message });
      request.response = json(503, {
        error: { code: 'ServiceUnavailable', message: 'The callback could not be processed; retry later' },
      });
    },
  };
}

export function depsFromEnv(env: Record<string, string | undefined> = process.env): CallbackDeps {
  return {
    s3: createS3Client({ env }),
    bucket: required(env, ENV.bucket),
    ledger: ledgerFromEnv(env),
    secrets: callbackSecretsFrom(env),
    publisher: createEventBridgePublisher({ eventBusName: env[ENV.eventBusName] || DEFAULTS.eventBusName }),
  };
}

/** `deps` or a factory called on the first invocation (so importing reads no env). */
export function createHandler(deps: CallbackDeps | (() => CallbackDeps)) {
  const given = lazy(deps);
  const getDeps = lazy(() => withObservability(given()));
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics))
    .use(jsonErrors())
    .handler(async (event) => {
      const requestId = event.requestContext?.requestId;
      logger.appendKeys({ route: `POST ${REDACTED_CALLBACK_PATH}`, ...(requestId ? { requestId } : {}) });
      const answer = await handleCallback(getDeps(), {
        secret: event.pathParameters?.secret,
        body: event.body,
        isBase64Encoded: event.isBase64Encoded,
        contentType: lowerCaseHeaders(event.headers, event.multiValueHeaders)['content-type'],
        requestId,
      });
      return json(200, answer);
    });
}

export const handler = createHandler(() => depsFromEnv());
