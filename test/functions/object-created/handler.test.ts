import { PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  // The middlewares' own logger/metrics stay quiet; the test injects capturing ones.
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { createHandler, type ObjectCreatedDeps } from '../../../functions/object-created/handler';
import { IMAGE_MAX_BYTES } from '../../../lib/config';
import { createIvaClient } from '../../../lib/iva/client';
import type { Ledger } from '../../../lib/ledger/index';
import { derivedSubmissionId } from '../../../lib/s3-intake/rules';
import { createPresigner } from '../../../lib/storage/presign';
import { createS3Client } from '../../../lib/storage/s3-client';
import { startIvaSandbox, DEFAULT_SANDBOX_CREDENTIALS, type IvaSandbox } from '../../../local/iva-sandbox/index';
import { cephS3Client, createBucket, requireCeph, uniqueBucketName } from '../../../local/servers/ceph';
import { lambdaContext } from '../../../local/stack/lambda';
import { startDynalite, type LocalDynalite } from '../../../local/servers/dynalite';
import { encodeS3EventKey, startS3rver, type LocalS3, type S3EventNotification } from '../../../local/servers/s3rver';
import { documentClient, ledgerOn, s3rverClient } from '../../support/servers';

const BUCKET = 'uploads';
let s3: LocalS3;
let dynalite: LocalDynalite;
let sandbox: IvaSandbox;
let s3Client: S3Client;
let ledger: Ledger;

type Line = { level: string; message: string; attrs: Record<string, unknown> };
let lines: Line[] = [];
let metricCounts: Record<string, number> = {};
const captureLogger = {
  debug: (message: string, ...extra: Record<string, unknown>[]) =>
    lines.push({ level: 'debug', message, attrs: Object.assign({}, ...extra) }),
  info: (message: string, ...extra: Record<string, unknown>[]) =>
    lines.push({ level: 'info', message, attrs: Object.assign({}, ...extra) }),
  warn: (message: string, ...extra: Record<string, unknown>[]) =>
    lines.push({ level: 'warn', message, attrs: Object.assign({}, ...extra) }),
  error: (message: string, ...extra: Record<string, unknown>[]) =>
    lines.push({ level: 'error', message, attrs: Object.assign({}, ...extra) }),
  appendKeys: () => undefined,
};
let failedByCode: Record<string, number> = {};
const captureMetrics = {
  addMetric: (name: string, _unit: unknown, value: number) => {
    metricCounts[name] = (metricCounts[name] ?? 0) + value;
  },
  // FailedByCode goes out as a single metric with its Code dimension.
  singleMetric: () => {
    let code = '';
    return {
      addDimension: (name: string, value: string) => {
        if (name === 'Code') code = value;
      },
      addMetric: (name: string) => {
        if (name === 'FailedByCode') failedByCode[code] = (failedByCode[code] ?? 0) + 1;
      },
    };
  },
};

beforeAll(async () => {
  [s3, dynalite, sandbox] = await Promise.all([startS3rver({ buckets: [BUCKET] }), startDynalite(), startIvaSandbox()]);
  s3Client = s3rverClient(s3);
  ledger = await ledgerOn(documentClient(dynalite));
});

afterAll(async () => {
  await Promise.all([s3?.close(), dynalite?.close(), sandbox?.close()]);
});

beforeEach(() => {
  sandbox.reset();
  lines = [];
  metricCounts = {};
  failedByCode = {};
});

function deps(overrides: Partial<ObjectCreatedDeps> = {}, client: S3Client = s3Client): ObjectCreatedDeps {
  return {
    s3: client,
    ledger,
    iva: createIvaClient({
      endpoint: sandbox.url,
      credentials: DEFAULT_SANDBOX_CREDENTIALS,
      baseDelayMs: 20,
      maxDelayMs: 100,
      timeoutMs: 5_000,
    }),
    presigner: createPresigner({ s3: client, ttlSeconds: 600 }),
    concurrency: 2,
    logger: captureLogger,
    metrics: captureMetrics,
    ...overrides,
  };
}

function context(remainingMs = 60_000): Context {
  return lambdaContext({ name: 'object-created', timeoutMs: remainingMs, memoryMb: 512 });
}

function sqsRecord(body: string, messageId: string = randomUUID(), receiveCount = 1): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDA',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:object-created',
    awsRegion: 'us-east-1',
  };
}

const sqsEvent = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

/** Puts an object on s3rver and returns the S3 notification it emitted (keys URL-encoded like AWS). */
async function upload(
  key: string,
  body: Buffer | string,
  options: { metadata?: Record<string, string>; contentType?: string } = {},
): Promise<S3EventNotification> {
  const event = new Promise<S3EventNotification>((resolve) => {
    const listener = (n: S3EventNotification) => {
      if (n.Records.some((r) => r.s3.object.key === encodeS3EventKey(key) && r.eventName.startsWith('ObjectCreated'))) {
        s3.events.off('event', listener);
        resolve(n);
      }
    };
    s3.events.on('event', listener);
  });
  await s3Client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: key,
      Body: body,
      Metadata: options.metadata,
      ContentType: options.contentType,
    }),
  );
  return event;
}

