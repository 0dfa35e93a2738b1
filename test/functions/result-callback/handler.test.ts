/**
 * The callback function end to end against real local servers: dynalite (ledger),
 * s3rver (bucket) and — when configured — the Ceph gateway, which enforces
 * `If-None-Match`. Each callback arrives as deployed: its exact bytes are put under
 * callbacks-inbox/<request id> with the metadata the gateway integration maps (what
 * API Gateway does once the secret passed: functions/callback-authorizer, tested in its
 * own file), and the function gets the S3 event of that object from its queue (an SQS
 * batch). EventBridge is the in-memory publisher (no local server can refuse on demand).
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../../functions/result-callback/handler';
import {
  createMemoryPublisher,
  type EventPublisher,
  type MemoryPublisher,
  type ResultStoredDetail,
} from '../../../lib/callback/events';
import { EventPublishError } from '../../../lib/callback/errors';
import type { StoreDeps } from '../../../lib/callback/handle';
import { INBOX_METADATA } from '../../../lib/callback/inbox-metadata';
import { createDynamoLedger, createLedgerTable, type Ledger } from '../../../lib/ledger/index';
import { logger } from '../../../lib/observability';
import { sha256Hex } from '../../../lib/signer/index';
import { createS3Client } from '../../../lib/storage/s3-client';
import { startDynalite } from '../../../local/servers/dynalite';
import { startS3rver, type LocalS3 } from '../../../local/servers/s3rver';
import { cephS3Client, createBucket, requireCeph, uniqueBucketName } from '../../../local/servers/ceph';
import { CALLBACK_INBOX_PREFIX } from '../../../lib/storage/prefixes';
import { awsRecord } from '../../../local/stack/s3-events';
import { documentClient, s3rverClient } from '../../support/servers';

let s3: LocalS3;
let s3client: S3Client;
let doc: DynamoDBDocumentClient;
let stopDynalite: () => Promise<void>;
let counter = 0;

beforeAll(async () => {
  // Quiet runs; the log test below turns the logger up while it captures.
  logger.setLogLevel('SILENT');
  const dynalite = await startDynalite();
  stopDynalite = dynalite.close;
  doc = documentClient(dynalite);
  s3 = await startS3rver();
  s3client = s3rverClient(s3);
});

afterAll(async () => {
  await s3?.close();
  await stopDynalite?.();
});

interface Delivery {
  /** The inbox object the gateway wrote. */
  inboxKey: string;
  /** The function reported the message failed (SQS redelivers it). */
  failed: boolean;
  /** The inbox object is still there (a failure leaves it for the retry). */
  inboxLeft: boolean;
  redeliver(): Promise<Delivery>;
}

interface World {
  bucket: string;
  ledger: Ledger;
  events: MemoryPublisher;
  deps: StoreDeps;
  /** One callback as deployed: the gateway's inbox PUT, then the queue's batch to the function. */
  deliver: (body: Buffer | string, options?: { contentType?: string | undefined; at?: number }) => Promise<Delivery>;
  /** Runs the function on an SQS batch of these message bodies. */
  batch: (bodies: string[]) => Promise<SQSBatchResponse>;
  keys: () => Promise<string[]>;
}

const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'result-callback',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:result-callback',
  memoryLimitInMB: '512',
  awsRequestId: 'aws-req',
  logGroupName: '/aws/lambda/result-callback',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as Context;

function sqsEvent(bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `msg-${++counter}-${i}`,
      receiptHandle: 'rh',
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 's3',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:CallbackInboxQueue',
      awsRegion: 'us-east-1',
    })),
  };
}

