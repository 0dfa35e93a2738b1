/**
 * The sandbox of a `-c ivaMode=sandbox` stack, driven as Lambda runs it: the real IVA
 * client signs and sends to the submit handler (behind a local HTTP front that builds
 * function URL events, payload 2.0), Source=url objects come from a local file server,
 * and the callback sender posts what the submit handler queued to a local receiver.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createHandler as createSenderHandler,
  depsFromEnv as senderDepsFromEnv,
} from '../../../functions/iva-sandbox-callbacks/handler';
import { createHandler as createSandboxHandler } from '../../../functions/iva-sandbox/handler';
import { createIvaClient } from '../../../lib/iva/index';
import { silentLogger } from '../../../lib/observability';
import { volcCredentialsFrom } from '../../../lib/secrets/index';
import { closeServer, listen, urlOf } from '../../../local/servers/http-close';
import type { CallbackMessage } from '../../../local/iva-sandbox/queued';

const AK = 'AKLTIVABRIDGESANDBOX';
const SK = randomBytes(20).toString('hex');
const SECRET = randomBytes(32).toString('hex');
const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'iva-sandbox',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:iva-sandbox',
  memoryLimitInMB: '1024',
  awsRequestId: 'aws-req',
  logGroupName: '/aws/lambda/iva-sandbox',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 60_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as Context;

const queued: CallbackMessage[] = [];
let queueDown = false;
const sandbox = createSandboxHandler({
  credentials: volcCredentialsFrom({ VOLC_ACCESSKEY: AK, VOLC_SECRETKEY: SK }),
  region: 'cn-north-1',
  service: 'iva',
  queue: {
    send: async (message) => {
      if (queueDown) throw new Error('SQS unavailable');
      queued.push(message);
    },
  },
});

/** Reads a request into a function URL event, the way Lambda builds one (binary bodies base64). */
async function functionUrlEvent(req: IncomingMessage): Promise<LambdaFunctionURLEvent> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const url = new URL(req.url ?? '/', 'http://front.invalid');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    body: Buffer.concat(chunks).toString('base64'),
    isBase64Encoded: true,
    requestContext: { http: { method: req.method ?? 'GET' } },
  } as unknown as LambdaFunctionURLEvent;
}

let front: Server;
let frontUrl: string;
let files: Server;
let filesUrl: string;
let receiver: Server;
let receiverUrl: string;
const received: Array<{ path: string; body: string }> = [];
let receiverStatus = 200;
const served = randomBytes(300_000);

