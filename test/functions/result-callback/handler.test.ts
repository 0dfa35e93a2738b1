/**
 * The callback function end to end against real local servers: dynalite (ledger),
 * s3rver (bucket), a tiny Secrets Manager endpoint (GetSecretValue over its JSON
 * protocol) for rotation, and — when configured — the Ceph gateway, which enforces
 * `If-None-Match`. EventBridge is the in-memory publisher (no local server exists).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../../functions/result-callback/handler';
import {
  createMemoryPublisher,
  type EventPublisher,
  type MemoryPublisher,
  type ResultStoredDetail,
} from '../../../lib/callback/events';
import { EventPublishError } from '../../../lib/callback/errors';
import type { CallbackDeps } from '../../../lib/callback/handle';
import { createDynamoLedger, createLedgerTable, type Ledger } from '../../../lib/ledger/index';
import { logger } from '../../../lib/observability';
import { callbackSecretsFrom } from '../../../lib/secrets/index';
import { sha256Hex } from '../../../lib/signer/index';
import { createS3Client } from '../../../lib/storage/s3-client';
import { startDynalite } from '../../../local/servers/dynalite';
import { startS3rver, type LocalS3 } from '../../../local/servers/s3rver';
import { cephS3Client, createBucket, requireCeph, uniqueBucketName } from '../../../local/servers/ceph';
import { documentClient, s3rverClient } from '../../support/servers';

const SECRET = 'cb-secret-Zq8w3N1xY7pL0aVt5R2kH9mJ4sD6fG';
const PREVIOUS = 'cb-previous-Kd82hS0qP1zLm4Xv7Bn3Tc9Wy5Ra';

let s3: LocalS3;
let s3client: S3Client;
let doc: DynamoDBDocumentClient;
let stopDynalite: () => Promise<void>;
let smServer: Server;
let smEndpoint: string;
let smValue = SECRET;
let counter = 0;

beforeAll(async () => {
  // Quiet runs; the log test below turns the logger up while it captures.
  logger.setLogLevel('SILENT');
  const dynalite = await startDynalite();
  stopDynalite = dynalite.close;
  doc = documentClient(dynalite);
  s3 = await startS3rver();
  s3client = s3rverClient(s3);

  smServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(
        JSON.stringify({ ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:cb', Name: 'cb', SecretString: smValue }),
      );
    });
  });
  await new Promise<void>((resolve) => smServer.listen(0, '127.0.0.1', resolve));
  smEndpoint = `http://127.0.0.1:${(smServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await s3?.close();
  await stopDynalite?.();
  await new Promise<void>((resolve) => smServer?.close(() => resolve()));
});

interface World {
  bucket: string;
  ledger: Ledger;
  events: MemoryPublisher;
  deps: CallbackDeps;
  call: (e: Partial<EventInput>) => Promise<{ status: number; body: Record<string, unknown> }>;
  keys: () => Promise<string[]>;
}

interface EventInput {
  secret: string | undefined;
  body: string | null;
  contentType: string | undefined;
  isBase64Encoded: boolean;
}

function apiEvent(input: EventInput): APIGatewayProxyEvent {
  const path = `/callbacks/${input.secret ?? ''}`;
  return {
    resource: '/callbacks/{secret}',
    path,
    httpMethod: 'POST',
    headers: input.contentType ? { 'Content-Type': input.contentType } : {},
    multiValueHeaders: input.contentType ? { 'Content-Type': [input.contentType] } : {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: input.secret === undefined ? null : { secret: input.secret },
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: 'POST',
      identity: { sourceIp: '203.0.113.9' } as APIGatewayProxyEvent['requestContext']['identity'],
      path: `/prod${path}`,
      stage: 'prod',
      requestId: `req-${++counter}`,
      requestTimeEpoch: Date.now(),
      resourceId: 'r',
      resourcePath: '/callbacks/{secret}',
    },
    body: input.body,
    isBase64Encoded: input.isBase64Encoded,
  };
}

const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'result-callback',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:result-callback',
  memoryLimitInMB: '256',
  awsRequestId: 'aws-req',
  logGroupName: '/aws/lambda/result-callback',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as Context;

/** A fresh bucket + table + publisher per test, all on the shared servers. */
async function world(
  overrides: Partial<CallbackDeps> = {},
  s3Override?: { client: S3Client; bucket: string },
): Promise<World> {
  const n = ++counter;
  const bucket = s3Override?.bucket ?? `cb-${n}`;
  const client = s3Override?.client ?? s3client;
  if (!s3Override) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const tableName = `ledger-${n}`;
  await createLedgerTable(doc, tableName);
  const ledger = createDynamoLedger({ tableName, client: doc });
  const events = createMemoryPublisher();
  const deps: CallbackDeps = {
    s3: client,
    bucket,
    ledger,
    secrets: { get: async () => [SECRET] },
    publisher: events,
    ...overrides,
  };
  const handler = createHandler(deps);
  const call = async (e: Partial<EventInput>) => {
    const input: EventInput = {
      secret: SECRET,
      body: null,
      contentType: 'application/json',
      isBase64Encoded: false,
      ...e,
    };
    const out = (await handler(apiEvent(input), context)) as APIGatewayProxyResult;
    return { status: out.statusCode, body: JSON.parse(out.body) as Record<string, unknown> };
  };
  const keys = async () => {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
  };
  return { bucket, ledger, events, deps, call, keys };
}