type Invoke = ReturnType<typeof createHandler>;
const run = (handler: Invoke, event: SQSEvent, ctx = context()) => handler(event, ctx);
const b64 = (s: string) => `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
const idOf = (n: S3EventNotification) =>
  derivedSubmissionId(
    BUCKET,
    decodeURIComponent(n.Records[0]!.s3.object.key.replace(/\+/g, ' ')),
    n.Records[0]!.s3.object.sequencer!,
  );

describe('object-created: S3 upload → IVA Source=url', () => {
  it('submits awkward keys by a presigned URL whose bytes equal the object', async () => {
    const handler = createHandler(deps());
    const keys = [
      'incoming/task A/my photo+1 (2).jpg',
      'incoming/task-b/猫 ü é.png',
      'incoming/task-c/100% done.mp4',
      'incoming/task-d/x/y/z/deep.jpeg',
    ];
    const bodies = keys.map((k, i) => Buffer.concat([Buffer.from(`${i}:${k}:`), Buffer.from([0, 255, 13, 10])]));
    const notes = await Promise.all(keys.map((k, i) => upload(k, bodies[i]!)));
    const result = await run(handler, sqsEvent(...notes.map((n) => sqsRecord(JSON.stringify(n)))));
    expect(result).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions).toHaveLength(keys.length);
    for (const [i, key] of keys.entries()) {
      const name = key.slice(key.lastIndexOf('/') + 1);
      const sub = sandbox.submissions.find((s) => s.name === name)!;
      expect(sub).toMatchObject({
        source: 'url',
        taskId: key.split('/')[1],
        kind: key.endsWith('.mp4') ? 'video' : 'image',
      });
      expect(sub.url).not.toMatch(/checksum/i);
      expect(sub.file!.equals(bodies[i]!)).toBe(true);
      const record = await ledger.get(idOf(notes[i]!));
      expect(record).toMatchObject({
        status: 'submitted',
        source: 's3',
        dataId: sub.dataId,
        requestId: sub.requestId,
        object: { bucket: BUCKET, key },
      });
    }
    expect(metricCounts).toEqual({ Submitted: 4 });
    const submitted = lines.filter((l) => l.message === 'Submitted');
    expect(submitted).toHaveLength(4);
    for (const l of submitted)
      expect(Object.keys(l.attrs)).toEqual(
        expect.arrayContaining(['submissionId', 'bucket', 'key', 'taskId', 'dataId', 'requestId']),
      );
    // The signature never reaches the logs.
    expect(JSON.stringify(lines)).not.toMatch(/X-Amz-Signature/i);
  });

  it('submits one event delivered three times, and twice concurrently, exactly once', async () => {
    const note = await upload('incoming/dup/once.jpg', 'once');
    const body = JSON.stringify(note);
    const handler = createHandler(deps());
    for (let i = 0; i < 3; i++)
      expect(await run(handler, sqsEvent(sqsRecord(body)))).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions).toHaveLength(1);
    expect(metricCounts).toEqual({ Submitted: 1, Duplicate: 2 });

    const again = await upload('incoming/dup/twice.jpg', 'twice');
    sandbox.injectFaults({ count: 1, delayMs: 400 });
    const [a, b] = await Promise.all([
      run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(again)))),
      run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(again)))),
    ]);
    expect(a).toEqual({ batchItemFailures: [] });
    expect(b).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions.filter((s) => s.name === 'twice.jpg')).toHaveLength(1);
    expect(
      lines.some((l) => l.message.startsWith('Concurrent delivery') || l.message.startsWith('Duplicate delivery')),
    ).toBe(true);
  });

  it('fails a batch item only for the retryable failure; the permanent one is recorded', async () => {
    const noTask = await upload('incoming/no-task.jpg', 'no task');
    const limited = await upload('incoming/limited/flow.jpg', 'flow');
    sandbox.injectFaults({ count: 1000, code: 'FlowLimitExceeded', httpStatus: 429 });
    // Unpaced: the IVA client's own retries within the budget (the paced path has its own test).
    const handler = createHandler(deps({ safetyMarginMs: 500, minBudgetMs: 100, pacing: false }));
    const permanentId = 'msg-permanent';
    const retryId = 'msg-retry';
    const result = await run(
      handler,
      sqsEvent(sqsRecord(JSON.stringify(noTask), permanentId), sqsRecord(JSON.stringify(limited), retryId)),
      context(2_000),
    );
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: retryId }] });
    expect(sandbox.submissions).toHaveLength(0);
    expect(await ledger.get(idOf(noTask))).toMatchObject({
      status: 'failed',
      error: { code: 'MissingTaskId' },
      name: 'no-task.jpg',
    });
    const pending = await ledger.get(idOf(limited));
    expect(pending).toMatchObject({ status: 'pending', taskId: 'limited', error: { code: 'FlowLimitExceeded' } });
    expect(pending!.leaseUntil).toBeUndefined();
    expect(sandbox.requests.length).toBeGreaterThan(1);
    expect(metricCounts).toEqual({ Failed: 1, Retried: 1 });
  });

  it('hands a throttled message back with a delay that grows per receive, and requeues it instead of the DLQ on its last', async () => {
    const calls: string[] = [];
    const queue = {
      changeVisibility: async (receiptHandle: string, seconds: number) => {
        calls.push(`visibility ${receiptHandle} ${seconds}`);
      },
      send: async (body: string, delaySeconds: number) => {
        calls.push(`send ${JSON.parse(body).Records[0].s3.object.key} ${delaySeconds}`);
      },
    };
    const throttled = await upload('incoming/limited/again.jpg', 'again');
    const broken = await upload('incoming/limited/broken.jpg', 'broken');
    const handler = createHandler(
      deps({ safetyMarginMs: 500, minBudgetMs: 100, pacing: false, queue, maxReceiveCount: 5 }),
    );
    const delays: number[] = [];
    for (const receive of [1, 3, 5]) {
      calls.length = 0;
      sandbox.injectFaults({ count: 1000, code: 'FlowLimitExceeded', httpStatus: 429 });
      const result = await run(
        handler,
        sqsEvent(sqsRecord(JSON.stringify(throttled), 'm-throttled', receive)),
        context(1_500),
      );
      sandbox.reset();
      if (receive < 5) {
        expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-throttled' }] });
        expect(calls).toEqual([expect.stringMatching(/^visibility rh-m-throttled \d+$/)]);
        delays.push(Number(calls[0]?.split(' ')[2]));
      } else {
        // Its last allowed receive: sent again as a new message, acknowledged, not dead-lettered.
        expect(result).toEqual({ batchItemFailures: [] });
        expect(calls).toEqual([expect.stringMatching(/^send incoming\/limited\/again\.jpg \d+$/)]);
      }
    }
    expect(delays[1]).toBeGreaterThan(delays[0] ?? Number.POSITIVE_INFINITY);
    expect(await ledger.get(idOf(throttled))).toMatchObject({
      status: 'pending',
      error: { code: 'FlowLimitExceeded' },
    });

    // A fault (IVA 5xx) on its last receive is left to the DLQ.
    calls.length = 0;
    sandbox.injectFaults({ count: 1000, code: 'InternalError', httpStatus: 500 });
    const result = await run(handler, sqsEvent(sqsRecord(JSON.stringify(broken), 'm-broken', 5)), context(1_500));
    sandbox.reset();
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-broken' }] });
    expect(calls).toEqual([expect.stringMatching(/^visibility rh-m-broken \d+$/)]);
  });

  it('records IVA permanent errors with its code, message and RequestId, and acknowledges', async () => {
    const note = await upload('incoming/perm/bad.jpg', 'bad');
    sandbox.injectFaults({ count: 1, code: 'InvalidParameter', httpStatus: 400, message: 'Url is not reachable' });
    const result = await run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(note))));
    expect(result).toEqual({ batchItemFailures: [] });
    const record = await ledger.get(idOf(note));
    expect(record).toMatchObject({
      status: 'failed',
      error: { code: 'InvalidParameter', message: expect.stringContaining('Url is not reachable') },
    });
    expect(record!.error!.requestId).toBe(sandbox.requests[0]!.requestId);
    expect(record!.requestId).toBe(sandbox.requests[0]!.requestId);
    expect(metricCounts).toEqual({ Failed: 1 });
  });

  it('never records or logs the signature of a presigned URL that IVA quotes in its error', async () => {
    const note = await upload('incoming/perm/quoted.jpg', 'quoted');
    const quoted =
      'https://uploads.s3.amazonaws.com/incoming/perm/quoted.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261130%2Fus-east-1%2Fs3%2Faws4_request' +
      '&X-Amz-Date=20261130T120000Z&X-Amz-Expires=600&X-Amz-Security-Token=SESSIONTOKENxyz&X-Amz-Signature=deadbeefcafe0123&X-Amz-SignedHeaders=host';
    sandbox.injectFaults({
      count: 1,
      code: 'InvalidParameter',
      httpStatus: 400,
      message: `Url ${quoted} could not be downloaded`,
    });
    expect(await run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(note))))).toEqual({
      batchItemFailures: [],
    });
    const record = await ledger.get(idOf(note));
    expect(record).toMatchObject({ status: 'failed', error: { code: 'InvalidParameter' } });
    const everything = JSON.stringify(record) + JSON.stringify(lines);
    for (const secret of ['deadbeefcafe0123', 'SESSIONTOKENxyz', 'ASIAEXAMPLE'])
      expect(everything).not.toContain(secret);
    // Still says what happened, and which object.
    expect(record!.error!.message).toContain('could not be downloaded');
    expect(record!.error!.message).toContain(
      'incoming/perm/quoted.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***',
    );
  });

  it('keeps an upload pending and redelivered, never failed, when IVA refuses our own keys; refreshes the secret', async () => {
    const note = await upload('incoming/keys/rotated.jpg', 'rotated');
    sandbox.injectFaults({ count: 1, code: 'SignatureDoesNotMatch', httpStatus: 401 });
    let refreshed = 0;
    const handler = createHandler(deps({ refreshCredentials: async () => void refreshed++ }));
    const result = await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-keys')));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-keys' }] });
    expect(refreshed).toBe(1);
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'pending', error: { code: 'SignatureDoesNotMatch' } });
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-keys')))).toEqual({ batchItemFailures: [] });
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'submitted' });
  });

  it('keeps an upload pending and redelivered, never failed, when the Volcengine secret cannot be read', async () => {
    const note = await upload('incoming/keys/secret-outage.jpg', 'outage');
    let secretReadable = false;
    let refreshed = 0;
    const iva = createIvaClient({
      endpoint: sandbox.url,
      credentials: async () => {
        if (!secretReadable) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        return DEFAULT_SANDBOX_CREDENTIALS;
      },
      baseDelayMs: 20,
      maxDelayMs: 100,
      timeoutMs: 5_000,
    });
    const handler = createHandler(deps({ iva, refreshCredentials: async () => void refreshed++ }));
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-secret')))).toEqual({
      batchItemFailures: [{ itemIdentifier: 'm-secret' }],
    });
    expect(sandbox.requests).toHaveLength(0);
    expect(refreshed).toBe(1);
    expect(await ledger.get(idOf(note))).toMatchObject({
      status: 'pending',
      error: { code: 'CredentialsUnavailable' },
    });
    expect(metricCounts.Failed).toBeUndefined();
    secretReadable = true;
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-secret')))).toEqual({
      batchItemFailures: [],
    });
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'submitted' });
  });

  it('leaves the message for redelivery when IVA is down for the whole budget, then submits', async () => {
    const note = await upload('incoming/down/later.jpg', 'later');
    // IVA's gateway answering 503 with its error body: it certainly did not take it.
    sandbox.injectFaults({ count: 1000, code: 'ServiceUnavailable', httpStatus: 503 });
    const handler = createHandler(deps({ safetyMarginMs: 500, minBudgetMs: 100 }));
    const started = Date.now();
    const result = await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-down')), context(1_500));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-down' }] });
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'pending', error: { code: 'ServiceUnavailable' } });
    sandbox.reset();
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-down')))).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions).toHaveLength(1);
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'submitted', attempts: 2 });
  });

  it('the answer lost after IVA accepted it: uncertain (cause, times), IVA has it once, a redelivery sends nothing', async () => {
    const note = await upload('incoming/lost/answer.jpg', 'lost');
    sandbox.injectFaults({ drop: true, afterAccept: true });
    const handler = createHandler(deps());
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-lost')))).toEqual({ batchItemFailures: [] });
    const record = await ledger.get(idOf(note));
    expect(record).toMatchObject({
      status: 'uncertain',
      uncertain: { code: 'ConnectionLostAfterSend' },
      error: { code: 'ConnectionLostAfterSend' },
    });
    expect(Date.parse(record?.uncertain?.failedAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(record?.uncertain?.sentAt ?? ''),
    );
    // S3/SQS deliver the same event again: nothing is sent to IVA a second time.
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(note), 'm-lost-2')))).toEqual({
      batchItemFailures: [],
    });
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.submissions).toHaveLength(1);
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'uncertain', attempts: 1 });
  });

  it('under IVA flow limits, paces its calls instead of retrying into the limit: every upload submitted once, few 429s', async () => {
    const throttledCalls = async (pacing: boolean, prefix: string) => {
      sandbox.reset();
      sandbox.setRateLimit({ perSecond: 5, burst: 1 });
      try {
        const notes = [];
        for (let i = 0; i < 24; i++) notes.push(await upload(`incoming/${prefix}/${i}.jpg`, `bytes ${i}`));
        sandbox.setRateLimit({ perSecond: 5, burst: 1 }); // a fresh bucket, not one filled during the uploads
        const handler = createHandler(deps({ pacing, concurrency: 4 }));
        const out = await run(handler, sqsEvent(...notes.map((n) => sqsRecord(JSON.stringify(n)))));
        expect(out, `pacing ${pacing}`).toEqual({ batchItemFailures: [] });
        expect(sandbox.submissions, `pacing ${pacing}`).toHaveLength(24);
        for (const n of notes) expect(await ledger.get(idOf(n))).toMatchObject({ status: 'submitted' });
        return sandbox.requests.filter((r) => r.httpStatus === 429).length;
      } finally {
        sandbox.setRateLimit(undefined);
      }
    };
    const unpaced = await throttledCalls(false, 'unpaced');
    const paced = await throttledCalls(true, 'paced');
    // The client's own backoff (20-100 ms here) keeps hitting a limit of 5/s; the pacer
    // learns the limit after a few. A limit well below what a loaded machine can send keeps
    // the two counts apart however slow the run (at 10/s a loaded run once paced 16).
    expect(unpaced).toBeGreaterThan(15);
    expect(paced).toBeLessThan(unpaced / 2);
  });

  it('records an upload pending (NoTimeLeft) before leaving it to redelivery when too little time is left; the redelivery submits it', async () => {
    const note = await upload('incoming/late/late.jpg', 'late');
    const result = await run(
      createHandler(deps()),
      sqsEvent(sqsRecord(JSON.stringify(note), 'm-late')),
      context(5_500),
    );
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-late' }] });
    expect(sandbox.requests).toHaveLength(0);
    // Visible to its owner while it waits, and not leased: the redelivery proceeds at once.
    const waiting = await ledger.get(idOf(note));
    expect(waiting).toMatchObject({ status: 'pending', taskId: 'late', error: { code: 'NoTimeLeft' } });
    expect(waiting?.leaseUntil).toBeUndefined();
    expect(await run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(note), 'm-late')))).toEqual({
      batchItemFailures: [],
    });
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'submitted' });
    expect(sandbox.submissions).toHaveLength(1);
  });

  it('records an upload overwritten before its event was processed as failed ObjectOverwritten, findable by its id', async () => {
    const first = await upload('incoming/ow/same.jpg', 'first bytes');
    await new Promise((r) => setTimeout(r, 5)); // s3rver's sequencer is the time in ms
    const second = await upload('incoming/ow/same.jpg', 'second bytes, longer');
    const out = await run(
      createHandler(deps()),
      sqsEvent(sqsRecord(JSON.stringify(first)), sqsRecord(JSON.stringify(second))),
    );
    expect(out).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions.map((s) => s.file?.toString())).toEqual(['second bytes, longer']);
    expect(await ledger.get(idOf(first))).toMatchObject({
      status: 'failed',
      taskId: 'ow',
      error: { code: 'ObjectOverwritten' },
      object: { key: 'incoming/ow/same.jpg' },
    });
    expect(await ledger.get(idOf(second))).toMatchObject({ status: 'submitted' });
  });

  it('lets metadata override the path (task, kind, unicode name, desc, AlgoParamConf)', async () => {
    const note = await upload('incoming/path-task/file.bin', 'meta', {
      contentType: 'application/octet-stream',
      metadata: {
        'iva-task-id': 'meta-task',
        'iva-kind': 'video',
        'iva-name': b64('猫の動画 1.mp4'),
        'iva-desc': b64('説明 +%'),
        'iva-algo-param-conf': '{"threshold":0.7}',
      },
    });
    expect(await run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(note))))).toEqual({
      batchItemFailures: [],
    });
    expect(sandbox.submissions).toHaveLength(1);
    expect(sandbox.submissions[0]).toMatchObject({
      kind: 'video',
      taskId: 'meta-task',
      name: '猫の動画 1.mp4',
      desc: '説明 +%',
      algoParamConf: { threshold: 0.7 },
    });
    expect(await ledger.get(idOf(note))).toMatchObject({ taskId: 'meta-task', kind: 'video', name: '猫の動画 1.mp4' });
  });

  it('uses the configured default TaskID for files directly under incoming/', async () => {
    const note = await upload('incoming/top.png', 'top');
    await run(createHandler(deps({ defaultTaskId: 'default-task' })), sqsEvent(sqsRecord(JSON.stringify(note))));
    expect(sandbox.submissions[0]).toMatchObject({ taskId: 'default-task', name: 'top.png' });
  });

  it('ignores results/ keys, removals and the S3 test event; sends malformed messages to the DLQ', async () => {
    const result = await upload('results/task/r.json', '{}');
    const handler = createHandler(deps());
    const removed = { Records: [{ ...result.Records[0]!, eventName: 'ObjectRemoved:Delete' }] };
    const testEvent = { Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: BUCKET };
    const out = await run(
      handler,
      sqsEvent(
        sqsRecord(JSON.stringify(result), 'r'),
        sqsRecord(JSON.stringify(removed), 'd'),
        sqsRecord(JSON.stringify(testEvent), 't'),
        sqsRecord('not json {', 'bad'),
        sqsRecord('{"Records":[{"s3":{}}]}', 'bad2'),
      ),
    );
    expect(out).toEqual({ batchItemFailures: [{ itemIdentifier: 'bad' }, { itemIdentifier: 'bad2' }] });
    expect(sandbox.requests).toHaveLength(0);
    expect(await ledger.get(idOf(result))).toBeUndefined();
    expect(
      lines
        .filter((l) => l.level === 'error' && l.message.startsWith('Malformed message'))
        .map((l) => l.attrs.messageId),
    ).toEqual(['bad', 'bad2']);
    expect(
      lines.some(
        (l) => l.message.startsWith('Ignored: only objects under incoming/') && l.attrs.key === 'results/task/r.json',
      ),
    ).toBe(true);
    expect(lines.some((l) => l.message === 'S3 test event acknowledged')).toBe(true);
  });

  it('records an object deleted before its event was processed as failed (ObjectNotFound)', async () => {
    const note = await upload('incoming/gone/vanished.jpg', 'x');
    const gone = {
      Records: [
        {
          ...note.Records[0]!,
          s3: {
            ...note.Records[0]!.s3,
            object: { ...note.Records[0]!.s3.object, key: encodeS3EventKey('incoming/gone/never there.jpg') },
          },
        },
      ],
    };
    expect(await run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(gone))))).toEqual({
      batchItemFailures: [],
    });
    expect(sandbox.requests).toHaveLength(0);
    expect(await ledger.get(idOf(gone))).toMatchObject({ status: 'failed', error: { code: 'ObjectNotFound' } });
    expect(metricCounts).toEqual({ Failed: 1 });
    expect(failedByCode).toEqual({ ObjectNotFound: 1 });
  });

  it('a HEAD answered 403 (S3 hides a missing key from a role without s3:ListBucket) is recorded ObjectNotFound, not retried into the DLQ', async () => {
    // What S3 answers HeadObject on a deleted key when the caller may not list the
    // bucket: a bare 403 (a HEAD answer has no body). s3rver always says 404, so a
    // small server plays that part over real HTTP.
    const denying = createServer((req, res) => {
      res.writeHead(req.method === 'HEAD' ? 403 : 500, { 'x-amz-request-id': 'denied' });
      res.end();
    });
    await new Promise<void>((resolve) => denying.listen(0, '127.0.0.1', resolve));
    try {
      const client = createS3Client({
        endpoint: `http://127.0.0.1:${(denying.address() as AddressInfo).port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      });
      const note = await upload('incoming/denied/deleted.jpg', 'x');
      expect(await run(createHandler(deps({}, client)), sqsEvent(sqsRecord(JSON.stringify(note))))).toEqual({
        batchItemFailures: [],
      });
      expect(sandbox.requests).toHaveLength(0);
      expect(await ledger.get(idOf(note))).toMatchObject({
        status: 'failed',
        error: { code: 'ObjectNotFound', message: expect.stringMatching(/403/) },
      });
    } finally {
      await new Promise<void>((resolve) => denying.close(() => resolve()));
    }
  });

  it('records bad AlgoParamConf, unknown media and a >50 MB image as failed without calling IVA', async () => {
    const badConf = await upload('incoming/t/conf.jpg', 'x', { metadata: { 'iva-algo-param-conf': '{not json' } });
    const unknown = await upload('incoming/t/doc.pdf', 'x', { contentType: 'application/pdf' });
    const big = await upload('incoming/t/huge.jpg', Buffer.alloc(IMAGE_MAX_BYTES + 1024 * 1024, 7), {
      contentType: 'image/jpeg',
    });
    const out = await run(
      createHandler(deps()),
      sqsEvent(...[badConf, unknown, big].map((n) => sqsRecord(JSON.stringify(n)))),
    );
    expect(out).toEqual({ batchItemFailures: [] });
    expect(sandbox.requests).toHaveLength(0);
    expect(await ledger.get(idOf(badConf))).toMatchObject({
      status: 'failed',
      error: { code: 'InvalidAlgoParamConf' },
    });
    expect(await ledger.get(idOf(unknown))).toMatchObject({
      status: 'failed',
      error: { code: 'UnsupportedMediaType' },
    });
    expect(await ledger.get(idOf(big))).toMatchObject({
      status: 'failed',
      kind: 'image',
      error: { code: 'ImageTooLarge' },
      object: { size: IMAGE_MAX_BYTES + 1024 * 1024 },
    });
    expect(metricCounts).toEqual({ Failed: 3 });
  });

  it('refuses a TaskID the API refuses (control characters, thousands of characters) as failed InvalidTaskID, never sent, never logged raw', async () => {
    const crlf = await upload('incoming/ok/crlf.jpg', 'x', { metadata: { 'iva-task-id': b64('task\r\nX-Evil: 1') } });
    const nul = await upload('incoming/ok/nul.jpg', 'x', { metadata: { 'iva-task-id': b64('ta\u0000sk') } });
    const long = await upload('incoming/ok/long.jpg', 'x', { metadata: { 'iva-task-id': b64('L'.repeat(1_000)) } });
    // (An over-long key segment is covered by test/submission: s3rver cannot store one, its file names stop at 255.)
    const all = [crlf, nul, long];
    const out = await run(createHandler(deps()), sqsEvent(...all.map((n) => sqsRecord(JSON.stringify(n)))));
    expect(out).toEqual({ batchItemFailures: [] });
    expect(sandbox.requests).toHaveLength(0);
    for (const n of all) {
      const record = await ledger.get(idOf(n));
      expect(record).toMatchObject({ status: 'failed', error: { code: 'InvalidTaskID' } });
      expect(record?.taskId).toBeUndefined();
      expect(record?.error?.message).not.toMatch(/[\r\n\u0000]/);
    }
    const logged = JSON.stringify(lines);
    for (const line of lines) {
      for (const value of [line.message, ...Object.values(line.attrs)]) {
        if (typeof value !== 'string') continue;
        expect(value).not.toMatch(/\p{Cc}/u);
        expect(value.length).toBeLessThan(600);
      }
    }
    expect(logged).not.toContain('L'.repeat(300));
  });

  it('in an unversioned bucket, IVA gets the bytes of the event even when the key is overwritten before IVA fetches it', async () => {
    // The URL IVA fetches must not follow the key: an overwrite between the HEAD and IVA's
    // download would otherwise give IVA the newer bytes under this upload's id, and the
    // newer upload's own event would send them a second time.
    const handler = createHandler(deps());
    const first = await upload('incoming/race/same.jpg', 'first bytes');
    sandbox.injectFaults({ delayMs: 300 });
    let second: Promise<S3EventNotification> | undefined;
    sandbox.once('request', () => {
      second = upload('incoming/race/same.jpg', 'second bytes, longer');
    });
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(first))))).toEqual({ batchItemFailures: [] });
    const secondNote = await second!;
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(secondNote))))).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions.map((s) => s.file?.toString())).toEqual(['first bytes', 'second bytes, longer']);
    expect(await ledger.get(idOf(first))).toMatchObject({
      status: 'submitted',
      dataId: sandbox.submissions[0]!.dataId,
    });
    expect(await ledger.get(idOf(secondNote))).toMatchObject({
      status: 'submitted',
      dataId: sandbox.submissions[1]!.dataId,
    });
  });

  it('submits a new upload to the same key again, and drops the stale event of an overwritten object', async () => {
    const handler = createHandler(deps());
    const first = await upload('incoming/re/same.jpg', 'first');
    await run(handler, sqsEvent(sqsRecord(JSON.stringify(first))));
    await new Promise((r) => setTimeout(r, 5)); // s3rver's sequencer is the time in ms
    const second = await upload('incoming/re/same.jpg', 'second upload');
    await run(handler, sqsEvent(sqsRecord(JSON.stringify(second))));
    expect(sandbox.submissions.map((s) => s.file!.toString())).toEqual(['first', 'second upload']);
    expect(idOf(first)).not.toBe(idOf(second));
    expect(await ledger.get(idOf(second))).toMatchObject({ status: 'submitted' });
    // A late redelivery of the first event: the object now holds the second upload's bytes.
    expect(await run(handler, sqsEvent(sqsRecord(JSON.stringify(first))))).toEqual({ batchItemFailures: [] });
    expect(sandbox.submissions).toHaveLength(2);
    expect(lines.some((l) => l.message.includes('overwritten since this event'))).toBe(true);
  });

  it('uses the upload route reserved submission id, and a derived one for a later upload to that key', async () => {
    const id = `up_${randomUUID().replace(/-/g, '')}`;
    const key = `incoming/upl/${id}/clip.mp4`;
    await ledger.reserve({
      id,
      source: 'upload',
      taskId: 'upl',
      kind: 'video',
      name: 'clip.mp4',
      object: { bucket: BUCKET, key },
    });
    const metadata = { 'iva-task-id': 'upl', 'iva-kind': 'video', 'iva-name': 'clip.mp4', 'iva-submission-id': id };
    const handler = createHandler(deps());
    const first = await upload(key, 'clip one', { metadata, contentType: 'video/mp4' });
    await run(handler, sqsEvent(sqsRecord(JSON.stringify(first))));
    await run(handler, sqsEvent(sqsRecord(JSON.stringify(first))));
    expect(sandbox.submissions).toHaveLength(1);
    const record = await ledger.get(id);
    expect(record).toMatchObject({ id, source: 'upload', status: 'submitted', dataId: sandbox.submissions[0]!.dataId });

    await new Promise((r) => setTimeout(r, 20));
    const second = await upload(key, 'clip two', { metadata, contentType: 'video/mp4' });
    await run(handler, sqsEvent(sqsRecord(JSON.stringify(second))));
    expect(sandbox.submissions.map((s) => s.file!.toString())).toEqual(['clip one', 'clip two']);
    expect(await ledger.get(idOf(second))).toMatchObject({ source: 's3', status: 'submitted' });
  });

  it.each([
    ['unreserved, well-formed', 'not-reserved-1234', 'not-reserved-1234'],
    [
      'unreserved, shaped like an upload id',
      'upl_00000000-0000-4000-8000-000000000000',
      'upl_00000000-0000-4000-8000-000000000000',
    ],
    ['malformed: too short', 'short', 'short'],
    ['malformed: too long', 'x'.repeat(129), 'x'.repeat(129)],
    ['malformed: a path', '../../incoming/x', '../../incoming/x'],
    ['malformed: spaces', 'has spaces in it', 'has spaces in it'],
    ['malformed: non-ASCII (RFC 2047)', b64('übermäßig-lang'), 'übermäßig-lang'],
  ])('never submits an %s iva-submission-id as given', async (_what, metadataValue, decoded) => {
    const key = `incoming/forged/${randomUUID()}.jpg`;
    const note = await upload(key, 'forged', { metadata: { 'iva-submission-id': metadataValue } });
    await run(createHandler(deps()), sqsEvent(sqsRecord(JSON.stringify(note))));
    expect(await ledger.get(decoded)).toBeUndefined();
    expect(await ledger.get(idOf(note))).toMatchObject({ status: 'submitted', source: 's3', object: { key } });
  });

  it('bounds the IVA calls in flight by the configured concurrency', async () => {
    const notes = await Promise.all(Array.from({ length: 6 }, (_, i) => upload(`incoming/conc/${i}.jpg`, `c${i}`)));
    sandbox.injectFaults({ count: 6, delayMs: 150 });
    let inFlight = 0;
    let peak = 0;
    const onRequest = () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
    };
    const onSubmission = () => inFlight--;
    sandbox.on('request', onRequest);
    sandbox.on('submission', onSubmission);
    try {
      const out = await run(
        createHandler(deps({ concurrency: 2 })),
        sqsEvent(...notes.map((n) => sqsRecord(JSON.stringify(n)))),
      );
      expect(out).toEqual({ batchItemFailures: [] });
    } finally {
      sandbox.off('request', onRequest);
      sandbox.off('submission', onSubmission);
    }
    expect(sandbox.submissions).toHaveLength(6);
    expect(peak).toBe(2);
  });
});