/** A fresh bucket + table + publisher per test, all on the shared servers. */
async function world(
  overrides: Partial<StoreDeps> = {},
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
  const deps: StoreDeps = { s3: client, bucket, ledger, publisher: events, ...overrides };
  const handler = createHandler(deps);
  const batch = async (bodies: string[]) => (await handler(sqsEvent(bodies), context)) as SQSBatchResponse;
  const present = async (key: string) =>
    client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => true,
      () => false,
    );
  const run = async (inboxKey: string, size: number): Promise<Delivery> => {
    const message = JSON.stringify({
      Records: [awsRecord({ bucket, key: inboxKey, eventName: 'ObjectCreated:Put', size })],
    });
    const out = await batch([message]);
    return {
      inboxKey,
      failed: out.batchItemFailures.length > 0,
      inboxLeft: await present(inboxKey),
      redeliver: () => run(inboxKey, size),
    };
  };
  const deliver: World['deliver'] = async (body, options = {}) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const requestId = `req-${++counter}`;
    const inboxKey = `${CALLBACK_INBOX_PREFIX}${requestId}`;
    const contentType = 'contentType' in options ? options.contentType : 'application/json';
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: inboxKey,
        Body: bytes,
        ...(contentType ? { ContentType: contentType } : {}),
        Metadata: {
          [INBOX_METADATA.requestId]: requestId,
          [INBOX_METADATA.requestTimeEpoch]: String(options.at ?? Date.now()),
          ...(contentType ? { [INBOX_METADATA.contentType]: contentType } : {}),
        },
      }),
    );
    return run(inboxKey, bytes.length);
  };
  const keys = async () => {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
  };
  return { bucket, ledger, events, deps, deliver, batch, keys };
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

const resultKeys = (keys: string[]) => keys.filter((k) => k.startsWith('results/'));
/** Filed for good: no failure reported and the inbox object gone. */
const done = { failed: false, inboxLeft: false };

