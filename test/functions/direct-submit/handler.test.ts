/**
 * The direct-submit function end to end against real local servers: dynalite (ledger),
 * the IVA sandbox (signature checks, multipart validation, Source=url downloads,
 * injected faults) and s3rver (presigned PUT). Events are API Gateway REST v1 events
 * with multipart bodies written by a real encoder, base64-encoded like the gateway does.
 */
import { vi } from 'vitest';

vi.hoisted(() => {
  // The handler's own logger stays quiet: passing tests print no JSON log lines (the log
  // lines themselves are tested in log-event.test.ts).
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
});
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { HeadObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHandler, type DirectSubmitDeps } from '../../../functions/direct-submit/handler';
import type { LoggerPort } from '../../../lib/observability';
import { decodeMetadataValue } from '../../../lib/storage/metadata';
import { createIvaClient } from '../../../lib/iva/index';
import type { IvaClient } from '../../../lib/iva/types';
import type { Ledger } from '../../../lib/ledger/index';
import { createDynamoIdempotencyStore, type IdempotencyStore } from '../../../lib/ledger/idempotency';
import { logger } from '../../../lib/observability';
import type { VolcCredentials } from '../../../lib/signer/index';
import { DEFAULT_SANDBOX_CREDENTIALS, startIvaSandbox, type IvaSandbox } from '../../../local/iva-sandbox/server';
import { startDynalite, startS3rver, type LocalDynalite, type LocalS3 } from '../../../local/servers/index';
import { encodeForm, lambdaContext, restEvent, type EventInput } from './events';
import { documentClient, ledgerOn, s3rverClient } from '../../support/servers';

const BUCKET = 'iva-bridge-test';
const VERSION = '2022-05-13';

let dynalite: LocalDynalite;
let sandbox: IvaSandbox;
let s3local: LocalS3;
let fileServer: Server;
let fileServerUrl: string;
let ledger: Ledger;
let s3: S3Client;
let iva: IvaClient;
/** What the IVA client signs with; tests swap it to simulate rotation. */
let currentKeys: VolcCredentials = DEFAULT_SANDBOX_CREDENTIALS;
let refreshes = 0;
let refreshTo: VolcCredentials = DEFAULT_SANDBOX_CREDENTIALS;
const logLines: Array<{ level: string; message: string; extra?: Record<string, unknown> }> = [];
const counted: string[] = [];
const servedFile = randomBytes(50_000);

function deps(overrides: Partial<DirectSubmitDeps> = {}): DirectSubmitDeps {
  const push =
    (level: string) =>
    (message: string, ...attributes: Record<string, unknown>[]) =>
      logLines.push({ level, message, ...(attributes[0] ? { extra: attributes[0] } : {}) });
  const logger: LoggerPort = {
    debug: push('debug'),
    info: push('info'),
    warn: push('warn'),
    error: push('error'),
    appendKeys: () => undefined,
  };
  return {
    ledger,
    iva,
    credentials: {
      refresh: async () => {
        refreshes += 1;
        currentKeys = refreshTo;
        return currentKeys;
      },
    },
    s3,
    bucket: BUCKET,
    config: { directMaxBytes: 4_500_000, uploadUrlTtlSeconds: 900, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    logger,
    metrics: {
      addMetric: (name) => {
        counted.push(name);
      },
      singleMetric: () => {
        const dimensions: string[] = [];
        return {
          addDimension: (name, value) => dimensions.push(`${name}=${value}`),
          addMetric: (name) => counted.push(`${name}{${dimensions.join(',')}}`),
        };
      },
    },
    ...overrides,
  };
}

const handler = createHandler(() => deps());

async function call(
  input: EventInput,
  remainingMs = 30_000,
  h = handler,
): Promise<APIGatewayProxyResult & { json: Record<string, any> }> {
  const result = (await h(restEvent(input), lambdaContext(remainingMs))) as APIGatewayProxyResult;
  return { ...result, json: JSON.parse(result.body) as Record<string, any> };
}

function header(result: APIGatewayProxyResult, name: string): string | undefined {
  const entry = Object.entries(result.headers ?? {}).find(([k]) => k.toLowerCase() === name.toLowerCase());
  return entry ? String(entry[1]) : undefined;
}

/** File bytes that a naive multipart parser would cut: CRLF, dashes, a fake part header. */
function trickyFile(size: number): Buffer {
  const tricky = Buffer.from(
    '\r\n------formdata-undici-0\r\nContent-Disposition: form-data; name="Request"\r\n\r\n{"TaskID":"evil"}\r\n--',
  );
  return Buffer.concat([tricky, randomBytes(size - tricky.length)]);
}

async function imageForm(request: unknown, file?: Buffer, fileField = 'ImageFile', filename = 'cat.jpg') {
  const parts: Array<[string, string] | [string, Uint8Array, string, string?]> = [];
  if (file) parts.push([fileField, file, filename, 'image/jpeg']);
  parts.push(['Request', typeof request === 'string' ? request : JSON.stringify(request)]);
  return encodeForm(parts);
}

function post(path: string, form: { body: Buffer; contentType: string }, extra: Partial<EventInput> = {}): EventInput {
  return {
    method: 'POST',
    path,
    headers: { 'Content-Type': form.contentType, ...(extra.headers ?? {}) },
    body: form.body,
    ...extra,
    ...(extra.headers ? { headers: { 'Content-Type': form.contentType, ...extra.headers } } : {}),
  };
}

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  [dynalite, sandbox, s3local] = await Promise.all([
    startDynalite(),
    startIvaSandbox(),
    startS3rver({ buckets: [BUCKET] }),
  ]);
  ledger = await ledgerOn(documentClient(dynalite));
  s3 = s3rverClient(s3local);
  iva = createIvaClient({
    endpoint: sandbox.url,
    credentials: async () => currentKeys,
    timeoutMs: 20_000,
    baseDelayMs: 5,
    maxDelayMs: 40,
  });
  fileServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': servedFile.length });
    res.end(servedFile);
  });
  await new Promise<void>((resolve) => fileServer.listen(0, '127.0.0.1', resolve));
  const address = fileServer.address() as { port: number };
  fileServerUrl = `http://127.0.0.1:${address.port}/media/clip.mp4`;
});