beforeAll(async () => {
  front = createServer((req, res) => {
    void (async () => {
      const out = (await sandbox(await functionUrlEvent(req), context)) as LambdaFunctionURLResult & {
        statusCode: number;
        headers: Record<string, string>;
        body: string;
      };
      res.writeHead(out.statusCode, out.headers);
      res.end(out.body);
    })();
  });
  files = createServer((req, res) => {
    if (req.url === '/object') {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': served.length });
      res.end(served);
    } else {
      res.writeHead(403);
      res.end('AccessDenied');
    }
  });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(receiverStatus, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  frontUrl = urlOf(await listen(front, 0, '127.0.0.1'));
  filesUrl = urlOf(await listen(files, 0, '127.0.0.1'));
  receiverUrl = urlOf(await listen(receiver, 0, '127.0.0.1'));
});

afterAll(async () => {
  await Promise.all([closeServer(front), closeServer(files), closeServer(receiver)]);
});

beforeEach(() => {
  queued.length = 0;
  received.length = 0;
  queueDown = false;
  receiverStatus = 200;
});

const client = (secretAccessKey = SK) =>
  createIvaClient({ credentials: { accessKeyId: AK, secretAccessKey }, endpoint: frontUrl, timeoutMs: 10_000 });

describe('sandbox function (function URL)', () => {
  it('accepts a signed Source=file submission and queues its callback before answering', async () => {
    const file = randomBytes(100_000);
    const result = await client().submit({
      kind: 'image',
      taskId: 'sbx-task',
      name: 'cat.jpg',
      source: { type: 'file', data: file, filename: 'cat.jpg', contentType: 'image/jpeg' },
    });
    expect(result.dataId).toMatch(/^img-[0-9a-f]{24}$/);
    expect(queued).toHaveLength(1);
    const message = queued[0]!;
    expect(message).toMatchObject({ taskId: 'sbx-task', dataId: result.dataId });
    expect(JSON.parse(message.body)).toMatchObject({
      TaskID: 'sbx-task',
      ImageID: result.dataId,
      Status: 'success',
      RequestId: result.requestId,
      Result: { Size: file.length, Sha256: createHash('sha256').update(file).digest('hex') },
    });
  });

  it('downloads a Source=url object the way IVA does and refuses one it cannot fetch', async () => {
    const ok = await client().submit({
      kind: 'video',
      taskId: 'sbx-url',
      name: 'clip.mp4',
      source: { type: 'url', url: `${filesUrl}/object` },
    });
    expect(JSON.parse(queued[0]!.body)).toMatchObject({
      VideoID: ok.dataId,
      Result: { Size: served.length, Sha256: createHash('sha256').update(served).digest('hex') },
    });
    await expect(
      client().submit({
        kind: 'video',
        taskId: 'sbx-url',
        name: 'x.mp4',
        source: { type: 'url', url: `${filesUrl}/nope` },
      }),
    ).rejects.toMatchObject({ code: 'InvalidParameter' });
    expect(queued).toHaveLength(1);
  });

  it('refuses a signature made with another secret key, and queues nothing', async () => {
    await expect(
      client('not-the-generated-key').submit({
        kind: 'image',
        taskId: 'sbx-task',
        name: 'cat.jpg',
        source: { type: 'file', data: randomBytes(10) },
      }),
    ).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(queued).toEqual([]);
  });

  it('answers 500 when the callback cannot be queued, so no accepted submission goes uncalled', async () => {
    queueDown = true;
    // IVA's own 500 proves it did not take the request: the client retries within its budget.
    const error = await client()
      .submit(
        { kind: 'image', taskId: 'sbx-task', name: 'cat.jpg', source: { type: 'file', data: randomBytes(10) } },
        { budgetMs: 300 },
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'InternalError', httpStatus: 500 });
    expect(queued).toEqual([]);
  });
});

describe('sandbox callback sender (SQS event source)', () => {
  const sender = () =>
    createSenderHandler({
      ...senderDepsFromEnv({ CALLBACK_BASE_URL: `${receiverUrl}/prod/callbacks/`, CALLBACK_SECRETS: `${SECRET},old` }),
      logger: silentLogger,
    });
  const sqsEvent = (messages: CallbackMessage[]): SQSEvent =>
    ({
      Records: messages.map((m, i) => ({ messageId: `m${i}`, body: JSON.stringify(m) })),
    }) as unknown as SQSEvent;

  it('posts each queued body byte for byte to <ApiUrl>callbacks/<current secret>', async () => {
    const messages: CallbackMessage[] = [
      { taskId: 't', dataId: 'img-1', body: '{"TaskID":"t","ImageID":"img-1","Status":"success"}' },
      { taskId: 't', dataId: 'vid-2', body: '{"TaskID":"t","VideoID":"vid-2","Status":"success"}' },
    ];
    const out = (await sender()(sqsEvent(messages), context)) as SQSBatchResponse;
    expect(out.batchItemFailures).toEqual([]);
    expect(received.map((r) => r.path)).toEqual([`/prod/callbacks/${SECRET}`, `/prod/callbacks/${SECRET}`]);
    expect(received.map((r) => r.body).sort()).toEqual(messages.map((m) => m.body).sort());
  });

  it('returns the callbacks the receiver did not take as batch item failures, so SQS retries them', async () => {
    receiverStatus = 503;
    const out = (await sender()(sqsEvent([{ taskId: 't', dataId: 'img-1', body: '{}' }]), context)) as SQSBatchResponse;
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: 'm0' }]);
    expect(received).toHaveLength(1);
  });
});
