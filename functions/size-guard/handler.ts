/**
 * REQUEST authorizer on the three direct multipart routes (POST /v1/images, /v1/videos,
 * POST /). It authorizes nothing (the API key does that): it refuses a body whose
 * declared Content-Length is over DIRECT_MAX_BYTES, so API Gateway answers 413 naming
 * POST /v1/uploads (the ACCESS_DENIED gateway response, infra/stack.ts) instead of
 * invoking direct-submit with an event over Lambda's 6 MB and answering a bare 502.
 *
 * Kept tiny on purpose: it runs, uncached, before every direct submission. No SDK, no
 * middleware, no secrets; the only header it reads or logs is Content-Length.
 */
import type { LoggerPort } from '../../lib/observability';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { checkDirectBodySize, directMaxBytesFromEnv, type SizeDecision } from '../../lib/api/size-guard';
import { lowerCaseHeaders } from '../../lib/http/headers';

export const PRINCIPAL_ID = 'client';
/** `context.reason` of a deny; also what the 413 gateway response is about. */
export const DENY_REASON = 'PayloadTooLarge';

/**
 * The default logger: one JSON line per call on stdout, in Powertools' shape, without
 * Powertools (this function stays tiny; only `info` is used).
 */
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

function policy(effect: 'Allow' | 'Deny', methodArn: string): APIGatewayAuthorizerResult['policyDocument'] {
  return { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: methodArn }] };
}

function logEntry(decision: SizeDecision, event: APIGatewayRequestAuthorizerEvent): Record<string, string | number> {
  const entry: Record<string, string | number> = {
    decision: decision.kind,
    maxBytes: decision.maxBytes,
    // The route template, never the raw path.
    route: `${event.httpMethod} ${event.resource}`,
  };
  if (decision.kind === 'allow-unknown') entry.reason = decision.reason;
  else entry.contentLength = decision.contentLength;
  const requestId = event.requestContext?.requestId;
  if (requestId) entry.requestId = requestId;
  return entry;
}

export function createHandler(maxBytes: number, logger: LoggerPort = jsonLineLogger) {
  return async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const decision = checkDirectBodySize(lowerCaseHeaders(event.headers, event.multiValueHeaders), maxBytes);
    // Allowed requests with a known size are the common case and need no log line; the
    // others are worth counting (a stream of allow-unknown means Content-Length is not
    // reaching the authorizer and only direct-submit's own check is left).
    if (decision.kind !== 'allow') logger.info('size-guard', logEntry(decision, event));
    if (decision.kind === 'deny-too-large') {
      return {
        principalId: PRINCIPAL_ID,
        policyDocument: policy('Deny', event.methodArn),
        // Read by the ACCESS_DENIED gateway response as $context.authorizer.maxBytes.
        context: { reason: DENY_REASON, maxBytes: String(decision.maxBytes) },
      };
    }
    return { principalId: PRINCIPAL_ID, policyDocument: policy('Allow', event.methodArn) };
  };
}

export const handler = createHandler(directMaxBytesFromEnv());