afterAll(async () => {
  iva?.close?.();
  await new Promise<void>((resolve) => (fileServer ? fileServer.close(() => resolve()) : resolve()));
  await Promise.all([dynalite?.close(), sandbox?.close(), s3local?.close()]);
});

afterEach(() => {
  sandbox.reset();
  currentKeys = DEFAULT_SANDBOX_CREDENTIALS;
  refreshTo = DEFAULT_SANDBOX_CREDENTIALS;
  refreshes = 0;
});

describe('direct submissions arrive at IVA byte-identical', () => {
  it('POST /v1/images, Source=file: 200 in IVA shape, same bytes at the sandbox, ledger submitted', async () => {
    const file = trickyFile(300_000);
    const form = await imageForm(
      {
        TaskID: 'task-img',
        Image: { Name: 'cat.jpg', Source: 'file', Desc: 'a cat' },
        AlgoParamConf: { threshold: 0.5 },
      },
      file,
    );
    const res = await call(post('/v1/images', form, { headers: { 'CONTENT-TYPE': form.contentType } }));
    expect(res.statusCode).toBe(200);
    const submissionId = res.json.Result.SubmissionId as string;
    expect(submissionId).toMatch(/^api_/);
    expect(header(res, 'x-iva-bridge-submission-id')).toBe(submissionId);
    expect(sandbox.submissions).toHaveLength(1);
    const got = sandbox.submissions[0]!;
    expect(Buffer.compare(got.file!, file)).toBe(0);
    expect(got).toMatchObject({
      kind: 'image',
      taskId: 'task-img',
      name: 'cat.jpg',
      desc: 'a cat',
      source: 'file',
      algoParamConf: { threshold: 0.5 },
      fileName: 'cat.jpg',
    });
    expect(res.json.ResponseMetadata).toEqual({
      RequestId: got.requestId,
      Action: 'AddAsyncTaskImageData',
      Version: VERSION,
      Service: 'iva',
      Region: 'cn-north-1',
    });
    expect(res.json.Result.ImageID).toBe(got.dataId);

    const record = await ledger.get(submissionId);
    expect(record).toMatchObject({
      status: 'submitted',
      source: 'api',
      taskId: 'task-img',
      kind: 'image',
      name: 'cat.jpg',
      dataId: got.dataId,
      requestId: got.requestId,
    });
    expect(counted).toContain('Submitted');
  });

  // DIRECT_MAX_BYTES (4,500,000 here) bounds the DECODED body: API Gateway delivers it
  // base64, a third larger (exactly 6,000,000 characters at the limit). Bodies between
  // ~3.4 MB and 4.5 MB are where measuring the base64 text instead would wrongly refuse.
  async function formOfExactly(bytes: number) {
    const request = { TaskID: 'task-edge', Image: { Name: 'edge.jpg', Source: 'file' } };
    const overhead = (await imageForm(request, Buffer.alloc(1))).body.length - 1;
    const file = randomBytes(bytes - overhead);
    const form = await imageForm(request, file);
    expect(form.body.length).toBe(bytes); // the boundary's length does not vary
    return { form, file };
  }

  it.each([3_500_000, 4_500_000])(
    'a body of %i bytes decoded (over 4.5 MB as base64) is accepted and arrives byte-identical',
    async (bytes) => {
      const { form, file } = await formOfExactly(bytes);
      const event = post('/v1/images', form);
      expect(restEvent(event).body?.length).toBeGreaterThan(4_500_000);
      const res = await call(event);
      expect(res.statusCode).toBe(200);
      expect(sandbox.submissions).toHaveLength(1);
      expect(Buffer.compare(sandbox.submissions[0]?.file ?? Buffer.alloc(0), file)).toBe(0);
    },
  );

  it('one byte over DIRECT_MAX_BYTES decoded → 413 PayloadTooLarge naming the upload route, nothing sent', async () => {
    const { form } = await formOfExactly(4_500_001);
    const res = await call(post('/v1/images', form));
    expect(res.statusCode).toBe(413);
    expect(res.json.ResponseMetadata.Error.Code).toBe('PayloadTooLarge');
    expect(res.json.ResponseMetadata.Error.Message).toMatch(/4500001 bytes.*POST \/v1\/uploads/);
    expect(sandbox.requests).toHaveLength(0);
  });

  it('vendor-compatible POST /?Action=AddAsyncTaskVideoData: a video arrives byte-identical', async () => {
    const file = trickyFile(1_200_000);
    const form = await encodeForm([
      ['VideoFile', file, 'clip.mp4', 'video/mp4'],
      ['Request', JSON.stringify({ TaskID: 'task-vid', Video: { Name: 'clip.mp4', Source: 'file' } })],
    ]);
    const res = await call(
      post('/', form, { query: { Action: 'AddAsyncTaskVideoData', Version: VERSION }, resource: '/' }),
    );
    expect(res.statusCode).toBe(200);
    expect(sandbox.submissions).toHaveLength(1);
    expect(createHash('sha256').update(sandbox.submissions[0]!.file!).digest('hex')).toBe(
      createHash('sha256').update(file).digest('hex'),
    );
    expect(res.json.Result.VideoID).toBe(sandbox.submissions[0]!.dataId);
    expect(res.json.ResponseMetadata.Action).toBe('AddAsyncTaskVideoData');
  });

  it('Source=url: no file part, IVA downloads the URL', async () => {
    const form = await encodeForm([
      [
        'Request',
        JSON.stringify({ TaskID: 'task-url', Video: { Name: 'clip.mp4', Source: 'url', Url: fileServerUrl } }),
      ],
    ]);
    const res = await call(post('/v1/videos', form));
    expect(res.statusCode).toBe(200);
    expect(sandbox.submissions[0]).toMatchObject({ source: 'url', url: fileServerUrl, taskId: 'task-url' });
    expect(Buffer.compare(sandbox.submissions[0]!.file!, servedFile)).toBe(0);
  });

  it('accepts the Request field sent as a file part (curl -F Request=@req.json)', async () => {
    const file = randomBytes(1000);
    const form = await encodeForm([
      ['ImageFile', file, 'a.png', 'image/png'],
      [
        'Request',
        Buffer.from(JSON.stringify({ TaskID: 't', Image: { Name: 'a.png', Source: 'file' } })),
        'req.json',
        'application/json',
      ],
    ]);
    const res = await call(post('/v1/images', form));
    expect(res.statusCode).toBe(200);
    expect(Buffer.compare(sandbox.submissions[0]!.file!, file)).toBe(0);
  });
});

