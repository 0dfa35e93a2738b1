/**
 * The local stack's own machinery (API Gateway emulation, S3 → SQS delivery, the
 * EventBridge endpoint) with stand-in handlers that record what they receive. The real
 * functions run through it in test/e2e.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../../lib/storage/s3-client';
import { decodeS3EventKey } from '../../../lib/s3-intake/rules';
import { startLocalStack, type LocalStack, type RestProxyEvent, type SqsBatchEvent } from '../../../local/stack/index';
import type { LocalLambdaContext } from '../../../local/stack/lambda';
import { signingFetch } from '../../../lib/client/signing';
import { sha256Hex, sign } from '../../../lib/signer/index';

interface Invocation {
  event: SqsBatchEvent;
  at: number;
}

const apiEvents: RestProxyEvent[] = [];
const contexts: LocalLambdaContext[] = [];
const batches: Invocation[] = [];
let running = 0;
let maxRunning = 0;

async function objectCreated(event: SqsBatchEvent): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> {
  running += 1;
  maxRunning = Math.max(maxRunning, running);
  batches.push({ event, at: Date.now() });
  await new Promise((r) => setTimeout(r, 30));
  running -= 1;
  const failures = event.Records.filter((r) => {
    const key = decodeS3EventKey(
      (JSON.parse(r.body) as { Records: { s3: { object: { key: string } } }[] }).Records[0]!.s3.object.key,
    );
    // "flaky" fails its first two receives, "poison" always.
    return key.includes('poison') || (key.includes('flaky') && Number(r.attributes.ApproximateReceiveCount) < 3);
  });
  return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
}

async function directSubmit(event: RestProxyEvent, context: LocalLambdaContext): Promise<unknown> {
  apiEvents.push(event);
  contexts.push(context);
  if (event.path === '/v1/submissions/throw') throw new Error('boom');
  if (event.path === '/v1/submissions/malformed') return { body: 'no status code' };
  if (event.path === '/v1/submissions/binary')
    return {
      statusCode: 200,
      body: Buffer.from('binary-ok').toString('base64'),
      isBase64Encoded: true,
      headers: { 'content-type': 'application/octet-stream' },
    };
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'x-one': 'a' },
    multiValueHeaders: { 'x-many': ['1', '2'] },
    body: JSON.stringify({ ok: true }),
    isBase64Encoded: false,
  };
}

const inboxBatches: SqsBatchEvent[] = [];
const authorizerEvents: RestProxyEvent[] = [];

/** Allows exactly the path secret `s3cr3t`, as the real one allows the configured secret. */
async function callbackAuthorizer(event: RestProxyEvent & { methodArn: string }): Promise<unknown> {
  authorizerEvents.push(event);
  if (event.pathParameters?.secret !== 's3cr3t') throw new Error('Unauthorized');
  return {
    principalId: 'iva',
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
    },
  };
}

let eventBridgeClient: EventBridgeClient | undefined;
async function resultCallback(event: SqsBatchEvent): Promise<unknown> {
  inboxBatches.push(event);
  // Built on first use like the real functions: the stack's env is set by then.
  eventBridgeClient ??= new EventBridgeClient({});
  await eventBridgeClient.send(
    new PutEventsCommand({
      Entries: [
        {
          Source: 'iva-bridge',
          DetailType: 'IVA result',
          Detail: JSON.stringify({ taskId: 't', dataId: 'd', status: 'completed' }),
        },
      ],
    }),
  );
  return { batchItemFailures: [] };
}

let stack: LocalStack;
const lines: string[] = [];

beforeAll(async () => {
  stack = await startLocalStack({
    apiKey: 'test-key',
    handlers: {
      objectCreated: objectCreated as never,
      directSubmit: directSubmit as never,
      resultCallback: resultCallback as never,
      callbackAuthorizer: callbackAuthorizer as never,
    },
    sqs: { visibilityTimeoutMs: 150, maxReceiveCount: 3, maxConcurrency: 2, batchingWindowMs: 20 },
    log: (line) => lines.push(line),
  });
});

afterAll(async () => {
  eventBridgeClient?.destroy();
  await stack?.close();
});

/** The stack's default client key signs (the authorizer, client-auth, runs for real). */
const signed = (url: string, init: RequestInit = {}): Promise<Response> =>
  signingFetch({ accessKeyId: stack.info.clientAccessKeyId, secretAccessKey: stack.info.clientSecretAccessKey })(
    url,
    init,
  );
