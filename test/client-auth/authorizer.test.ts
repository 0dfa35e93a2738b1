/**
 * The client authorizer's decisions without servers: requests signed by the official
 * @volcengine/openapi signer (the oracle) and by lib/client/signing are accepted; every
 * refusal has IVA's code; a signature is accepted once; the size guard applies to the
 * multipart routes only; the Lambda handler shapes its answer for API Gateway.
 */
import { createHash } from 'node:crypto';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/client-auth/handler';
import {
  type AuthorizerDeps,
  type AuthorizerRequest,
  authorize,
  cachedKeyLookup,
  type ClientKey,
  createMemoryReplayGuard,
  EMPTY_BODY_SHA256,
} from '../../lib/client-auth/index';
import { signRequest } from '../../lib/client/signing';
import { silentLogger } from '../../lib/observability';
import { Signer } from '../support/oracle-signer';

const KEY: ClientKey = { accessKeyId: 'AKIBTEST', secretAccessKey: 'secret-1', client: 'app', usageKey: 'usage-1' };
const NOW = new Date('2026-12-03T07:00:00Z');

function deps(overrides: Partial<AuthorizerDeps> = {}): AuthorizerDeps {
  return {
    secretOf: async (ak) => (ak === KEY.accessKeyId ? KEY : undefined),
    replay: createMemoryReplayGuard(() => NOW.getTime()),
    region: 'cn-north-1',
    service: 'iva',
    directMaxBytes: 100,
    now: () => NOW,
    ...overrides,
  };
}

/** What API Gateway hands the authorizer for a request the official signer signed. */
function oracleRequest(
  options: { method?: string; path?: string; body?: string; date?: Date; secret?: string; resource?: string } = {},
): AuthorizerRequest {
  const params = { Action: 'AddAsyncTaskImageData', Version: '2022-05-13' };
  const headers: Record<string, string> = { 'content-type': 'multipart/form-data; boundary=x' };
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  const request = {
    region: 'cn-north-1',
    method: options.method ?? 'POST',
    pathname: options.path ?? '/',
    params,
    headers,
    ...(options.body !== undefined ? { body: options.body } : {}),
  };
  new Signer(request, 'iva').addAuthorization(
    { accessKeyId: KEY.accessKeyId, secretKey: options.secret ?? KEY.secretAccessKey },
    options.date ?? NOW,
  );
  return {
    method: request.method,
    resource: options.resource ?? '/',
    requestPath: request.pathname,
    path: request.pathname,
    query: { Action: [params.Action], Version: [params.Version] },
    headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v])),
  };
}

const codeOf = async (req: AuthorizerRequest, d = deps()) => {
  const out = await authorize(req, d);
  return out.effect === 'Deny' ? out.context.code : 'Allow';
};