describe('every bad request gets a 4xx with a stable code', () => {
  const goodRequest = { TaskID: 't1', Image: { Name: 'cat.jpg', Source: 'file' } };
  const file = randomBytes(2000);
  const cases: Array<{
    name: string;
    status: number;
    code: string;
    event: () => Promise<EventInput>;
    message?: RegExp;
  }> = [
    {
      name: 'not multipart',
      status: 415,
      code: 'UnsupportedMediaType',
      event: async () => ({
        method: 'POST',
        path: '/v1/images',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
    },
    {
      name: 'no content type',
      status: 415,
      code: 'UnsupportedMediaType',
      event: async () => ({ method: 'POST', path: '/v1/images', body: Buffer.from('x') }),
    },
    {
      name: 'missing boundary',
      status: 400,
      code: 'MissingBoundary',
      event: async () => {
        const f = await imageForm(goodRequest, file);
        return { method: 'POST', path: '/v1/images', headers: { 'Content-Type': 'multipart/form-data' }, body: f.body };
      },
    },
    {
      name: 'invalid boundary',
      status: 400,
      code: 'InvalidBoundary',
      event: async () => ({
        method: 'POST',
        path: '/v1/images',
        headers: { 'Content-Type': `multipart/form-data; boundary=${'x'.repeat(80)}` },
        body: Buffer.from('--'),
      }),
    },
    {
      name: 'boundary not in body',
      status: 400,
      code: 'TruncatedMultipart',
      event: async () => {
        const f = await imageForm(goodRequest, file);
        return {
          method: 'POST',
          path: '/v1/images',
          headers: { 'Content-Type': 'multipart/form-data; boundary=nothere' },
          body: f.body,
        };
      },
    },
    {
      name: 'truncated body',
      status: 400,
      code: 'TruncatedMultipart',
      event: async () => {
        const f = await imageForm(goodRequest, file);
        return post('/v1/images', { ...f, body: f.body.subarray(0, f.body.length - 200) });
      },
    },
    {
      name: 'malformed part header',
      status: 400,
      code: 'MalformedPartHeader',
      event: async () => ({
        method: 'POST',
        path: '/v1/images',
        headers: { 'Content-Type': 'multipart/form-data; boundary=b' },
        body: Buffer.from('--b\r\nContent-Disposition form-data name\r\n\u0000\u0001broken\r\n--b--\r\n'),
      }),
    },
    {
      name: 'empty body',
      status: 400,
      code: 'MissingBody',
      event: async () => ({
        method: 'POST',
        path: '/v1/images',
        headers: { 'Content-Type': 'multipart/form-data; boundary=b' },
      }),
    },
    {
      name: 'missing Request',
      status: 400,
      code: 'MissingRequest',
      event: async () => post('/v1/images', await encodeForm([['ImageFile', file, 'a.jpg']])),
    },
    {
      name: 'Request not JSON',
      status: 400,
      code: 'InvalidRequestJson',
      event: async () => post('/v1/images', await imageForm('{"TaskID": ', file)),
    },
    {
      name: 'Request not an object',
      status: 400,
      code: 'InvalidRequest',
      event: async () => post('/v1/images', await imageForm('[1,2]', file)),
    },
    {
      name: 'missing TaskID',
      status: 400,
      code: 'MissingTaskID',
      event: async () => post('/v1/images', await imageForm({ Image: { Name: 'a', Source: 'file' } }, file)),
    },
    {
      name: 'TaskID not a string',
      status: 400,
      code: 'InvalidTaskID',
      event: async () =>
        post('/v1/images', await imageForm({ TaskID: 42, Image: { Name: 'a', Source: 'file' } }, file)),
    },
    {
      name: 'missing Image object',
      status: 400,
      code: 'MissingImage',
      event: async () => post('/v1/images', await imageForm({ TaskID: 't' }, file)),
    },
    {
      name: 'missing Video object',
      status: 400,
      code: 'MissingVideo',
      event: async () =>
        post(
          '/v1/videos',
          await encodeForm([
            ['VideoFile', file, 'v.mp4'],
            ['Request', JSON.stringify({ TaskID: 't', Image: { Name: 'a', Source: 'file' } })],
          ]),
        ),
    },
    {
      name: 'missing Name',
      status: 400,
      code: 'MissingName',
      event: async () =>
        post('/v1/images', await imageForm({ TaskID: 't', Image: { Name: ' ', Source: 'file' } }, file)),
    },
    {
      name: 'Source not url|file',
      status: 400,
      code: 'InvalidSource',
      event: async () => post('/v1/images', await imageForm({ TaskID: 't', Image: { Name: 'a', Source: 's3' } }, file)),
    },
    {
      name: 'Url missing',
      status: 400,
      code: 'MissingUrl',
      event: async () => post('/v1/images', await imageForm({ TaskID: 't', Image: { Name: 'a', Source: 'url' } })),
    },
    {
      name: 'Url invalid',
      status: 400,
      code: 'InvalidUrl',
      event: async () =>
        post('/v1/images', await imageForm({ TaskID: 't', Image: { Name: 'a', Source: 'url', Url: 'ftp://x/y' } })),
    },
    {
      name: 'AlgoParamConf not an object',
      status: 400,
      code: 'InvalidAlgoParamConf',
      event: async () => post('/v1/images', await imageForm({ ...goodRequest, AlgoParamConf: 'x' }, file)),
    },
    {
      name: 'file missing for Source=file',
      status: 400,
      code: 'MissingFile',
      event: async () => post('/v1/images', await imageForm(goodRequest)),
    },
    {
      name: 'file present for Source=url',
      status: 400,
      code: 'UnexpectedFile',
      event: async () =>
        post(
          '/v1/images',
          await imageForm({ TaskID: 't', Image: { Name: 'a', Source: 'url', Url: 'https://example.com/a.jpg' } }, file),
        ),
    },
    {
      name: 'VideoFile on the image route',
      status: 400,
      code: 'WrongFilePart',
      event: async () => post('/v1/images', await imageForm(goodRequest, file, 'VideoFile')),
    },
    {
      name: 'unknown file field',
      status: 400,
      code: 'UnknownFilePart',
      event: async () => post('/v1/images', await imageForm(goodRequest, file, 'file')),
    },
    {
      name: 'ImageFile as a text field',
      status: 400,
      code: 'FileNotAFile',
      event: async () =>
        post(
          '/v1/images',
          await encodeForm([
            ['ImageFile', 'not a file'],
            ['Request', JSON.stringify(goodRequest)],
          ]),
        ),
    },
    {
      name: 'two files',
      status: 400,
      code: 'TooManyFiles',
      event: async () =>
        post(
          '/v1/images',
          await encodeForm([
            ['ImageFile', file, 'a.jpg'],
            ['ImageFile', file, 'b.jpg'],
            ['Request', JSON.stringify(goodRequest)],
          ]),
        ),
    },
    {
      name: 'empty file',
      status: 400,
      code: 'EmptyFile',
      event: async () => post('/v1/images', await imageForm(goodRequest, Buffer.alloc(0))),
    },
    {
      name: 'two Request fields',
      status: 400,
      code: 'DuplicateRequest',
      event: async () =>
        post(
          '/v1/images',
          await encodeForm([
            ['Request', JSON.stringify(goodRequest)],
            ['Request', JSON.stringify(goodRequest)],
            ['ImageFile', file, 'a.jpg'],
          ]),
        ),
    },
    {
      name: 'body over DIRECT_MAX_BYTES',
      status: 413,
      code: 'PayloadTooLarge',
      message: /POST \/v1\/uploads/,
      event: async () => post('/v1/images', await imageForm(goodRequest, randomBytes(4_600_000))),
    },
    {
      name: 'unknown route',
      status: 404,
      code: 'RouteNotFound',
      event: async () => ({ method: 'POST', path: '/v2/images', body: 'x' }),
    },
    {
      name: 'callback route is not ours',
      status: 404,
      code: 'RouteNotFound',
      event: async () => ({ method: 'POST', path: '/callbacks/secret', body: 'x' }),
    },
    {
      // API Gateway never lets an undefined method through (404 RouteNotFound by gateway
      // response); an event that gets here anyway is answered the same way.
      name: 'wrong method',
      status: 404,
      code: 'RouteNotFound',
      event: async () => ({ method: 'GET', path: '/v1/images' }),
    },
    {
      name: 'resource known, method not defined on it',
      status: 404,
      code: 'RouteNotFound',
      event: async () => ({ method: 'GET', path: '/v1/images', resource: '/v1/images' }),
    },
    {
      name: 'vendor route without Action',
      status: 400,
      code: 'MissingAction',
      event: async () => post('/', await imageForm(goodRequest, file)),
    },
    {
      name: 'vendor route, unknown Action',
      status: 404,
      code: 'InvalidActionOrVersion',
      event: async () =>
        post('/', await imageForm(goodRequest, file), { query: { Action: 'DeleteEverything', Version: VERSION } }),
    },
    {
      name: 'vendor route, wrong Version',
      status: 400,
      code: 'InvalidVersion',
      event: async () =>
        post('/', await imageForm(goodRequest, file), {
          query: { Action: 'AddAsyncTaskImageData', Version: '2020-01-01' },
        }),
    },
    {
      name: 'vendor route, missing Version',
      status: 400,
      code: 'InvalidVersion',
      event: async () => post('/', await imageForm(goodRequest, file), { query: { Action: 'AddAsyncTaskImageData' } }),
    },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      const res = await call(await c.event());
      expect(res.statusCode).toBe(c.status);
      expect(res.json.ResponseMetadata.Error.Code).toBe(c.code);
      expect(res.json.ResponseMetadata.Error.Message).toEqual(expect.any(String));
      expect(res.json.ResponseMetadata.Error.Message.length).toBeGreaterThan(10);
      expect(res.json.ResponseMetadata.RequestId).toEqual(expect.any(String));
      if (c.message) expect(res.json.ResponseMetadata.Error.Message).toMatch(c.message);
      // Nothing reached IVA.
      expect(sandbox.requests).toHaveLength(0);
    });
  }

  it('an undefined method is a 404 RouteNotFound, as API Gateway answers it (no 405 reaches a client)', async () => {
    const res = await call({ method: 'DELETE', path: '/v1/submissions/x' });
    expect(res.statusCode).toBe(404);
    expect(res.json.ResponseMetadata.Error.Code).toBe('RouteNotFound');
  });

  it('no body shape produces a 5xx: random truncations, bit flips and garbage', async () => {
    const form = await imageForm(goodRequest, randomBytes(3000));
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const statuses = new Set<number>();
    for (let i = 0; i < 150; i++) {
      let body: Buffer;
      const mode = i % 3;
      if (mode === 0) body = form.body.subarray(0, rand(form.body.length));
      else if (mode === 1) {
        body = Buffer.from(form.body);
        for (let j = 0; j < 1 + rand(8); j++) body[rand(Math.min(body.length, 400))] = rand(256);
      } else body = randomBytes(rand(500));
      const contentType =
        i % 10 === 9 ? `multipart/form-data; boundary="${randomBytes(4).toString('latin1')}"` : form.contentType;
      const res = await call({ method: 'POST', path: '/v1/images', headers: { 'content-type': contentType }, body });
      statuses.add(res.statusCode);
      expect(res.statusCode, `case ${i}`).toBeLessThan(500);
      if (res.statusCode >= 400) expect(res.json.ResponseMetadata.Error.Code).toEqual(expect.any(String));
    }
    expect([...statuses].some((s) => s >= 400)).toBe(true);
  });
});