describe('storing and matching', () => {
  it('stores the exact bytes under results/<TaskID>/<dataId>/<sha256>.json and records the result', async () => {
    const w = await world();
    await w.ledger.begin({ id: 'sub-1', source: 's3', taskId: 'task-a', kind: 'image' });
    await w.ledger.markSubmitted('sub-1', { dataId: 'img-1', requestId: 'rq', kind: 'image' });
    const body = '{ "TaskID": "task-a", "ImageID": "img-1", "Status": "Success", "Labels": ["猫"] }';
    const at = Date.parse('2026-12-01T09:00:00.250Z');
    const out = await w.deliver(body, { at });
    expect(out).toMatchObject(done);
    const key = `results/task-a/img-1/${sha256Hex(body)}.json`;
    expect(await w.keys()).toEqual([key]);
    const stored = await read(s3client, w.bucket, key);
    expect(stored.bytes.equals(Buffer.from(body, 'utf8'))).toBe(true);
    expect(stored.contentType).toBe('application/json');
    // The receipt time is API Gateway's (the inbox object's), not the processing time.
    expect(stored.metadata['received-at']).toBe('2026-12-01T09:00:00.250Z');
    expect(stored.metadata['request-id']).toMatch(/^req-\d+$/);
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
        receivedAt: '2026-12-01T09:00:00.250Z',
      },
    ]);
  });

  it('stores a body that is not valid UTF-8 byte for byte', async () => {
    const w = await world();
    const raw = Buffer.concat([
      Buffer.from('{"VideoID":"v-raw","Blob":"'),
      Buffer.from([0xe2, 0x82, 0xac, 0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    expect(await w.deliver(raw, { contentType: 'application/octet-stream' })).toMatchObject(done);
    const key = `results/_unknown-task/v-raw/${sha256Hex(raw)}.json`;
    expect(resultKeys(await w.keys())).toEqual([key]);
    expect((await read(s3client, w.bucket, key)).bytes.equals(raw)).toBe(true);
    expect(w.events.events[0]).toMatchObject({ dataId: 'v-raw', kind: 'video' });
    expect(w.events.events[0]?.taskId).toBeUndefined();
  });

  it('stores the same callback delivered three times once, and emits one event', async () => {
    const w = await world();
    const body = JSON.stringify({ TaskID: 't', VideoID: 'v-1', Status: 'done' });
    const outs = [await w.deliver(body), await w.deliver(body), await w.deliver(body)];
    expect(outs.map((o) => [o.failed, o.inboxLeft])).toEqual([
      [false, false],
      [false, false],
      [false, false],
    ]);
    expect(await w.keys()).toEqual([`results/t/v-1/${sha256Hex(body)}.json`]);
    expect(w.events.events).toHaveLength(1);
  });

  it('gives the same final ledger record whether the callback comes before or after markSubmitted', async () => {
    const w = await world();
    const bodyOf = (id: string) => JSON.stringify({ TaskID: 'task-o', ImageID: id, Status: 'Succeeded' });
    // Callback first, submission record second.
    await w.ledger.begin({ id: 'early', source: 'api', taskId: 'task-o', kind: 'image' });
    expect(await w.deliver(bodyOf('img-early'))).toMatchObject(done);
    expect(w.events.events[0]?.submissionId).toBeUndefined();
    await w.ledger.markSubmitted('early', { dataId: 'img-early', requestId: 'rq', kind: 'image' });
    // Submission first, callback second.
    await w.ledger.begin({ id: 'late', source: 'api', taskId: 'task-o', kind: 'image' });
    await w.ledger.markSubmitted('late', { dataId: 'img-late', requestId: 'rq', kind: 'image' });
    expect(await w.deliver(bodyOf('img-late'))).toMatchObject(done);
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

  it('keeps a callback without identifiers under results/_unmatched, acknowledged, without an event', async () => {
    const w = await world();
    const body = JSON.stringify({ hello: 'world', TaskID: 'only-a-task' });
    expect(await w.deliver(body)).toMatchObject(done);
    const key = `results/_unmatched/${sha256Hex(body)}.json`;
    expect((await read(s3client, w.bucket, key)).metadata['unmatched-reason']).toBe('no-data-id');
    expect(await w.keys()).toEqual([key]);
    expect(w.events.events).toEqual([]);
  });

  it('stores a pathologically deep JSON body (200 000 nested arrays) as unmatched, never a retry loop', async () => {
    const w = await world();
    const body = `${'['.repeat(200_000)}{"ImageID":"x"}${']'.repeat(200_000)}`;
    expect(await w.deliver(body)).toMatchObject(done);
    const key = `results/_unmatched/${sha256Hex(body)}.json`;
    expect(await w.keys()).toEqual([key]);
    expect((await read(s3client, w.bucket, key)).bytes.toString('utf8')).toBe(body);
    expect(w.events.events).toEqual([]);
  });

  it('keeps a callback whose data id is too long for a ledger key as unmatched, acknowledged', async () => {
    const w = await world();
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i'.repeat(5000), Status: 'success' });
    expect(await w.deliver(body)).toMatchObject(done);
    const key = `results/_unmatched/${sha256Hex(body)}.json`;
    expect(await w.keys()).toEqual([key]);
    expect((await read(s3client, w.bucket, key)).metadata['unmatched-reason']).toBe('data-id-too-long');
    expect(w.events.events).toEqual([]);
  });

  it('keeps a plain-text body of an unknown type as unmatched text (never refused)', async () => {
    const w = await world();
    expect(await w.deliver('result ready', { contentType: 'application/octet-stream' })).toMatchObject(done);
    expect(await w.keys()).toEqual([`results/_unmatched/${sha256Hex('result ready')}.txt`]);
  });

  it('understands a form-encoded callback, including a JSON-valued field', async () => {
    const w = await world();
    await w.ledger.begin({ id: 'form-sub', source: 's3', taskId: 'task-f', kind: 'video' });
    await w.ledger.markSubmitted('form-sub', { dataId: 'vid-f', requestId: 'rq', kind: 'video' });
    const body = `task_id=task-f&Result=${encodeURIComponent(JSON.stringify({ VideoId: 'vid-f', State: 'FAILED', Reason: 'decode error' }))}`;
    expect(await w.deliver(body, { contentType: 'application/x-www-form-urlencoded; charset=utf-8' })).toMatchObject(
      done,
    );
    const key = `results/task-f/vid-f/${sha256Hex(body)}.txt`;
    const stored = await read(s3client, w.bucket, key);
    expect(stored.bytes.toString('utf8')).toBe(body);
    expect(stored.contentType).toBe('application/x-www-form-urlencoded; charset=utf-8');
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
    expect(await w.deliver(body, { contentType: undefined })).toMatchObject(done);
    expect(await w.keys()).toEqual([`results/t-n/i-n/${sha256Hex(body)}.json`]);
    expect(w.events.events[0]).toMatchObject({ status: 'progress', rawStatus: 'processing' });
  });

  it('keeps malformed JSON as unmatched text and does not retry it (a permanent failure)', async () => {
    const w = await world();
    const body = '{"TaskID": "t", "ImageID": ';
    const out = await w.deliver(body);
    expect(out).toMatchObject(done);
    expect(await w.keys()).toEqual([`results/_unmatched/${sha256Hex(body)}.txt`]);
    expect((await read(s3client, w.bucket, `results/_unmatched/${sha256Hex(body)}.txt`)).metadata).toMatchObject({
      'unmatched-reason': 'malformed-json',
    });
    expect(w.events.events).toEqual([]);
  });

  it('keeps nothing of an empty body, acknowledged', async () => {
    const w = await world();
    expect(await w.deliver('')).toMatchObject(done);
    expect(await w.deliver(' \r\n')).toMatchObject(done);
    expect(await w.keys()).toEqual([]);
    expect(w.events.events).toEqual([]);
  });

  it('keeps progress and final callbacks: ledger shows the final one, S3 has both, two events', async () => {
    const w = await world();
    await w.ledger.begin({ id: 'p', source: 's3', taskId: 'tp', kind: 'video' });
    await w.ledger.markSubmitted('p', { dataId: 'vp', requestId: 'rq', kind: 'video' });
    const progress = JSON.stringify({ TaskID: 'tp', VideoID: 'vp', Status: 'running', Progress: 40 });
    const final = JSON.stringify({ TaskID: 'tp', VideoID: 'vp', Status: 'success', Labels: [] });
    const t0 = Date.now();
    expect(await w.deliver(progress, { at: t0 })).toMatchObject(done);
    expect(await w.ledger.get('p')).toMatchObject({ status: 'submitted', result: { status: 'progress' } });
    expect(await w.deliver(final, { at: t0 + 5 })).toMatchObject(done);
    // A late replay of the progress body changes nothing: it keeps its first receipt time.
    expect(await w.deliver(progress, { at: t0 + 10 })).toMatchObject(done);
    const record = await w.ledger.get('p');
    expect(record).toMatchObject({
      status: 'completed',
      result: {
        status: 'completed',
        rawStatus: 'success',
        location: `s3://${w.bucket}/results/tp/vp/${sha256Hex(final)}.json`,
      },
    });
    expect(await w.keys()).toEqual(
      [`results/tp/vp/${sha256Hex(progress)}.json`, `results/tp/vp/${sha256Hex(final)}.json`].sort(),
    );
    expect(w.events.events.map((e) => e.status)).toEqual(['progress', 'completed']);
  });
});

describe('the queue messages', () => {
  it("acknowledges S3's test event and events for keys outside callbacks-inbox/, doing nothing", async () => {
    const w = await world();
    const out = await w.batch([
      JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: w.bucket }),
      JSON.stringify({
        Records: [awsRecord({ bucket: w.bucket, key: 'results/x.json', eventName: 'ObjectCreated:Put' })],
      }),
    ]);
    expect(out).toEqual({ batchItemFailures: [] });
    expect(await w.keys()).toEqual([]);
  });

  it('reports a message that is not an S3 event as failed, so it reaches the DLQ rather than vanishing', async () => {
    const w = await world();
    const out = await w.batch(['not json']);
    expect(out.batchItemFailures).toHaveLength(1);
  });

  it('reports only the failed record of a batch; the others are filed', async () => {
    const w = await world();
    const put = async (key: string, body: string) =>
      s3client.send(new PutObjectCommand({ Bucket: w.bucket, Key: key, Body: body, ContentType: 'application/json' }));
    await put(`${CALLBACK_INBOX_PREFIX}ok-1`, JSON.stringify({ TaskID: 't', ImageID: 'b-1' }));
    await put(`${CALLBACK_INBOX_PREFIX}ok-2`, JSON.stringify({ TaskID: 't', ImageID: 'b-2' }));
    const message = (key: string) =>
      JSON.stringify({ Records: [awsRecord({ bucket: w.bucket, key, eventName: 'ObjectCreated:Put' })] });
    const out = await w.batch([
      message(`${CALLBACK_INBOX_PREFIX}ok-1`),
      'junk',
      message(`${CALLBACK_INBOX_PREFIX}ok-2`),
    ]);
    expect(out.batchItemFailures).toHaveLength(1);
    expect(resultKeys(await w.keys())).toHaveLength(2);
    expect(w.events.events.map((e) => e.dataId).sort()).toEqual(['b-1', 'b-2']);
  });
});

describe('failures and retries: the inbox object stays until it is filed', () => {
  it('reports failure when S3 is unreachable, with nothing recorded or emitted', async () => {
    const dead = createS3Client({
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    const w = await world({ s3: dead });
    const out = await w.deliver(JSON.stringify({ TaskID: 't', ImageID: 'i-dead' }));
    expect(out).toMatchObject({ failed: true, inboxLeft: true });
    expect(w.events.events).toEqual([]);
    expect(await w.ledger.getByDataId('i-dead')).toBeUndefined();
  });

  it('after a failed publish reports failure; the redelivery publishes exactly once and later ones nothing', async () => {
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
    const first = await w.deliver(body);
    expect(first).toMatchObject({ failed: true, inboxLeft: true });
    expect(resultKeys(await w.keys())).toEqual([`results/t/i-crash/${sha256Hex(body)}.json`]);
    expect(memory.events).toHaveLength(0);
    expect(await first.redeliver()).toMatchObject(done);
    expect(memory.events).toHaveLength(1);
    // At-least-once S3 events: the same message again finds nothing to do.
    expect(await first.redeliver()).toMatchObject(done);
    // And IVA sending the body again (a new request, a new inbox object) publishes nothing more.
    expect(await w.deliver(body)).toMatchObject(done);
    expect(memory.events).toHaveLength(1);
    // The event carries the FIRST receipt time, the one stored with the object.
    const stored = await read(s3client, w.bucket, `results/t/i-crash/${sha256Hex(body)}.json`);
    expect(memory.events[0]?.receivedAt).toBe(stored.metadata['received-at']);
  });

  it('after a ledger failure reports failure; the redelivery records and publishes', async () => {
    const broken = createDynamoLedger({ tableName: 'no-such-table', client: doc });
    const w = await world({ ledger: broken });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i-ledger' });
    const first = await w.deliver(body);
    expect(first).toMatchObject({ failed: true, inboxLeft: true });
    expect(w.events.events).toEqual([]);
    const healthy = await world({ publisher: w.events }, { client: s3client, bucket: w.bucket });
    const message = JSON.stringify({
      Records: [awsRecord({ bucket: w.bucket, key: first.inboxKey, eventName: 'ObjectCreated:Put' })],
    });
    expect(await healthy.batch([message])).toEqual({ batchItemFailures: [] });
    expect(await healthy.ledger.getByDataId('i-ledger')).toBeUndefined(); // no submission: kept on the DATA item
    expect(await healthy.ledger.resultHistory('i-ledger')).toHaveLength(1);
    expect(w.events.events).toMatchObject([{ dataId: 'i-ledger' }]);
    expect(resultKeys(await w.keys())).toEqual([`results/t/i-ledger/${sha256Hex(body)}.json`]);
  });

  it('reports an unexpected error (e.g. missing configuration) as a failure, never dropping the message', async () => {
    const handler = createHandler(() => {
      throw new Error('Environment variable BUCKET_NAME is required');
    });
    const message = JSON.stringify({
      Records: [awsRecord({ bucket: 'b', key: `${CALLBACK_INBOX_PREFIX}r-1`, eventName: 'ObjectCreated:Put' })],
    });
    const event = sqsEvent([message]);
    const out = (await handler(event, context)) as SQSBatchResponse;
    expect(out).toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[0]?.messageId }] });
  });
});