async function read(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<{ bytes: Buffer; metadata: Record<string, string>; contentType?: string }> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return {
    bytes: Buffer.from(await out.Body!.transformToByteArray()),
    metadata: out.Metadata ?? {},
    contentType: out.ContentType,
  };
}

const resultKeys = (keys: string[]) => keys.filter((k) => !k.startsWith('results/_emitted/'));

describe('authentication', () => {
  it("answers a wrong or missing secret with API Gateway's RouteNotFound, stores nothing and emits nothing", async () => {
    const w = await world();
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'Success' });
    for (const secret of [undefined, '', 'wrong', SECRET.slice(0, -1), `${SECRET}x`, SECRET.toUpperCase()]) {
      const out = await w.call({ secret, body });
      expect(out.status).toBe(404);
      expect(out.body).toEqual({
        ResponseMetadata: {
          RequestId: expect.stringMatching(/^req-\d+$/),
          Error: { Code: 'RouteNotFound', Message: 'No such route. See the README for the routes of this API.' },
        },
      });
    }
    expect(await w.keys()).toEqual([]);
    expect(w.events.events).toEqual([]);
    expect(await w.ledger.getByDataId('i')).toBeUndefined();
  });

  it('checks the secret before the body: an empty body with a wrong secret is still 404', async () => {
    const w = await world();
    expect((await w.call({ secret: 'nope', body: '' })).status).toBe(404);
    expect((await w.call({ body: '' })).body).toMatchObject({ error: { code: 'EmptyBody' } });
  });

  it('accepts the current and, while rotating, the previous secret read from Secrets Manager', async () => {
    const sm = new SecretsManagerClient({
      endpoint: smEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    smValue = JSON.stringify({ current: SECRET, previous: PREVIOUS });
    const secrets = callbackSecretsFrom(
      { CALLBACK_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:cb' },
      { client: sm, ttlMs: 0 },
    );
    const w = await world({ secrets });
    expect((await w.call({ secret: SECRET, body: JSON.stringify({ ImageID: 'rot-1' }) })).status).toBe(200);
    expect((await w.call({ secret: PREVIOUS, body: JSON.stringify({ ImageID: 'rot-2' }) })).status).toBe(200);
    expect((await w.call({ secret: 'other', body: JSON.stringify({ ImageID: 'rot-3' }) })).status).toBe(404);
    // Rotation finished: the previous secret is dropped and refused from then on.
    smValue = SECRET;
    expect((await w.call({ secret: PREVIOUS, body: JSON.stringify({ ImageID: 'rot-4' }) })).status).toBe(404);
    expect((await w.call({ secret: SECRET, body: JSON.stringify({ ImageID: 'rot-5' }) })).status).toBe(200);
    expect(w.events.events.map((e) => e.dataId)).toEqual(['rot-1', 'rot-2', 'rot-5']);
  });

  it('answers 503 when the secret cannot be read, and stores nothing', async () => {
    const w = await world({ secrets: { get: async () => Promise.reject(new Error('AccessDenied')) } });
    const out = await w.call({ body: JSON.stringify({ ImageID: 'x' }) });
    expect(out).toEqual({ status: 503, body: { error: { code: 'SecretUnavailable', message: expect.any(String) } } });
    expect(await w.keys()).toEqual([]);
  });
});

describe('storing and matching', () => {
  it('stores the exact bytes under results/<TaskID>/<dataId>/<sha256>.json and records the result', async () => {
    const w = await world();
    await w.ledger.begin({ id: 'sub-1', source: 's3', taskId: 'task-a', kind: 'image' });
    await w.ledger.markSubmitted('sub-1', { dataId: 'img-1', requestId: 'rq', kind: 'image' });
    const body = '{ "TaskID": "task-a", "ImageID": "img-1", "Status": "Success", "Labels": ["猫"] }';
    const out = await w.call({ body });
    const key = `results/task-a/img-1/${sha256Hex(body)}.json`;
    expect(out).toEqual({ status: 200, body: { ok: true, stored: `s3://${w.bucket}/${key}`, duplicate: false } });
    const stored = await read(s3client, w.bucket, key);
    expect(stored.bytes.equals(Buffer.from(body, 'utf8'))).toBe(true);
    expect(stored.contentType).toBe('application/json');
    expect(stored.metadata['received-at']).toMatch(/^\d{4}-\d\d-\d\dT/);
    const record = await w.ledger.get('sub-1');
    expect(record).toMatchObject({
      status: 'completed',
      result: { status: 'completed', rawStatus: 'Success', location: `s3://${w.bucket}/${key}` },
    });
    expect(w.events.events).toEqual([
      {
        taskId: 'task-a',
        dataId: 'img-1',
        kind: 'image',
        status: 'completed',
        rawStatus: 'Success',
        submissionId: 'sub-1',
        applied: true,
        location: { bucket: w.bucket, key, uri: `s3://${w.bucket}/${key}` },
        receivedAt: stored.metadata['received-at'],
      },
    ]);
  });

  it('stores a base64-encoded body byte for byte', async () => {
    const w = await world();
    const raw = Buffer.concat([
      Buffer.from('{"VideoID":"v-b64","Blob":"'),
      Buffer.from([0xe2, 0x82, 0xac]),
      Buffer.from('"}'),
    ]);
    const out = await w.call({ body: raw.toString('base64'), isBase64Encoded: true, contentType: 'application/json' });
    expect(out.status).toBe(200);
    const key = `results/_unknown-task/v-b64/${sha256Hex(raw)}.json`;
    expect(out.body.stored).toBe(`s3://${w.bucket}/${key}`);
    expect((await read(s3client, w.bucket, key)).bytes.equals(raw)).toBe(true);
    expect(w.events.events[0]).toMatchObject({ dataId: 'v-b64', kind: 'video' });
    expect(w.events.events[0]?.taskId).toBeUndefined();
  });

  it('stores the same callback delivered three times once, and emits one event', async () => {
    const w = await world();
    const body = JSON.stringify({ TaskID: 't', VideoID: 'v-1', Status: 'done' });
    const answers = [await w.call({ body }), await w.call({ body }), await w.call({ body })];
    expect(answers.map((a) => [a.status, a.body.duplicate])).toEqual([
      [200, false],
      [200, true],
      [200, true],
    ]);
    expect(resultKeys(await w.keys())).toEqual([`results/t/v-1/${sha256Hex(body)}.json`]);
    expect(w.events.events).toHaveLength(1);
  });

  it('gives the same final ledger record whether the callback comes before or after markSubmitted', async () => {
    const w = await world();
    const bodyOf = (id: string) => JSON.stringify({ TaskID: 'task-o', ImageID: id, Status: 'Succeeded' });
    // Callback first, submission record second.
    await w.ledger.begin({ id: 'early', source: 'api', taskId: 'task-o', kind: 'image' });
    expect((await w.call({ body: bodyOf('img-early') })).status).toBe(200);
    expect(w.events.events[0]?.submissionId).toBeUndefined();
    await w.ledger.markSubmitted('early', { dataId: 'img-early', requestId: 'rq', kind: 'image' });
    // Submission first, callback second.
    await w.ledger.begin({ id: 'late', source: 'api', taskId: 'task-o', kind: 'image' });
    await w.ledger.markSubmitted('late', { dataId: 'img-late', requestId: 'rq', kind: 'image' });
    expect((await w.call({ body: bodyOf('img-late') })).status).toBe(200);
    expect(w.events.events[1]?.submissionId).toBe('late');

    const shape = (r: Awaited<ReturnType<Ledger['get']>>) => ({
      status: r?.status,
      submitStatus: r?.submitStatus,
      requestId: r?.requestId,
      kind: r?.kind,
      resultStatus: r?.result?.status,
      rawStatus: r?.result?.rawStatus,
      location: r?.result?.location.replace(/img-(early|late)/, 'img-X').replace(/[0-9a-f]{64}/, 'SHA'),
    });
    const early = await w.ledger.get('early');
    const late = await w.ledger.get('late');
    expect(shape(early)).toEqual(shape(late));
    expect(shape(early)).toMatchObject({
      status: 'completed',
      submitStatus: 'submitted',
      resultStatus: 'completed',
      rawStatus: 'Succeeded',
    });
    expect(early?.result?.location).toBe(
      `s3://${w.bucket}/results/task-o/img-early/${sha256Hex(bodyOf('img-early'))}.json`,
    );
  });

  it('keeps a callback without identifiers under results/_unmatched and answers 200 without an event', async () => {
    const w = await world();
    const body = JSON.stringify({ hello: 'world', TaskID: 'only-a-task' });
    const out = await w.call({ body });
    const key = `results/_unmatched/${sha256Hex(body)}.json`;
    expect(out).toEqual({
      status: 200,
      body: { ok: true, stored: `s3://${w.bucket}/${key}`, duplicate: false, unmatched: 'no-data-id' },
    });
    expect((await read(s3client, w.bucket, key)).metadata['unmatched-reason']).toBe('no-data-id');
    expect(await w.keys()).toEqual([key]);
    expect(w.events.events).toEqual([]);
  });

  it('stores a pathologically deep JSON body (200 000 nested arrays) as unmatched, never a 503 loop', async () => {
    const w = await world();
    const body = `${'['.repeat(200_000)}{"ImageID":"x"}${']'.repeat(200_000)}`;
    const out = await w.call({ body });
    const key = `results/_unmatched/${sha256Hex(body)}.json`;
    expect(out).toEqual({
      status: 200,
      body: { ok: true, stored: `s3://${w.bucket}/${key}`, duplicate: false, unmatched: 'no-data-id' },
    });
    expect((await read(s3client, w.bucket, key)).bytes.toString('utf8')).toBe(body);
    expect(w.events.events).toEqual([]);
  });

  it('keeps a callback whose data id is too long for a ledger key as unmatched, answering 200', async () => {
    const w = await world();
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i'.repeat(5000), Status: 'success' });
    const out = await w.call({ body });
    expect(out).toEqual({
      status: 200,
      body: {
        ok: true,
        stored: `s3://${w.bucket}/results/_unmatched/${sha256Hex(body)}.json`,
        duplicate: false,
        unmatched: 'data-id-too-long',
      },
    });
    expect(w.events.events).toEqual([]);
  });

  it('keeps a plain-text body of an unknown type as unmatched text (never 415)', async () => {
    const w = await world();
    const out = await w.call({ body: 'result ready', contentType: 'application/octet-stream' });
    expect(out.status).toBe(200);
    expect(await w.keys()).toEqual([`results/_unmatched/${sha256Hex('result ready')}.txt`]);
  });

  it('understands a form-encoded callback, including a JSON-valued field', async () => {
    const w = await world();
    await w.ledger.begin({ id: 'form-sub', source: 's3', taskId: 'task-f', kind: 'video' });
    await w.ledger.markSubmitted('form-sub', { dataId: 'vid-f', requestId: 'rq', kind: 'video' });
    const body = `task_id=task-f&Result=${encodeURIComponent(JSON.stringify({ VideoId: 'vid-f', State: 'FAILED', Reason: 'decode error' }))}`;
    const out = await w.call({ body, contentType: 'application/x-www-form-urlencoded; charset=utf-8' });
    const key = `results/task-f/vid-f/${sha256Hex(body)}.txt`;
    expect(out.body).toMatchObject({ ok: true, stored: `s3://${w.bucket}/${key}` });
    expect((await read(s3client, w.bucket, key)).bytes.toString('utf8')).toBe(body);
    expect(await w.ledger.get('form-sub')).toMatchObject({
      status: 'failed',
      result: { status: 'failed', rawStatus: 'FAILED' },
    });
    expect(w.events.events).toMatchObject([
      { taskId: 'task-f', dataId: 'vid-f', kind: 'video', status: 'failed', submissionId: 'form-sub' },
    ]);
  });

  it('understands a JSON callback sent without a content type', async () => {
    const w = await world();
    const body = JSON.stringify({ Data: { TaskId: 't-n', ImageId: 'i-n', status: 'processing' } });
    const out = await w.call({ body, contentType: undefined });
    expect(out.body.stored).toBe(`s3://${w.bucket}/results/t-n/i-n/${sha256Hex(body)}.json`);
    expect(w.events.events[0]).toMatchObject({ status: 'progress', rawStatus: 'processing' });
  });

  it('answers malformed JSON with 400 MalformedJson, keeping the body as unmatched text', async () => {
    const w = await world();
    const body = '{"TaskID": "t", "ImageID": ';
    const out = await w.call({ body });
    expect(out.status).toBe(400);
    expect(out.body).toEqual({ error: { code: 'MalformedJson', message: expect.stringContaining('does not parse') } });
    expect(await w.keys()).toEqual([`results/_unmatched/${sha256Hex(body)}.txt`]);
    expect(w.events.events).toEqual([]);
  });

  it('answers an empty body with 400 EmptyBody and an oversized one with 413', async () => {
    const w = await world({ maxBytes: 64 });
    expect(await w.call({ body: '' })).toEqual({
      status: 400,
      body: { error: { code: 'EmptyBody', message: expect.any(String) } },
    });
    expect(await w.call({ body: JSON.stringify({ ImageID: 'x'.repeat(100) }) })).toEqual({
      status: 413,
      body: { error: { code: 'PayloadTooLarge', message: expect.stringContaining('64 bytes') } },
    });
    expect(await w.keys()).toEqual([]);
  });

  it('keeps progress and final callbacks: ledger shows the final one, S3 has both, two events', async () => {
    const w = await world();
    await w.ledger.begin({ id: 'p', source: 's3', taskId: 'tp', kind: 'video' });
    await w.ledger.markSubmitted('p', { dataId: 'vp', requestId: 'rq', kind: 'video' });
    const progress = JSON.stringify({ TaskID: 'tp', VideoID: 'vp', Status: 'running', Progress: 40 });
    const final = JSON.stringify({ TaskID: 'tp', VideoID: 'vp', Status: 'success', Labels: [] });
    expect((await w.call({ body: progress })).status).toBe(200);
    expect(await w.ledger.get('p')).toMatchObject({ status: 'submitted', result: { status: 'progress' } });
    await new Promise((r) => setTimeout(r, 5)); // distinct receipt times
    expect((await w.call({ body: final })).status).toBe(200);
    // A late replay of the progress body changes nothing: it keeps its first receipt time.
    expect((await w.call({ body: progress })).body.duplicate).toBe(true);
    const record = await w.ledger.get('p');
    expect(record).toMatchObject({
      status: 'completed',
      result: {
        status: 'completed',
        rawStatus: 'success',
        location: `s3://${w.bucket}/results/tp/vp/${sha256Hex(final)}.json`,
      },
    });
    expect(resultKeys(await w.keys())).toEqual(
      [`results/tp/vp/${sha256Hex(progress)}.json`, `results/tp/vp/${sha256Hex(final)}.json`].sort(),
    );
    expect(w.events.events.map((e) => e.status)).toEqual(['progress', 'completed']);
  });
});

describe('failures and retries', () => {
  it('answers 503 when S3 is unreachable, with nothing recorded or emitted', async () => {
    const dead = createS3Client({
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    const w = await world({ s3: dead });
    const out = await w.call({ body: JSON.stringify({ TaskID: 't', ImageID: 'i-dead' }) });
    expect(out).toEqual({ status: 503, body: { error: { code: 'StorageUnavailable', message: expect.any(String) } } });
    expect(w.events.events).toEqual([]);
    expect(await w.ledger.getByDataId('i-dead')).toBeUndefined();
  });

  it('after a failed publish answers 503; the retry publishes exactly once and later replays nothing', async () => {
    let failures = 1;
    const memory = createMemoryPublisher();
    const flaky: EventPublisher = {
      async publishResultStored(detail: ResultStoredDetail) {
        // A refused PutEvents entry: the in-memory bus cannot refuse by itself.
        if (failures-- > 0) throw new EventPublishError('InternalFailure');
        return memory.publishResultStored(detail);
      },
    };
    const w = await world({ publisher: flaky });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i-crash', Status: 'ok' });
    const first = await w.call({ body });
    expect(first).toEqual({
      status: 503,
      body: { error: { code: 'EventPublishFailed', message: expect.any(String) } },
    });
    expect(resultKeys(await w.keys())).toEqual([`results/t/i-crash/${sha256Hex(body)}.json`]);
    const second = await w.call({ body });
    expect(second).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(memory.events).toHaveLength(1);
    await w.call({ body });
    expect(memory.events).toHaveLength(1);
    // The event carries the FIRST receipt time, the one stored with the object.
    const stored = await read(s3client, w.bucket, `results/t/i-crash/${sha256Hex(body)}.json`);
    expect(memory.events[0]?.receivedAt).toBe(stored.metadata['received-at']);
  });

  it('after a ledger failure answers 503; the retry records and publishes', async () => {
    const broken = createDynamoLedger({ tableName: 'no-such-table', client: doc });
    const w = await world({ ledger: broken });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i-ledger' });
    expect((await w.call({ body })).body).toMatchObject({ error: { code: 'LedgerUnavailable' } });
    expect(w.events.events).toEqual([]);
    const healthy = await world({ publisher: w.events }, { client: s3client, bucket: w.bucket });
    expect((await healthy.call({ body })).body).toMatchObject({ ok: true, duplicate: true });
    expect(await healthy.ledger.getByDataId('i-ledger')).toBeUndefined(); // no submission: kept on the DATA item
    expect(w.events.events).toMatchObject([{ dataId: 'i-ledger' }]);
  });

  it('turns an unexpected error (e.g. missing configuration) into a JSON 503, never a bare 500', async () => {
    const handler = createHandler(() => {
      throw new Error('Environment variable BUCKET_NAME is required');
    });
    const out = (await handler(
      apiEvent({ secret: SECRET, body: '{}', contentType: 'application/json', isBase64Encoded: false }),
      context,
    )) as APIGatewayProxyResult;
    expect(out.statusCode).toBe(503);
    expect(JSON.parse(out.body)).toEqual({ error: { code: 'ServiceUnavailable', message: expect.any(String) } });
  });
});

describe('logs', () => {
  it('never contain the secret or the secret path, for wrong and right secrets', async () => {
    const w = await world();
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    const capture = (chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    };
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    const level = logger.getLevelName();
    logger.setLogLevel('DEBUG');
    try {
      await w.call({ secret: `${SECRET}-wrong`, body: JSON.stringify({ ImageID: 'log-1' }) });
      await w.call({ secret: SECRET, body: JSON.stringify({ TaskID: 'tl', ImageID: 'log-2' }) });
      await w.call({ secret: SECRET, body: '{bad json', contentType: 'application/json' });
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      logger.setLogLevel(level);
    }
    const output = lines.join('');
    // The capture saw the handler's lines, so the absence below means something.
    expect(output).toContain('Callback refused: wrong or missing secret');
    expect(output).toContain('Callback stored and published');
    expect(output).toContain('"dataId":"log-2"');
    expect(output).toContain('/callbacks/{secret}');
    expect(output).toContain('"CallbacksRejected":1');
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain(SECRET.slice(0, 16));
  });
});

const ceph = requireCeph();

describe.skipIf(!ceph)('on the Ceph gateway (enforces If-None-Match)', () => {
  it('stores concurrent deliveries of one body once, and replays emit nothing more', async () => {
    const client = cephS3Client(ceph!);
    const bucket = uniqueBucketName('cb');
    await createBucket(ceph!, bucket);
    const w = await world({}, { client, bucket });
    const body = JSON.stringify({ TaskID: 'tc', ImageID: 'ic', Status: 'success' });
    const answers = await Promise.all(Array.from({ length: 5 }, () => w.call({ body })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
    expect(resultKeys(await w.keys())).toEqual([`results/tc/ic/${sha256Hex(body)}.json`]);
    // Racing deliveries may each publish (at-least-once); once the marker exists, none do.
    const published = w.events.events.length;
    expect(published).toBeGreaterThanOrEqual(1);
    await w.call({ body });
    expect(w.events.events).toHaveLength(published);
  });
});