describe('IVA failures', () => {
  const request = { TaskID: 'task-fail', Image: { Name: 'x.jpg', Source: 'file' } };

  describe('the answer lost after sending: uncertain, announced, never "retry"', () => {
    const cases = [
      {
        label: 'drop after accept',
        fault: { drop: true as const, afterAccept: true },
        code: 'ConnectionLostAfterSend',
        atIva: 1,
      },
      { label: 'drop before accept', fault: { drop: true as const }, code: 'ConnectionLostAfterSend', atIva: 0 },
      {
        label: 'an answer slower than the per-attempt timeout',
        fault: { delayMs: 900 },
        code: 'TimeoutAfterSend',
        atIva: 1,
      },
    ];
    for (const c of cases) {
      it(`${c.label} → 202 SubmissionUncertain, ledger uncertain with cause and times, one event, IVA asked once`, async () => {
        const events: unknown[] = [];
        const slowClient = createIvaClient({
          endpoint: sandbox.url,
          credentials: DEFAULT_SANDBOX_CREDENTIALS,
          timeoutMs: 300,
          minThroughputBytesPerSecond: 1e12,
          baseDelayMs: 5,
          maxDelayMs: 40,
        });
        try {
          const h = createHandler(
            deps({ iva: slowClient, events: { publishSubmissionUncertain: async (d) => void events.push(d) } }),
          );
          sandbox.injectFaults(c.fault);
          const res = await call(post('/v1/images', await imageForm(request, randomBytes(100))), 30_000, h);
          expect(res.statusCode, res.body).toBe(202);
          const id = header(res, 'x-iva-bridge-submission-id') ?? '';
          expect(res.json).toMatchObject({
            SubmissionId: id,
            ResponseMetadata: { Error: { Code: 'SubmissionUncertain' } },
          });
          expect(res.json.ResponseMetadata.Error.Message).toContain(`POST /v1/submissions/${id}/resolve`);
          expect(header(res, 'location')).toBe(`/v1/submissions/${id}`);
          expect(header(res, 'retry-after')).toBeUndefined();
          const record = await ledger.get(id);
          expect(record).toMatchObject({ status: 'uncertain', uncertain: { code: c.code }, error: { code: c.code } });
          expect(Date.parse(record?.uncertain?.failedAt ?? '')).toBeGreaterThanOrEqual(
            Date.parse(record?.uncertain?.sentAt ?? ''),
          );
          // The code has its own field; the message says what happened, once.
          expect(record?.uncertain?.message).not.toContain(c.code);
          expect(record?.error?.message).not.toContain(c.code);
          expect(events).toEqual([
            expect.objectContaining({ submissionId: id, source: 'api', taskId: 'task-fail', code: c.code }),
          ]);
          expect(counted).toContain('Uncertain');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          expect(sandbox.requests).toHaveLength(1);
          expect(sandbox.submissions).toHaveLength(c.atIva);
        } finally {
          slowClient.close?.();
        }
      });
    }
  });

  it('InvalidParameter passes through as 400 with IVA code, message and RequestId; ledger failed', async () => {
    sandbox.injectFaults({ code: 'InvalidParameter', httpStatus: 400, message: 'The image format is not supported.' });
    const res = await call(post('/v1/images', await imageForm(request, randomBytes(100))));
    expect(res.statusCode, res.body).toBe(400);
    const ivaRequestId = sandbox.requests[0]!.requestId;
    expect(res.json.ResponseMetadata).toMatchObject({
      RequestId: ivaRequestId,
      Error: { Code: 'InvalidParameter', Message: 'The image format is not supported.' },
    });
    const id = header(res, 'x-iva-bridge-submission-id')!;
    expect(await ledger.get(id)).toMatchObject({
      status: 'failed',
      error: { code: 'InvalidParameter', message: 'The image format is not supported.', requestId: ivaRequestId },
    });
    // The dashboard's failures by code.
    expect(counted).toContain('FailedByCode{Code=InvalidParameter}');
  });

  it('FlowLimitExceeded that outlasts the time budget → 503 with Retry-After; ledger failed with the retryable code (nothing redelivers it)', async () => {
    sandbox.injectFaults({ count: 10_000, code: 'FlowLimitExceeded', httpStatus: 429 });
    const started = Date.now();
    // 4 s left in the Lambda, 1.5 s margin: about 2.5 s for IVA, so retries start while
    // at least 1 s is left (an attempt cut by the budget after sending would be uncertain).
    const res = await call(post('/v1/images', await imageForm(request, randomBytes(100))), 4_000);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(res.statusCode, res.body).toBe(503);
    expect(Number(header(res, 'retry-after'))).toBeGreaterThan(0);
    expect(res.json.ResponseMetadata.Error.Code).toBe('FlowLimitExceeded');
    expect(sandbox.requests.length).toBeGreaterThan(1);
    const id = header(res, 'x-iva-bridge-submission-id')!;
    expect(await ledger.get(id)).toMatchObject({ status: 'failed', error: { code: 'FlowLimitExceeded' } });
    expect(counted).toContain('Retried');
  });

  it('the time budget counts from when API Gateway received the request, not from handler entry', async () => {
    // Received 27.5 s ago (a slow upload and a cold start): whatever Lambda still allows,
    // API Gateway gives up at 29 s, so IVA must not be called at all.
    const res = await call(
      { ...post('/v1/images', await imageForm(request, randomBytes(100))), requestTimeEpoch: Date.now() - 27_500 },
      29_000,
    );
    expect(res.statusCode, res.body).toBe(503);
    expect(res.json.ResponseMetadata.Error.Code).toBe('UpstreamUnavailable');
    expect(sandbox.requests).toHaveLength(0);
    // The same request received just now goes through.
    const fresh = await call(post('/v1/images', await imageForm(request, randomBytes(100))), 29_000);
    expect(fresh.statusCode, fresh.body).toBe(200);
  });

  it('IVA refusing OUR keys is never the client fault: refresh the secret, then succeed', async () => {
    currentKeys = {
      accessKeyId: DEFAULT_SANDBOX_CREDENTIALS.accessKeyId,
      secretAccessKey: 'stale-secret-before-rotation',
    };
    refreshTo = DEFAULT_SANDBOX_CREDENTIALS;
    const res = await call(post('/v1/images', await imageForm(request, randomBytes(100))));
    expect(res.statusCode, res.body).toBe(200);
    expect(refreshes).toBe(1);
    expect(sandbox.requests.map((r) => r.code)).toEqual(['SignatureDoesNotMatch', undefined]);
  });

  it('keys still refused after a refresh → 502 UpstreamCredentialsRejected, secret never echoed', async () => {
    currentKeys = refreshTo = { accessKeyId: 'AKLTUNKNOWN', secretAccessKey: 'wrong-secret-value' };
    const res = await call(post('/v1/images', await imageForm(request, randomBytes(100))));
    expect(res.statusCode, res.body).toBe(502);
    expect(res.json.ResponseMetadata.Error.Code).toBe('UpstreamCredentialsRejected');
    expect(res.body).not.toContain('wrong-secret-value');
    expect(JSON.stringify(logLines)).not.toContain('wrong-secret-value');
    expect(refreshes).toBe(1);
  });
});