describe('logs', () => {
  it('say what became of each inbox object', async () => {
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
      await w.deliver(JSON.stringify({ TaskID: 'tl', ImageID: 'log-2' }));
      await w.deliver('{bad json', { contentType: 'application/json' });
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      logger.setLogLevel(level);
    }
    const output = lines.join('');
    expect(output).toContain('Callback stored and published');
    expect(output).toContain('"dataId":"log-2"');
    expect(output).toContain('"outcome":"stored"');
    expect(output).toContain('"outcome":"malformed"');
    expect(output).toContain('"CallbacksRejected":1');
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
    const outs = await Promise.all(Array.from({ length: 5 }, () => w.deliver(body)));
    expect(outs.filter((o) => o.failed).length).toBeLessThan(5);
    // A delivery that found another holding the event claim is redelivered, as SQS would.
    for (const o of outs) if (o.failed) expect(await o.redeliver()).toMatchObject(done);
    expect(resultKeys(await w.keys())).toEqual([`results/tc/ic/${sha256Hex(body)}.json`]);
    // Racing deliveries may each publish (at-least-once); once the marker exists, none do.
    const published = w.events.events.length;
    expect(published).toBeGreaterThanOrEqual(1);
    expect(await w.deliver(body)).toMatchObject(done);
    expect(w.events.events).toHaveLength(published);
  });
});