const ceph = requireCeph();

describe.skipIf(!ceph)('object-created against a real S3 (Ceph RGW): versioned objects', () => {
  const bucket = uniqueBucketName('intake');
  let client: S3Client;

  beforeAll(async () => {
    await createBucket(ceph!, bucket);
    client = cephS3Client(ceph!);
    await client.send(
      new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
  });

  /** The event AWS would send for this PutObject (Ceph's own notifications need a push endpoint). */
  function eventFor(key: string, versionId: string, eTag: string, size: number): string {
    return JSON.stringify({
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: 'us-east-1',
          eventTime: new Date().toISOString(),
          eventName: 'ObjectCreated:Put',
          s3: {
            s3SchemaVersion: '1.0',
            configurationId: 'c',
            bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
            object: { key: encodeS3EventKey(key), size, eTag: eTag.replace(/"/g, ''), versionId, sequencer: '0' },
          },
        },
      ],
    });
  }

  it('submits each version by a URL the gateway verifies, with that version bytes', async () => {
    const key = 'incoming/ceph task/v + 猫 100%.jpg';
    const v1 = await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'version one', ContentType: 'image/jpeg' }),
    );
    const v2 = await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'version two!', ContentType: 'image/jpeg' }),
    );
    const handler = createHandler(deps({}, client));
    const e1 = eventFor(key, v1.VersionId!, v1.ETag!, 11);
    expect(await run(handler, sqsEvent(sqsRecord(e1), sqsRecord(e1)))).toEqual({ batchItemFailures: [] });
    expect(await run(handler, sqsEvent(sqsRecord(eventFor(key, v2.VersionId!, v2.ETag!, 12))))).toEqual({
      batchItemFailures: [],
    });
    expect(sandbox.submissions.map((s) => s.file!.toString())).toEqual(['version one', 'version two!']);
    expect(sandbox.submissions[0]!.url).toContain(`versionId=${encodeURIComponent(v1.VersionId!)}`);
    expect(sandbox.submissions[0]).toMatchObject({ taskId: 'ceph task', name: 'v + 猫 100%.jpg' });
    const r1 = await ledger.get(derivedSubmissionId(bucket, key, v1.VersionId!));
    expect(r1).toMatchObject({ status: 'submitted', object: { versionId: v1.VersionId } });
    // A tampered URL is refused by the gateway: the bytes above passed a real signature check.
    const tampered = sandbox.submissions[0]!.url!.replace(/X-Amz-Signature=[0-9a-f]{4}/, 'X-Amz-Signature=0000');
    expect((await fetch(tampered)).status).toBe(403);
  });
});