describe('Idempotency-Key: a client retry returns the first answer, never a second submission', () => {
  let store: IdempotencyStore;
  let withKey: ReturnType<typeof createHandler>;
  beforeAll(() => {
    const doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: dynalite.endpoint, region: dynalite.region, credentials: dynalite.credentials }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
    store = createDynamoIdempotencyStore({ tableName: 'ledger', client: doc });
    withKey = createHandler(deps({ idempotency: store }));
  });
  const request = (task: string) => ({ TaskID: task, Image: { Name: 'k.jpg', Source: 'file' } });
  const keyed = async (key: string, task: string, file: Buffer, path = '/v1/images') =>
    post(path, await imageForm(request(task), file), { headers: { 'Idempotency-Key': key } });

  it('same key, same request (a new multipart encoding): the first answer again, IVA called once', async () => {
    const key = `k-${randomUUID()}`;
    const file = randomBytes(5_000);
    const first = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(first.statusCode, first.body).toBe(200);
    const again = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(again.statusCode).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(header(again, 'x-iva-bridge-submission-id')).toBe(header(first, 'x-iva-bridge-submission-id'));
    expect(header(again, 'idempotent-replayed')).toBe('true');
    expect(header(first, 'idempotent-replayed')).toBeUndefined();
    expect(sandbox.submissions).toHaveLength(1);
  });

  it('same key, another request (other file, other fields, other route): 422 IdempotencyKeyReuse, IVA not called', async () => {
    const key = `k-${randomUUID()}`;
    const file = randomBytes(5_000);
    expect((await call(await keyed(key, 'task-idem', file), 30_000, withKey)).statusCode).toBe(200);
    for (const other of [
      await keyed(key, 'task-idem', randomBytes(5_000)),
      await keyed(key, 'task-other', file),
      post(
        '/v1/videos',
        await imageForm({ TaskID: 'task-idem', Video: { Name: 'k.jpg', Source: 'file' } }, file, 'VideoFile'),
        { headers: { 'Idempotency-Key': key } },
      ),
    ]) {
      const res = await call(other, 30_000, withKey);
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json.ResponseMetadata.Error.Code).toBe('IdempotencyKeyReuse');
    }
    expect(sandbox.submissions).toHaveLength(1);
  });

  it('while the first request is still at IVA: 409 IdempotencyKeyInFlight with Retry-After, then the replay', async () => {
    const key = `k-${randomUUID()}`;
    const file = randomBytes(5_000);
    sandbox.injectFaults({ delayMs: 1_500 });
    const first = call(await keyed(key, 'task-idem', file), 30_000, withKey);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const during = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(during.statusCode, during.body).toBe(409);
    expect(during.json.ResponseMetadata.Error.Code).toBe('IdempotencyKeyInFlight');
    expect(Number(header(during, 'retry-after'))).toBeGreaterThan(0);
    const done = await first;
    expect(done.statusCode).toBe(200);
    const after = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(after.json).toEqual(done.json);
    expect(sandbox.submissions).toHaveLength(1);
  });

  it('an uncertain answer is replayed too (202, same SubmissionId): a retry never resends it', async () => {
    const key = `k-${randomUUID()}`;
    const file = randomBytes(5_000);
    sandbox.injectFaults({ drop: true, afterAccept: true });
    const first = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(first.statusCode).toBe(202);
    const again = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(again.statusCode).toBe(202);
    expect(again.json.SubmissionId).toBe(first.json.SubmissionId);
    expect(sandbox.requests).toHaveLength(1);
  });

  it('a 503 (IVA said "not now" until the budget ran out) forgets the key: the retry with it runs', async () => {
    const key = `k-${randomUUID()}`;
    const file = randomBytes(5_000);
    sandbox.injectFaults({ count: 10_000, code: 'FlowLimitExceeded', httpStatus: 429 });
    const first = await call(await keyed(key, 'task-idem', file), 3_000, withKey);
    expect(first.statusCode, first.body).toBe(503);
    sandbox.reset();
    const retry = await call(await keyed(key, 'task-idem', file), 30_000, withKey);
    expect(retry.statusCode, retry.body).toBe(200);
    expect(header(retry, 'idempotent-replayed')).toBeUndefined();
    expect(sandbox.submissions).toHaveLength(1);
  });

  it('POST /v1/uploads: same key → the same ticket; a bad key → 400 InvalidIdempotencyKey', async () => {
    const key = `k-${randomUUID()}`;
    const body = { TaskID: 'task-idem', Kind: 'image', Name: 'u.jpg', ContentType: 'image/jpeg', Size: 10 };
    const upload = (k: string, b: unknown) => ({
      method: 'POST',
      path: '/v1/uploads',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': k },
      body: JSON.stringify(b),
    });
    const first = await call(upload(key, body), 30_000, withKey);
    expect(first.statusCode, first.body).toBe(200);
    const again = await call(upload(key, { ...body }), 30_000, withKey);
    expect(again.json).toEqual(first.json);
    const other = await call(upload(key, { ...body, Size: 11 }), 30_000, withKey);
    expect(other.statusCode).toBe(422);
    for (const bad of ['', 'x'.repeat(256), 'caf\u00e9']) {
      const res = await call(upload(bad, body), 30_000, withKey);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.json.ResponseMetadata.Error.Code).toBe('InvalidIdempotencyKey');
    }
  });
});

