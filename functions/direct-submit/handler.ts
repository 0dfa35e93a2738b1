/**
 * API Gateway (REST, payload v1) → the HTTP API of lib/api: direct multipart
 * submissions, upload URLs, status. Wiring only: the event becomes an ApiRequest,
 * the ApiResponse becomes the proxy result.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { createApi, type Api, type ApiDeps, type ApiRequest, type ApiResponse } from '../../lib/api/index';
import { ApiError } from '../../lib/api/errors';
import type { Caller } from '../../lib/ledger/types';
import { errorResponse } from '../../lib/api/responses';
import { directMaxBytesFromEnv } from '../../lib/api/size-guard';
import { createSubmissionEventPublisher } from '../../lib/callback/events';
import { createDynamoIdempotencyStore } from '../../lib/ledger/idempotency';
import { DEFAULTS, ENV, ivaTarget, number, optional, required, type Env } from '../../lib/config';
import { createSqsQueue } from '../../lib/s3-intake/sqs-queue';
import { lowerCaseHeaders } from '../../lib/http/headers';
import { logger, metrics, withObservability } from '../../lib/observability';
import { ivaFromEnv, lazy, ledgerFromEnv } from '../../lib/runtime';
import { signingS3Client } from '../../lib/storage/role-session';
import { createS3Client } from '../../lib/storage/s3-client';

export type DirectSubmitDeps = ApiDeps;

export function depsFromEnv(env: Env = process.env): DirectSubmitDeps {
  const target = ivaTarget(env);
  const iva = ivaFromEnv(env);
  const s3 = createS3Client({ env });
  const uploadUrlTtlSeconds = number(env, ENV.uploadUrlTtlSeconds, DEFAULTS.uploadUrlTtlSeconds);
  return {
    ledger: ledgerFromEnv(env),
    iva: iva.client,
    credentials: iva.credentials,
    s3,
    // Upload URLs are signed as UPLOAD_ROLE_ARN (set by the stack): its session's expiry is
    // known, so ExpiresAt is the URL's real end (Lambda's own credentials carry none).
    presignS3: signingS3Client(s3, ENV.uploadRoleArn, uploadUrlTtlSeconds, { env }),
    bucket: required(env, ENV.bucket),
    events: createSubmissionEventPublisher({ eventBusName: env[ENV.eventBusName] || DEFAULTS.eventBusName }),
    // POST /v1/submissions/{id}/resubmit queues the object's S3 event again (lib/api/resubmit.ts).
    ...(optional(env, ENV.intakeQueueUrl) ? { intakeQueue: createSqsQueue(required(env, ENV.intakeQueueUrl)) } : {}),
    idempotency: createDynamoIdempotencyStore({ tableName: required(env, ENV.ledgerTable) }),
    config: {
      directMaxBytes: directMaxBytesFromEnv(env),
      uploadUrlTtlSeconds,
      ivaService: target.service,
      ivaRegion: target.region,
    },
  };
}

function queryOf(event: APIGatewayProxyEvent): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(event.multiValueQueryStringParameters ?? {})) {
    if (Array.isArray(values)) out[name] = values.filter((v): v is string => typeof v === 'string');
  }
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (out[name] === undefined && typeof value === 'string') out[name] = [value];
  }
  return out;
}

/**
 * Who is calling, as API Gateway established it: on the client-key API the authorizer's
 * verified key (`requestContext.authorizer`: accessKeyId, client), on the IAM API the
 * SigV4 principal (`requestContext.identity.userArn`, with accountId and accessKey).
 * Neither is set by the client: API Gateway writes both.
 */
export function callerOf(event: APIGatewayProxyEvent): Caller | undefined {
  const authorizer = event.requestContext?.authorizer;
  if (typeof authorizer?.['accessKeyId'] === 'string' && typeof authorizer['client'] === 'string')
    return { auth: 'client-key', client: authorizer['client'], accessKeyId: authorizer['accessKeyId'] };
  const identity = event.requestContext?.identity;
  if (typeof identity?.userArn === 'string' && identity.userArn !== '')
    return {
      auth: 'iam',
      arn: identity.userArn,
      ...(typeof identity.accountId === 'string' && identity.accountId !== '' ? { accountId: identity.accountId } : {}),
      ...(typeof identity.accessKey === 'string' && identity.accessKey !== ''
        ? { accessKeyId: identity.accessKey }
        : {}),
    };
  return undefined;
}

export function toApiRequest(event: APIGatewayProxyEvent, context: Context): ApiRequest {
  const caller = callerOf(event);
  const pathParameters = Object.fromEntries(
    Object.entries(event.pathParameters ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  return {
    method: typeof event.httpMethod === 'string' ? event.httpMethod : 'GET',
    path: typeof event.path === 'string' ? event.path : '/',
    ...(typeof event.resource === 'string' && event.resource !== '' ? { resource: event.resource } : {}),
    ...(typeof event.requestContext?.requestTimeEpoch === 'number'
      ? { receivedAtMs: event.requestContext.requestTimeEpoch }
      : {}),
    headers: lowerCaseHeaders(event.headers, event.multiValueHeaders),
    query: queryOf(event),
    ...(Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
    ...(typeof event.body === 'string' ? { body: { text: event.body, base64: event.isBase64Encoded === true } } : {}),
    // The client-key API's authorizer verified the signature over X-Content-Sha256 without
    // seeing the body: the body must hash to it. The IAM API has no such check to make:
    // SigV4 covers the payload hash and API Gateway verified it against the body.
    ...(typeof event.requestContext?.authorizer?.['bodySha256'] === 'string'
      ? { signedBodySha256: event.requestContext.authorizer['bodySha256'] as string }
      : {}),
    ...(caller ? { caller } : {}),
    requestId: event.requestContext?.requestId ?? context.awsRequestId,
    remainingMs: () =>
      typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : 30_000,
  };
}

export function toProxyResult(response: ApiResponse): APIGatewayProxyResult {
  return { statusCode: response.status, headers: response.headers, body: response.body, isBase64Encoded: false };
}

export function createHandler(deps: DirectSubmitDeps | (() => DirectSubmitDeps)) {
  const getDeps = lazy(deps);
  const getApi = lazy((): Api => createApi(withObservability(getDeps())));

  const base = async (event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> => {
    const request = toApiRequest(event ?? ({} as APIGatewayProxyEvent), context);
    logger.appendKeys({
      apiRequestId: request.requestId,
      method: request.method,
      route: request.resource ?? request.path,
      ...(request.caller
        ? { caller: request.caller.auth === 'iam' ? request.caller.arn : `client ${request.caller.client}` }
        : {}),
    });
    const response = await getApi().handle(request);
    logger.info('answered', { status: response.status });
    return toProxyResult(response);
  };

  return (
    middy(base)
      // The event holds the client's API key and whole request bodies: never logged, even
      // when POWERTOOLS_LOGGER_LOG_EVENT is switched on for debugging.
      .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
      .use(logMetrics(metrics))
      .use({
        // Last line of defence (e.g. deps that cannot be built): still IVA's shape, never a bare 502.
        onError: async (request) => {
          logger.error('unhandled error', {
            error:
              request.error instanceof Error
                ? `${request.error.name}: ${request.error.message}`
                : String(request.error),
          });
          const requestId = request.context?.awsRequestId ?? 'unknown';
          request.response = toProxyResult(
            errorResponse(
              new ApiError(
                'InternalError',
                `An internal error occurred; retry later and quote RequestId ${requestId} if it persists`,
              ),
              { action: 'Unknown', requestId },
            ),
          );
        },
      })
  );
}

export const handler = createHandler(() => depsFromEnv(process.env));