const lastEvent = (): RestProxyEvent => apiEvents[apiEvents.length - 1]!;

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('API Gateway emulation', () => {
  it('passes a multipart body base64-encoded and byte-exact, with REST v1 fields', async () => {
    const bytes = Buffer.from([0xff, 0xd8, 0x00, 0x01, 0x80, 0x0a]);
    const form = new FormData();
    form.set('Request', JSON.stringify({ TaskID: 't1', Image: { Name: 'a.jpg', Source: 'file' } }));
    form.set('ImageFile', new Blob([bytes], { type: 'image/jpeg' }), 'a.jpg');
    const res = await signed(`${stack.apiUrl}v1/images?x=1&x=2&y=%20z`, {
      method: 'POST',
      headers: { 'X-Custom': 'v' },
      body: form,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-many')).toBe('1, 2');
    const e = lastEvent();
    expect(e.resource).toBe('/v1/images');
    expect(e.path).toBe('/v1/images');
    expect(e.httpMethod).toBe('POST');
    expect(e.isBase64Encoded).toBe(true);
    const body = Buffer.from(e.body!, 'base64');
    expect(body.includes(bytes)).toBe(true);
    expect(e.headers['X-Custom']).toBe('v');
    expect(e.multiValueHeaders['X-Custom']).toEqual(['v']);
    expect(e.queryStringParameters).toEqual({ x: '2', y: ' z' });
    expect(e.multiValueQueryStringParameters).toEqual({ x: ['1', '2'], y: [' z'] });
    expect(e.pathParameters).toBeNull();
    expect(e.requestContext.stage).toBe('prod');
    expect(e.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.requestContext.identity.sourceIp).toBe('127.0.0.1');
    // The usage plan key is the one the authorizer named (API key source AUTHORIZER).
    expect(e.requestContext.identity.apiKey).toBe('test-key');
    expect(e.requestContext.authorizer).toMatchObject({ client: 'local', accessKeyId: stack.info.clientAccessKeyId });
    expect(res.headers.get('x-amzn-requestid')).toBe(e.requestContext.requestId);
    const ctx = contexts[contexts.length - 1]!;
    expect(ctx.functionName).toBe('iva-bridge-local-DirectSubmit');
    expect(ctx.getRemainingTimeInMillis()).toBeGreaterThan(20_000);
    expect(ctx.getRemainingTimeInMillis()).toBeLessThanOrEqual(29_000);
  });

  it('passes every body base64 (binary media types */*), decodes path parameters but not the path', async () => {
    await signed(`${stack.apiUrl}v1/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"TaskID":"é"}',
    });
    expect(lastEvent().isBase64Encoded).toBe(true);
    expect(Buffer.from(lastEvent().body ?? '', 'base64').toString('utf8')).toBe('{"TaskID":"é"}');
    await signed(`${stack.apiUrl}v1/tasks/my%20task%2Fx/submissions`);
    expect(lastEvent().resource).toBe('/v1/tasks/{taskId}/submissions');
    expect(lastEvent().path).toBe('/v1/tasks/my%20task%2Fx/submissions');
    expect(lastEvent().pathParameters).toEqual({ taskId: 'my task/x' });
    expect(lastEvent().body).toBeNull();
  });

  it('routes the vendor form POST /?Action=… with its query', async () => {
    const res = await signed(`${stack.apiUrl}?Action=AddAsyncTaskImageData&Version=2022-05-13`, {
      method: 'POST',
      body: 'x',
    });
    expect(res.status).toBe(200);
    expect(lastEvent().resource).toBe('/');
    expect(lastEvent().queryStringParameters).toEqual({ Action: 'AddAsyncTaskImageData', Version: '2022-05-13' });
  });

  it('answers unsigned (even with the API key) or wrongly signed requests in IVA shape, and never reaches the function', async () => {
    const before = apiEvents.length;
    for (const headers of [{}, { 'x-api-key': 'test-key' }] as Record<string, string>[]) {
      const res = await fetch(`${stack.apiUrl}v1/submissions/abc`, { headers });
      // The authorizer runs (it lists no identity source) and denies: ACCESS_DENIED, 403.
      expect(res.status).toBe(403);
      const body = (await res.json()) as { ResponseMetadata: { Error: { Code: string } } };
      expect(body.ResponseMetadata.Error.Code).toBe('MissingSignature');
    }
    const wrong = await signingFetch({ accessKeyId: stack.info.clientAccessKeyId, secretAccessKey: 'wrong' })(
      `${stack.apiUrl}v1/submissions/abc`,
    );
    expect(wrong.status).toBe(403);
    expect(
      ((await wrong.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
    ).toBe('SignatureDoesNotMatch');
    expect(apiEvents.length).toBe(before);
  });

  it('maps a base64 proxy result back to bytes', async () => {
    const res = await signed(`${stack.apiUrl}v1/submissions/binary`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('binary-ok');
  });

  it('lets callbacks through without a key: the authorizer allows, S3 gets the exact bytes, its event reaches result-callback', async () => {
    const body = Buffer.concat([Buffer.from('{"a":1,"b":"'), Buffer.from([0xff, 0x00, 0xc3]), Buffer.from('"}')]);
    const res = await fetch(`${stack.apiUrl}callbacks/s3cr3t`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { ok: boolean; inbox: string };
    expect(answer).toEqual({ ok: true, inbox: res.headers.get('x-amzn-requestid') });
    expect(authorizerEvents[authorizerEvents.length - 1]?.pathParameters).toEqual({ secret: 's3cr3t' });
    await until(() =>
      inboxBatches.some((b) => b.Records.some((r) => r.body.includes(`callbacks-inbox/${answer.inbox}`))),
    );
    const s3 = createS3Client({
      endpoint: stack.s3Endpoint,
      region: stack.s3Region,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3AccessKeyId, secretAccessKey: stack.s3SecretAccessKey },
    });
    const out = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: `callbacks-inbox/${answer.inbox}` }));
    expect(Buffer.from(await out.Body!.transformToByteArray()).equals(body)).toBe(true);
    expect(out.ContentType).toBe('application/json');
    expect(out.Metadata).toMatchObject({
      'request-id': answer.inbox,
      'declared-content-type': 'application/json',
      'request-time-epoch': expect.stringMatching(/^\d{13}$/),
    });
    s3.destroy();
    // A wrong secret: the unknown route's answer, nothing written.
    const wrong = await fetch(`${stack.apiUrl}callbacks/other`, { method: 'POST', body: '{}' });
    expect(wrong.status).toBe(404);
    expect(lines.some((l) => l.includes('s3cr3t'))).toBe(false);
  });

  it('answers 404 for unknown routes and wrong methods', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/v1/images'],
      ['POST', '/v1/submissions/x'],
    ] as const) {
      const res = await signed(`${stack.apiUrl}${path.replace(/^\//, '')}`, {
        method,
      });
      expect(res.status).toBe(404);
      expect(
        ((await res.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
      ).toBe('RouteNotFound');
    }
  });

  it("answers PayloadTooLarge naming /v1/uploads over the direct limit (the authorizer's size guard, 403) and API Gateway's 10 MB (413)", async () => {
    const before = apiEvents.length;
    for (const size of [5 * 1024 * 1024, 11 * 1024 * 1024]) {
      const form = new FormData();
      form.set('Request', '{}');
      form.set('ImageFile', new Blob([Buffer.alloc(size, 1)], { type: 'image/jpeg' }), 'big.jpg');
      const res = await signed(`${stack.apiUrl}v1/images`, {
        method: 'POST',
        body: form,
      });
      expect(res.status).toBe(size > 10 * 1024 * 1024 ? 413 : 403);
      const body = (await res.json()) as { ResponseMetadata: { Error: { Code: string; Message: string } } };
      expect(body.ResponseMetadata.Error.Code).toBe('PayloadTooLarge');
      expect(body.ResponseMetadata.Error.Message).toContain('POST /v1/uploads');
    }
    expect(apiEvents.length).toBe(before);
    // 4 MB of binary is 5.3 MB of base64: under the limit, it reaches the function.
    const form = new FormData();
    form.set('ImageFile', new Blob([Buffer.alloc(4 * 1024 * 1024, 1)]), 'ok.jpg');
    const ok = await signed(`${stack.apiUrl}v1/images`, {
      method: 'POST',
      body: form,
    });
    expect(ok.status).toBe(200);
  });

  it('answers a chunked body too large for Lambda with 502 IntegrationFailure naming /v1/uploads, as AWS would', async () => {
    const before = apiEvents.length;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    // No Content-Length: the size guard cannot see it, the 6 MB invoke limit does.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 5) controller.enqueue(chunk);
        else controller.close();
      },
    });
    // Signed over the body's hash, then sent as a stream (no Content-Length).
    const url = new URL(`${stack.apiUrl}v1/images`);
    const { headers: signedHeaders } = sign({
      method: 'POST',
      host: url.host,
      path: url.pathname,
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      bodySha256: sha256Hex(Array.from({ length: 5 }, () => chunk)),
      credentials: { accessKeyId: stack.info.clientAccessKeyId, secretAccessKey: stack.info.clientSecretAccessKey },
      region: 'cn-north-1',
      service: 'iva',
    });
    const { Host: _host, ...headers } = signedHeaders;
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(502);
    const answer = (await res.json()) as { ResponseMetadata: { Error: { Code: string; Message: string } } };
    expect(answer.ResponseMetadata.Error.Code).toBe('IntegrationFailure');
    expect(answer.ResponseMetadata.Error.Message).toContain('POST /v1/uploads');
    expect(apiEvents.length).toBe(before);
  });

  it('turns a thrown error or a malformed result into 502', async () => {
    for (const id of ['throw', 'malformed']) {
      const res = await signed(`${stack.apiUrl}v1/submissions/${id}`);
      expect(res.status).toBe(502);
      expect(
        ((await res.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
      ).toBe('InternalError');
    }
  });
});

describe('EventBridge endpoint', () => {
  it('records PutEvents sent by the real SDK client', () => {
    const event = stack.events.find((e) => e['detail-type'] === 'IVA result');
    expect(event).toMatchObject({
      source: 'iva-bridge',
      eventBusName: 'default',
      detail: { taskId: 't', dataId: 'd', status: 'completed' },
    });
    expect(lines.some((l) => l.startsWith('eventbridge: iva-bridge "IVA result"') && l.includes('dataId=d'))).toBe(
      true,
    );
  });
});

describe('S3 → SQS delivery', () => {
  const s3 = () =>
    createS3Client({
      endpoint: stack.s3Endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3AccessKeyId, secretAccessKey: stack.s3SecretAccessKey },
    });

  it('delivers AWS-shaped, URL-encoded records for incoming/ only; retries failures; dead-letters poison', async () => {
    const client = s3();
    const keys = [
      'incoming/t1/my cat+1 ü%.jpg',
      'incoming/t1/flaky.jpg',
      'incoming/t1/poison.jpg',
      'results/t1/not-me.json',
    ];
    for (const [i, key] of keys.entries())
      await client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: `body-${i}` }));
    for (let i = 0; i < 25; i++)
      await client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `incoming/burst/${i}.jpg`, Body: 'x' }));
    client.destroy();

    await until(() => stack.deadLetters.length === 1 && stack.queue.depth === 0);
    const records = batches.flatMap((b) => b.event.Records);
    const bodies = records.map(
      (r) =>
        (
          JSON.parse(r.body) as {
            Records: {
              eventVersion: string;
              eventSource: string;
              eventName: string;
              s3: {
                bucket: { name: string; arn: string };
                object: { key: string; size: number; eTag: string; sequencer: string };
              };
            }[];
          }
        ).Records[0]!,
    );
    const first = bodies.find((b) => b.s3.object.key.startsWith('incoming/t1/my'))!;
    expect(first).toMatchObject({ eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put' });
    expect(first.s3.object.key).toBe('incoming/t1/my+cat%2B1+%C3%BC%25.jpg');
    expect(first.s3.object.size).toBe(6);
    expect(first.s3.object.eTag).toMatch(/^[0-9a-f]{32}$/);
    expect(first.s3.object.sequencer).toMatch(/^[0-9A-F]{18}$/);
    expect(first.s3.bucket).toMatchObject({ name: stack.bucket, arn: `arn:aws:s3:::${stack.bucket}` });
    expect(bodies.some((b) => b.s3.object.key.startsWith('results/'))).toBe(false);
    // Sequencers differ even for objects written within one millisecond.
    expect(new Set(bodies.map((b) => b.s3.object.sequencer)).size).toBe(new Set(records.map((r) => r.messageId)).size);

    const flaky = records.filter((r) => r.body.includes('flaky.jpg'));
    expect(flaky.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(new Set(flaky.map((r) => r.messageId)).size).toBe(1);
    const poison = records.filter((r) => r.body.includes('poison.jpg'));
    expect(poison.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(stack.deadLetters[0]!.body).toContain('poison.jpg');
    expect(lines.some((l) => l.includes('dead-letter') && l.includes('poison.jpg'))).toBe(true);

    // Each burst object handled exactly once; batches ≤ 10; never more than 2 at once.
    for (let i = 0; i < 25; i++)
      expect(records.filter((r) => r.body.includes(`incoming/burst/${i}.jpg`)).length).toBe(1);
    expect(Math.max(...batches.map((b) => b.event.Records.length))).toBeLessThanOrEqual(10);
    expect(maxRunning).toBe(2);
    expect(records[0]!.eventSourceARN).toMatch(/^arn:aws:sqs:us-east-1:000000000000:/);

    const listed = (await (await fetch(`${stack.apiUrl}__local/dead-letters`)).json()) as { body: string }[];
    expect(listed).toHaveLength(1);
    const redrive = (await (await fetch(`${stack.apiUrl}__local/dead-letters/redrive`, { method: 'POST' })).json()) as {
      redriven: number;
    };
    expect(redrive.redriven).toBe(1);
    await until(() => stack.deadLetters.length === 1 && stack.queue.depth === 0);
  });
});