describe('POST /v1/uploads: presigned PUT with the IVA fields bound', () => {
  const uploadEvent = (body: unknown, contentType = 'application/json'): EventInput => ({
    method: 'POST',
    path: '/v1/uploads',
    headers: { 'Content-Type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  it('PUT with exactly the returned headers stores the object with its metadata; ledger reserved', async () => {
    const data = randomBytes(200_000);
    const algo = { threshold: 0.8, labels: ['猫'] };
    const res = await call(
      uploadEvent({
        TaskID: 'task-up',
        Kind: 'video',
        Name: 'été/clip 1.mp4',
        Desc: 'vidéo de test',
        AlgoParamConf: algo,
        ContentType: 'video/mp4',
        Size: data.length,
      }),
    );
    expect(res.statusCode).toBe(200);
    const ticket = res.json;
    expect(ticket).toMatchObject({ Method: 'PUT', Bucket: BUCKET });
    expect(ticket.SubmissionId).toMatch(/^upl_/);
    expect(ticket.Key).toBe(`incoming/task-up/${ticket.SubmissionId}/été_clip 1.mp4`);
    expect(ticket.Url).not.toMatch(/checksum/i);
    expect(new URL(ticket.Url).searchParams.get('X-Amz-SignedHeaders')).toContain('content-type');
    expect(new URL(ticket.Url).searchParams.get('X-Amz-SignedHeaders')).toContain('x-amz-meta-iva-task-id');
    expect(Date.parse(ticket.ExpiresAt) - Date.now()).toBeGreaterThan(800_000);
    for (const value of Object.values(ticket.Headers as Record<string, string>))
      expect(value).toMatch(/^[\x20-\x7e]*$/);

    const put = await fetch(ticket.Url, { method: 'PUT', headers: ticket.Headers, body: data });
    expect(put.status).toBe(200);

    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: ticket.Key }));
    expect(head.ContentType).toBe('video/mp4');
    const meta = Object.fromEntries(Object.entries(head.Metadata ?? {}).map(([k, v]) => [k, decodeMetadataValue(v)]));
    expect(meta).toEqual({
      'iva-task-id': 'task-up',
      'iva-kind': 'video',
      'iva-name': 'été/clip 1.mp4',
      'iva-desc': 'vidéo de test',
      'iva-algo-param-conf': JSON.stringify(algo),
      'iva-submission-id': ticket.SubmissionId,
    });
    const stored = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: ticket.Key }));
    expect(Buffer.compare(Buffer.from(await stored.Body!.transformToByteArray()), data)).toBe(0);

    expect(await ledger.get(ticket.SubmissionId)).toMatchObject({
      status: 'pending',
      source: 'upload',
      taskId: 'task-up',
      kind: 'video',
      object: { bucket: BUCKET, key: ticket.Key },
    });
  });

  const bad: Array<[string, unknown, number, string, string?]> = [
    ['missing TaskID', { Kind: 'image', Name: 'a.jpg', Size: 10 }, 400, 'MissingTaskID'],
    ['bad kind', { TaskID: 't', Kind: 'audio', Name: 'a', Size: 10 }, 400, 'InvalidKind'],
    ['missing Name', { TaskID: 't', Kind: 'image', Size: 10 }, 400, 'MissingName'],
    ['bad Size', { TaskID: 't', Kind: 'image', Name: 'a', Size: -1 }, 400, 'InvalidSize'],
    ['image over 50 MB', { TaskID: 't', Kind: 'image', Name: 'a', Size: 50 * 1024 * 1024 + 1 }, 413, 'ImageTooLarge'],
    [
      'video over 5 GiB in one PUT',
      { TaskID: 't', Kind: 'video', Name: 'a', Size: 5 * 1024 ** 3 + 1, Multipart: false },
      413,
      'FileTooLarge',
    ],
    ['video over 5 TiB', { TaskID: 't', Kind: 'video', Name: 'a', Size: 5 * 1024 ** 4 + 1 }, 413, 'FileTooLarge'],
    [
      'AlgoParamConf not an object',
      { TaskID: 't', Kind: 'image', Name: 'a', Size: 1, AlgoParamConf: [1] },
      400,
      'InvalidAlgoParamConf',
    ],
    [
      'bad ContentType',
      { TaskID: 't', Kind: 'image', Name: 'a', Size: 1, ContentType: 'jpeg\r\nx: y' },
      400,
      'InvalidContentTypeField',
    ],
    [
      'metadata over 2 KB',
      { TaskID: 't', Kind: 'image', Name: 'a', Size: 1, Desc: 'd'.repeat(3000) },
      400,
      'MetadataTooLarge',
    ],
    ['not JSON', '{"TaskID":', 400, 'InvalidJson'],
    ['multipart instead of JSON', 'x', 415, 'UnsupportedMediaType', 'multipart/form-data; boundary=x'],
  ];
  for (const [name, body, status, code, contentType] of bad) {
    it(`${name} → ${status} ${code}`, async () => {
      const res = await call(uploadEvent(body, contentType));
      expect(res.statusCode).toBe(status);
      expect(res.json.ResponseMetadata.Error.Code).toBe(code);
    });
  }
});

