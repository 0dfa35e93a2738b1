/**
 * REQUEST authorizer of POST /callbacks/{secret} (no caching): the path secret against
 * the callback secret(s) in Secrets Manager, in constant time. Wiring only; the logic is
 * lib/callback/authorize.ts.
 *
 * Allow: API Gateway PUTs the body to callbacks-inbox/ (infra/stack.ts). A wrong or
 * missing secret fails with `Unauthorized`, which API Gateway turns into its UNAUTHORIZED
 * gateway response: the stack gives that exactly the unknown-route answer (404
 * RouteNotFound), and nothing is stored. A secret that cannot be read fails otherwise
 * (AUTHORIZER_FAILURE, a 5xx), so IVA retries.
 *
 * The event holds the secret (path, pathParameters): it is never logged.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { authorizeCallback, type CallbackAuthDeps } from '../../lib/callback/authorize';
import { logger } from '../../lib/observability';
import { lazy } from '../../lib/runtime';
import { callbackSecretsFrom } from '../../lib/secrets/index';

export const PRINCIPAL_ID = 'iva';

export function depsFromEnv(env: Record<string, string | undefined> = process.env): CallbackAuthDeps {
  return { secrets: callbackSecretsFrom(env), logger };
}

export function createHandler(deps: CallbackAuthDeps | (() => CallbackAuthDeps)) {
  const getDeps = lazy(deps);
  return async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const requestId = event.requestContext?.requestId;
    logger.appendKeys({ route: 'POST /callbacks/{secret}', ...(requestId ? { requestId } : {}) });
    const decision = await authorizeCallback(getDeps(), event.pathParameters?.secret);
    // Lambda authorizers signal "401" by failing with exactly this message.
    if (decision !== 'allow') throw new Error('Unauthorized');
    return {
      principalId: PRINCIPAL_ID,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
      },
    };
  };
}

export const handler = createHandler(() => depsFromEnv());
