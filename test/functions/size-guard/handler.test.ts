import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHandler, DENY_REASON, PRINCIPAL_ID } from '../../../functions/size-guard/handler';
import { DEFAULTS, ENV } from '../../../lib/config';
import { type LoggerPort, silentLogger } from '../../../lib/observability';

/** A logger that keeps each line's attributes. */
const capture = (logs: unknown[]): LoggerPort => ({
  ...silentLogger,
  info: (_message, ...attributes) => {
    logs.push(Object.assign({}, ...attributes));
  },
});

const METHOD_ARN = 'arn:aws:execute-api:cn-north-1:123456789012:abc123def4/prod/POST/v1/images';

/** A REQUEST authorizer event as API Gateway (REST) sends it. */
function event(
  headers: Record<string, string>,
  overrides: Partial<APIGatewayRequestAuthorizerEvent> = {},
): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '/v1/images',
    path: '/v1/images',
    httpMethod: 'POST',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    pathParameters: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123def4',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: 'POST',
      identity: {} as APIGatewayRequestAuthorizerEvent['requestContext']['identity'],
      path: '/prod/v1/images',
      stage: 'prod',
      requestId: 'req-123',
      requestTimeEpoch: 1_700_000_000_000,
      resourceId: 'res1',
      resourcePath: '/v1/images',
    },
    ...overrides,
  };
}

const allow = (arn: string) => ({
  principalId: PRINCIPAL_ID,
  policyDocument: {
    Version: '2012-10-17',
    Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: arn }],
  },
});

describe('size-guard authorizer', () => {
  const secretHeaders = {
    'x-api-key': 'secret-key-value',
    authorization: 'Bearer secret-token',
    'content-type': 'multipart/form-data; boundary=x',
  };

  it('allows a body within the limit on exactly the invoked method', async () => {
    const logs: unknown[] = [];
    const handler = createHandler(DEFAULTS.directMaxBytes, capture(logs));
    expect(await handler(event({ ...secretHeaders, 'Content-Length': '2048' }))).toEqual(allow(METHOD_ARN));
    expect(logs).toEqual([]);
  });

  it('denies a body over the limit explicitly, with the context the 413 gateway response reads', async () => {
    const logs: Array<Record<string, string | number>> = [];
    const handler = createHandler(DEFAULTS.directMaxBytes, capture(logs));
    const arn = 'arn:aws:execute-api:cn-north-1:123456789012:abc123def4/prod/POST/';
    const result = await handler(
      event({ ...secretHeaders, 'content-length': '6000000' }, { methodArn: arn, resource: '/', path: '/' }),
    );
    expect(result).toEqual({
      principalId: PRINCIPAL_ID,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: arn }],
      },
      context: { reason: DENY_REASON, maxBytes: String(DEFAULTS.directMaxBytes) },
    });
    expect(DENY_REASON).toBe('PayloadTooLarge');
    // Context values must be strings, numbers or booleans for API Gateway.
    for (const value of Object.values(result.context ?? {})) expect(typeof value).toBe('string');
    expect(logs).toEqual([
      {
        decision: 'deny-too-large',
        contentLength: 6_000_000,
        maxBytes: DEFAULTS.directMaxBytes,
        route: 'POST /',
        requestId: 'req-123',
      },
    ]);
  });

  it('never logs a header other than the length', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
    try {
      const handler = createHandler(100);
      await handler(event({ ...secretHeaders, 'content-length': '101' }));
      await handler(event({ ...secretHeaders }));
      await handler(event({ ...secretHeaders, 'content-length': 'junk' }));
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toMatch(/secret|boundary|Bearer/);
      expect(JSON.parse(line)).toMatchObject({ level: 'INFO', message: 'size-guard', route: 'POST /v1/images' });
    }
    expect(JSON.parse(lines[1] as string)).toMatchObject({ decision: 'allow-unknown', reason: 'missing' });
    expect(JSON.parse(lines[2] as string)).toMatchObject({ decision: 'allow-unknown', reason: 'malformed' });
  });

  it('allows (and logs) a request without Content-Length: direct-submit checks the decoded body itself', async () => {
    const logs: Array<Record<string, string | number>> = [];
    const handler = createHandler(100, capture(logs));
    const noHeaders = event({}, { headers: null, multiValueHeaders: null });
    expect(await handler(noHeaders)).toEqual(allow(METHOD_ARN));
    expect(logs).toEqual([expect.objectContaining({ decision: 'allow-unknown', reason: 'missing' })]);
  });

  it('reads the length from multiValueHeaders when the single-value map lacks it', async () => {
    const handler = createHandler(100, silentLogger);
    const ev = event({}, { multiValueHeaders: { 'Content-Length': ['500'] } });
    expect((await handler(ev)).policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
  });

  it('uses DIRECT_MAX_BYTES from the environment for the exported handler', async () => {
    vi.stubEnv(ENV.directMaxBytes, '10');
    vi.resetModules();
    const { handler } = await import('../../../functions/size-guard/handler');
    const spy = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const result = await handler(event({ 'content-length': '11' }));
      expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny', Resource: METHOD_ARN });
      expect(result.context).toEqual({ reason: DENY_REASON, maxBytes: '10' });
      expect((await handler(event({ 'content-length': '10' }))).policyDocument.Statement[0]).toMatchObject({
        Effect: 'Allow',
      });
    } finally {
      spy.mockRestore();
    }
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });
});