describe('status', () => {
  it('behind a custom domain base path: routes on resource and path parameters, not on path', async () => {
    const taskId = `task-base-${randomBytes(4).toString('hex')}`;
    // A base path mapping `iva` puts its prefix in `path` only; resource and parameters are the API's own.
    const sub = await call(
      post(
        '/v1/images',
        await imageForm({ TaskID: taskId, Image: { Name: 'b.jpg', Source: 'file' } }, randomBytes(64)),
        {
          path: '/iva/v1/images',
          resource: '/v1/images',
        },
      ),
    );
    expect(sub.statusCode, sub.body).toBe(200);
    const id = sub.json.Result.SubmissionId as string;
    const one = await call({
      method: 'GET',
      path: `/iva/v1/submissions/${id}`,
      resource: '/v1/submissions/{id}',
      pathParameters: { id },
    });
    expect(one.statusCode, one.body).toBe(200);
    expect(one.json).toMatchObject({ SubmissionId: id, TaskID: taskId });
    const list = await call({
      method: 'GET',
      path: `/iva/v1/tasks/${encodeURIComponent(taskId)}/submissions`,
      resource: '/v1/tasks/{taskId}/submissions',
      pathParameters: { taskId },
    });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json.Items.map((i: { SubmissionId: string }) => i.SubmissionId)).toEqual([id]);
    const vendor = await call(
      post('/', await imageForm({ TaskID: taskId, Image: { Name: 'c.jpg', Source: 'file' } }, randomBytes(64)), {
        path: '/iva',
        resource: '/',
        query: { Action: 'AddAsyncTaskImageData', Version: VERSION },
      }),
    );
    expect(vendor.statusCode, vendor.body).toBe(200);
  });

  it('GET /v1/submissions/{id} and the paginated task listing', async () => {
    const taskId = `task-list-${randomBytes(4).toString('hex')}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(
        post(
          '/v1/images',
          await imageForm({ TaskID: taskId, Image: { Name: `n${i}.jpg`, Source: 'file' } }, randomBytes(64)),
        ),
      );
      expect(res.statusCode).toBe(200);
      ids.push(res.json.Result.SubmissionId);
    }
    const one = await call({
      method: 'GET',
      path: `/v1/submissions/${ids[0]}`,
      resource: '/v1/submissions/{id}',
      pathParameters: { id: ids[0]! },
    });
    expect(one.statusCode).toBe(200);
    expect(one.json).toMatchObject({
      SubmissionId: ids[0],
      Status: 'submitted',
      Source: 'api',
      TaskID: taskId,
      Kind: 'image',
      Name: 'n0.jpg',
      ImageID: sandbox.submissions[0]!.dataId,
      RequestId: sandbox.submissions[0]!.requestId,
      Attempts: 1,
    });
    expect(one.json).not.toHaveProperty('leaseUntil');
    expect(one.json).not.toHaveProperty('Results');

    // Every stored callback is listed, oldest first; the status keeps the first final.
    const dataId = sandbox.submissions[0]!.dataId;
    const results = [
      {
        status: 'completed' as const,
        rawStatus: 'Success',
        location: 's3://b/r/1',
        receivedAt: '2026-12-01T00:00:01.000Z',
      },
      {
        status: 'progress' as const,
        rawStatus: 'running',
        location: 's3://b/r/2',
        receivedAt: '2026-12-01T00:00:02.000Z',
      },
    ];
    for (const r of results) await ledger.recordResult({ dataId, ...r });
    const withResults = await call({
      method: 'GET',
      path: `/v1/submissions/${ids[0]}`,
      resource: '/v1/submissions/{id}',
      pathParameters: { id: ids[0]! },
    });
    expect(withResults.json).toMatchObject({
      Status: 'completed',
      Result: { Status: 'completed', Location: 's3://b/r/1' },
      Results: [
        { Status: 'completed', RawStatus: 'Success', Location: 's3://b/r/1', ReceivedAt: '2026-12-01T00:00:01.000Z' },
        { Status: 'progress', RawStatus: 'running', Location: 's3://b/r/2', ReceivedAt: '2026-12-01T00:00:02.000Z' },
      ],
    });

    const page1 = await call({ method: 'GET', path: `/v1/tasks/${taskId}/submissions`, query: { limit: '2' } });
    expect(page1.statusCode).toBe(200);
    expect(page1.json.Items).toHaveLength(2);
    expect(page1.json.NextCursor).toEqual(expect.any(String));
    const page2 = await call({
      method: 'GET',
      path: `/v1/tasks/${taskId}/submissions`,
      query: { limit: '2', cursor: page1.json.NextCursor },
    });
    expect(page2.json.Items).toHaveLength(1);
    expect(page2.json.NextCursor).toBeUndefined();
    const seen = [...page1.json.Items, ...page2.json.Items].map((r: { SubmissionId: string }) => r.SubmissionId).sort();
    expect(seen).toEqual([...ids].sort());
  });

  it('unknown id → 404 SubmissionNotFound; bad cursor → 400 InvalidCursor; bad limit → 400 InvalidLimit', async () => {
    const missing = await call({ method: 'GET', path: '/v1/submissions/api_nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json.ResponseMetadata.Error.Code).toBe('SubmissionNotFound');
    const cursor = await call({ method: 'GET', path: '/v1/tasks/t/submissions', query: { cursor: 'not-a-cursor' } });
    expect(cursor.statusCode).toBe(400);
    expect(cursor.json.ResponseMetadata.Error.Code).toBe('InvalidCursor');
    for (const limit of ['0', 'abc', '101', '-1', '1.5']) {
      const res = await call({ method: 'GET', path: '/v1/tasks/t/submissions', query: { limit } });
      expect(res.statusCode, limit).toBe(400);
      expect(res.json.ResponseMetadata.Error.Code).toBe('InvalidLimit');
    }
  });
});