describe('client-auth authorize()', () => {
  it('accepts the official signer, and hands on the client, its usage key and the signed body hash', async () => {
    const body = 'hello';
    const out = await authorize(oracleRequest({ body }), deps());
    expect(out).toEqual({
      effect: 'Allow',
      usageKey: 'usage-1',
      context: { accessKeyId: 'AKIBTEST', client: 'app', bodySha256: createHash('sha256').update(body).digest('hex') },
    });
  });

  it('covers an unsigned X-Content-Sha256 with the empty body hash (a GET signed without one)', async () => {
    const out = await authorize(oracleRequest({ method: 'GET', resource: '/v1/submissions' }), deps());
    expect(out.effect === 'Allow' && out.context.bodySha256).toBe(EMPTY_BODY_SHA256);
  });

  it("accepts lib/client/signing's requests (path as sent, query, nonce)", async () => {
    const signed = await signRequest(
      'http://127.0.0.1:3000/prod/v1/tasks/my%20task/submissions?limit=5&cursor=a%2Bb',
      {},
      { accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey },
    );
    const headers = Object.fromEntries(
      Object.entries(signed.init.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    );
    headers['host'] = '127.0.0.1:3000';
    const req: AuthorizerRequest = {
      method: 'GET',
      resource: '/v1/tasks/{taskId}/submissions',
      requestPath: '/prod/v1/tasks/my%20task/submissions',
      path: '/v1/tasks/my%20task/submissions',
      query: { limit: ['5'], cursor: ['a+b'] },
      headers,
    };
    expect(await codeOf(req, deps({ now: () => new Date() }))).toBe('Allow');
  });

  it('refuses an unsigned request MissingSignature before reading a key, the ledger or the size (it runs for every anonymous request)', async () => {
    const touched: string[] = [];
    const spy = deps({
      secretOf: async () => {
        touched.push('secretOf');
        return KEY;
      },
      replay: {
        firstUse: async () => {
          touched.push('replay');
          return true;
        },
      },
    });
    const req = oracleRequest({ body: 'x'.repeat(500) });
    const { authorization: _a, ...unsigned } = req.headers;
    const outcome = await authorize({ ...req, headers: unsigned }, spy);
    expect(outcome).toMatchObject({ effect: 'Deny', context: { code: 'MissingSignature' } });
    expect(touched).toEqual([]);
  });

  it("refuses with IVA's codes", async () => {
    expect(await codeOf(oracleRequest({ secret: 'wrong' }))).toBe('SignatureDoesNotMatch');
    expect(await codeOf(oracleRequest(), deps({ secretOf: async () => undefined }))).toBe('InvalidAccessKey');
    expect(await codeOf(oracleRequest({ date: new Date(NOW.getTime() - 901_000) }))).toBe('InvalidTimestamp');
    expect(await codeOf(oracleRequest({ date: new Date(NOW.getTime() + 901_000) }))).toBe('InvalidTimestamp');
    expect(await codeOf(oracleRequest({ date: new Date(NOW.getTime() - 899_000) }))).toBe('Allow');
    expect(await codeOf(oracleRequest(), deps({ region: 'eu-west-1' }))).toBe('InvalidCredential');
    const req = oracleRequest();
    expect(await codeOf({ ...req, headers: { ...req.headers, authorization: undefined as never } })).toBe(
      'MissingSignature',
    );
    expect(await codeOf({ ...req, headers: { ...req.headers, authorization: 'HMAC-SHA256 nonsense' } })).toBe(
      'InvalidAuthorization',
    );
    // Another path, query or signed header value than was signed.
    expect(await codeOf({ ...oracleRequest(), requestPath: '/v1/images', path: '/v1/images' })).toBe(
      'SignatureDoesNotMatch',
    );
    expect(
      await codeOf({ ...oracleRequest(), query: { Action: ['AddAsyncTaskVideoData'], Version: ['2022-05-13'] } }),
    ).toBe('SignatureDoesNotMatch');
    const body = oracleRequest({ body: 'abc' });
    expect(await codeOf({ ...body, headers: { ...body.headers, 'x-content-sha256': EMPTY_BODY_SHA256 } })).toBe(
      'SignatureDoesNotMatch',
    );
  });

  it('accepts a signature once', async () => {
    const d = deps();
    const req = oracleRequest();
    expect(await codeOf(req, d)).toBe('Allow');
    const replay = await authorize(req, d);
    expect(replay).toMatchObject({ effect: 'Deny', context: { code: 'InvalidTimestamp' } });
    expect(replay.effect === 'Deny' && replay.context.message).toContain('already used');
  });

  it('denies a declared body over the limit on the multipart routes only, and keeps messages template-safe', async () => {
    const big = 'x'.repeat(101);
    expect(await codeOf(oracleRequest({ body: big, resource: '/' }))).toBe('PayloadTooLarge');
    expect(await codeOf(oracleRequest({ body: big, resource: '/v1/uploads', method: 'POST' }))).toBe('Allow');
    const req = oracleRequest();
    const out = await authorize({ ...req, headers: { ...req.headers, authorization: 'HMAC-SHA256 "x\\\\' } }, deps());
    expect(out.effect === 'Deny' && /["\\]/.test(out.context.message)).toBe(false);
  });

  it('caches a key it found for the TTL, and never a miss', async () => {
    let now = 0;
    let reads = 0;
    let present = true;
    const lookup = cachedKeyLookup(
      async () => {
        reads++;
        return present ? KEY : undefined;
      },
      60_000,
      () => now,
    );
    await lookup('AKIBTEST');
    await lookup('AKIBTEST');
    expect(reads).toBe(1);
    present = false;
    now = 59_999;
    expect(await lookup('AKIBTEST')).toEqual(KEY);
    now = 60_000;
    expect(await lookup('AKIBTEST')).toBeUndefined();
    expect(await lookup('AKIBTEST')).toBeUndefined();
    expect(reads).toBe(3);
  });
});

describe('functions/client-auth handler', () => {
  const event = (req: AuthorizerRequest): APIGatewayRequestAuthorizerEvent =>
    ({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/POST/',
      resource: req.resource,
      path: req.path,
      httpMethod: req.method,
      headers: req.headers,
      multiValueHeaders: {},
      queryStringParameters: null,
      multiValueQueryStringParameters: req.query as Record<string, string[]>,
      pathParameters: null,
      stageVariables: null,
      requestContext: { path: req.requestPath, requestId: 'r1' },
    }) as unknown as APIGatewayRequestAuthorizerEvent;

  it('allows with the usage plan key and context, denies with the code in the context', async () => {
    const handler = createHandler(deps(), silentLogger);
    const allowed = await handler(event(oracleRequest({ body: 'a' })));
    expect(allowed.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
    expect(allowed.usageIdentifierKey).toBe('usage-1');
    expect(allowed.principalId).toBe('AKIBTEST');
    const denied = await handler(event(oracleRequest({ secret: 'wrong' })));
    expect(denied.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    expect(denied.context).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(denied.usageIdentifierKey).toBeUndefined();
  });
});
