/**
 * The REQUEST authorizer of every API route but the callback: IVA's HMAC-SHA256
 * signature with a per-client key from Secrets Manager, each signature once, and on the
 * multipart routes the declared body size (lib/client-auth/authorizer.ts). Caching is
 * off in the stack: every request is verified. It lists no identity source (UNAUTHORIZED
 * is the callback route's 404), so unsigned requests reach it too: they are refused
 * MissingSignature before any key, ledger or size check.
 *
 * No middleware and no Powertools: it runs before every API call. Logs one JSON line per
 * refusal (code, access key id, route template), never a header value or signature.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { directMaxBytesFromEnv } from '../../lib/api/size-guard';
import { sdkRequestHandler } from '../../lib/aws/sdk-http';
import {
  type AuthorizerDeps,
  authorize,
  cachedKeyLookup,
  createClientKeyStore,
  createDynamoReplayGuard,
} from '../../lib/client-auth/index';
import { CLIENT_AUTH_DEFAULTS, ENV, type Env, required } from '../../lib/config';
import { lowerCaseHeaders } from '../../lib/http/headers';
import { defaultDocumentClient } from '../../lib/ledger/dynamo';
import type { LoggerPort } from '../../lib/observability';
import { lazy } from '../../lib/runtime';

export const PRINCIPAL_ID = 'client';
/** How long a container trusts a key it read: a revoked key stops working within this. */
export const KEY_CACHE_MS = 60_000;

const jsonLineLogger: LoggerPort = {
  debug: () => undefined,
  info: (message, ...attributes) =>
    console.log(JSON.stringify(Object.assign({ level: 'INFO', message }, ...attributes))),
  warn: (message, ...attributes) =>
    console.log(JSON.stringify(Object.assign({ level: 'WARN', message }, ...attributes))),
  error: (message, ...attributes) =>
    console.log(JSON.stringify(Object.assign({ level: 'ERROR', message }, ...attributes))),
  appendKeys: () => undefined,
};

export function depsFromEnv(env: Env = process.env): AuthorizerDeps {
  const keys = createClientKeyStore(
    new SecretsManagerClient({ requestHandler: sdkRequestHandler() }),
    required(env, ENV.clientKeyPrefix),
  );
  return {
    secretOf: cachedKeyLookup((ak) => keys.get(ak), KEY_CACHE_MS),
    replay: createDynamoReplayGuard(defaultDocumentClient(), required(env, ENV.ledgerTable)),
    region: env[ENV.clientAuthRegion] || CLIENT_AUTH_DEFAULTS.region,
    service: env[ENV.clientAuthService] || CLIENT_AUTH_DEFAULTS.service,
    directMaxBytes: directMaxBytesFromEnv(env),
  };
}

function policy(effect: 'Allow' | 'Deny', methodArn: string): APIGatewayAuthorizerResult['policyDocument'] {
  return { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: methodArn }] };
}

function queryOf(event: APIGatewayRequestAuthorizerEvent): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(event.multiValueQueryStringParameters ?? {})) if (v) out[k] = [...v];
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (v !== undefined && !out[k]) out[k] = [v];
  return out;
}

export function createHandler(deps: AuthorizerDeps | (() => AuthorizerDeps), logger: LoggerPort = jsonLineLogger) {
  const getDeps = lazy(deps);
  return async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const outcome = await authorize(
      {
        method: event.httpMethod,
        resource: event.resource,
        requestPath: event.requestContext?.path,
        path: event.path,
        query: queryOf(event),
        headers: lowerCaseHeaders(event.headers, event.multiValueHeaders),
      },
      getDeps(),
    );
    if (outcome.effect === 'Deny') {
      logger.info('client-auth refused', {
        code: outcome.context.code,
        ...(outcome.context.accessKeyId ? { accessKeyId: outcome.context.accessKeyId } : {}),
        route: `${event.httpMethod} ${event.resource}`,
        ...(event.requestContext?.requestId ? { requestId: event.requestContext.requestId } : {}),
      });
      return { principalId: PRINCIPAL_ID, policyDocument: policy('Deny', event.methodArn), context: outcome.context };
    }
    return {
      principalId: outcome.context.accessKeyId,
      policyDocument: policy('Allow', event.methodArn),
      context: outcome.context,
      usageIdentifierKey: outcome.usageKey,
    };
  };
}

export const handler = createHandler(() => depsFromEnv(process.env));
