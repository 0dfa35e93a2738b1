/**
 * Malformed shapes on every route of the direct-submit function: parts with no name,
 * nesting thousands of levels deep, huge values, forged cursors. The rule under test:
 * every malformed shape answers a 4xx with a stable code before any ledger write, or
 * ends its record `failed` with that code — never a 5xx, never a record left `pending`.
 * Real servers: dynalite (ledger), the IVA sandbox, s3rver (upload URLs).
 */
import { randomBytes } from 'node:crypto';
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  // The handler's own logger stays quiet (the fault case logs an error by design).
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});
import { createHandler, type DirectSubmitDeps } from '../../../functions/direct-submit/handler';
import { createIvaClient } from '../../../lib/iva/index';
import type { IvaClient } from '../../../lib/iva/types';
import type { Ledger } from '../../../lib/ledger/index';
import { logger } from '../../../lib/observability';
import { createS3Client } from '../../../lib/storage/s3-client';
import { DEFAULT_SANDBOX_CREDENTIALS, startIvaSandbox, type IvaSandbox } from '../../../local/iva-sandbox/server';
import { startDynalite, startS3rver, type LocalDynalite, type LocalS3 } from '../../../local/servers/index';
import { type EventInput, lambdaContext, restEvent } from './events';
import { documentClient, ledgerOn, s3rverClient } from '../../support/servers';

const BUCKET = 'iva-bridge-malformed';
let dynalite: LocalDynalite;
let sandbox: IvaSandbox;
let s3local: LocalS3;
let doc: DynamoDBDocumentClient;
let ledger: Ledger;
let iva: IvaClient;
let handler: ReturnType<typeof createHandler>;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  [dynalite, sandbox, s3local] = await Promise.all([
    startDynalite(),
    startIvaSandbox(),
    startS3rver({ buckets: [BUCKET] }),
  ]);
  doc = documentClient(dynalite);
  ledger = await ledgerOn(doc);
  iva = createIvaClient({ endpoint: sandbox.url, credentials: DEFAULT_SANDBOX_CREDENTIALS, baseDelayMs: 5 });
  const s3 = s3rverClient(s3local);
  const deps: DirectSubmitDeps = {
    ledger,
    iva,
    s3,
    bucket: BUCKET,
    config: { directMaxBytes: 4_500_000, uploadUrlTtlSeconds: 900, ivaService: 'iva', ivaRegion: 'cn-north-1' },
  };
  handler = createHandler(() => deps);
});

afterAll(async () => {
  iva?.close?.();
  await Promise.all([dynalite?.close(), sandbox?.close(), s3local?.close()]);
});

async function call(input: EventInput): Promise<APIGatewayProxyResult & { code?: string }> {
  const result = (await handler(restEvent(input), lambdaContext(30_000))) as APIGatewayProxyResult;
  let code: string | undefined;
  try {
    code = JSON.parse(result.body)?.ResponseMetadata?.Error?.Code;
  } catch {
    code = undefined;
  }
  return { ...result, code };
}

/** Every submission record in the ledger table. */
async function allRecords(): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(new ScanCommand({ TableName: 'ledger', ExclusiveStartKey: start }));
    items.push(...(out.Items ?? []).filter((item) => item.sk === 'SUB'));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

const BOUNDARY = 'xYzBoundary42';
const CT = `multipart/form-data; boundary=${BOUNDARY}`;

/** A multipart body written by hand: each part is its raw header lines and its content. */
function rawForm(parts: Array<{ disposition: string; type?: string; content: string | Buffer }>): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${BOUNDARY}\r\nContent-Disposition: ${part.disposition}\r\n`;
    if (part.type) head += `Content-Type: ${part.type}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), Buffer.from(part.content), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const requestPart = (json: string) => ({ disposition: 'form-data; name="Request"', content: json });
const filePart = (field = 'ImageFile', content: Buffer = randomBytes(64)) => ({
  disposition: `form-data; name="${field}"; filename="a.jpg"`,
  type: 'image/jpeg',
  content,
});

/** `{"a":{"a":…{"leaf":1}…}}` as text, `depth` objects deep (JSON.stringify itself overflows on it). */
const deepObjectJson = (depth: number) => `${'{"a":'.repeat(depth - 1)}{"leaf":1}${'}'.repeat(depth - 1)}`;
const deepArrayJson = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

const SUBMIT_ROUTES: Array<{ name: string; path: string; query?: Record<string, string>; kind: 'image' | 'video' }> = [
  { name: 'POST /v1/images', path: '/v1/images', kind: 'image' },
  { name: 'POST /v1/videos', path: '/v1/videos', kind: 'video' },
  {
    name: 'vendor route',
    path: '/',
    query: { Action: 'AddAsyncTaskImageData', Version: '2022-05-13' },
    kind: 'image',
  },
];

function submit(route: (typeof SUBMIT_ROUTES)[number], body: Buffer, contentType = CT): EventInput {
  return {
    method: 'POST',
    path: route.path,
    headers: { 'content-type': contentType },
    body,
    ...(route.query ? { query: route.query } : {}),
  };
}

function goodRequest(kind: 'image' | 'video', taskId: string, extra: string = ''): string {
  const key = kind === 'image' ? 'Image' : 'Video';
  return `{"TaskID":${JSON.stringify(taskId)},"${key}":{"Name":"a.jpg","Source":"file"}${extra}}`;
}

describe('parts with no name', () => {
  for (const route of SUBMIT_ROUTES) {
    it(`${route.name}: a part with no name or name="" is 400 MissingPartName, nothing recorded`, async () => {
      const fileField = route.kind === 'image' ? 'ImageFile' : 'VideoFile';
      const taskId = `noname-${randomBytes(4).toString('hex')}`;
      const shapes = [
        [requestPart(goodRequest(route.kind, taskId)), filePart(fileField), { disposition: 'form-data', content: 'x' }],
        [
          requestPart(goodRequest(route.kind, taskId)),
          filePart(fileField),
          { disposition: 'form-data; name=""', content: 'x' },
        ],
        [requestPart(goodRequest(route.kind, taskId)), { disposition: 'form-data; filename="a.jpg"', content: 'x' }],
        [
          requestPart(goodRequest(route.kind, taskId)),
          { disposition: 'form-data; name=""; filename="a.jpg"', content: 'x' },
        ],
      ];
      for (const [i, parts] of shapes.entries()) {
        const res = await call(submit(route, rawForm(parts)));
        expect(res.statusCode, `shape ${i}: ${res.body.slice(0, 300)}`).toBe(400);
        expect(res.code, `shape ${i}`).toBe('MissingPartName');
      }
      expect((await ledger.listByTask(taskId)).items).toEqual([]);
    });
  }
});

describe('deeply nested values', () => {
  for (const route of SUBMIT_ROUTES) {
    it(`${route.name}: AlgoParamConf thousands of levels deep is 400 InvalidAlgoParamConf before any ledger write`, async () => {
      const taskId = `deep-${randomBytes(4).toString('hex')}`;
      const fileField = route.kind === 'image' ? 'ImageFile' : 'VideoFile';
      for (const deep of [deepObjectJson(5_000), `{"x":${deepArrayJson(5_000)}}`, deepObjectJson(40)]) {
        const body = rawForm([
          requestPart(goodRequest(route.kind, taskId, `,"AlgoParamConf":${deep}`)),
          filePart(fileField),
        ]);
        const res = await call(submit(route, body));
        expect(res.statusCode, res.body.slice(0, 300)).toBe(400);
        expect(res.code).toBe('InvalidAlgoParamConf');
      }
      expect((await ledger.listByTask(taskId)).items).toEqual([]);
      expect(sandbox.requests.filter((r) => JSON.stringify(r).includes(taskId))).toEqual([]);
    });
  }

  it('POST /v1/uploads: AlgoParamConf thousands of levels deep is 400 InvalidAlgoParamConf, nothing reserved', async () => {
    const taskId = `deep-up-${randomBytes(4).toString('hex')}`;
    const body = `{"TaskID":"${taskId}","Kind":"video","Name":"a.mp4","Size":10,"AlgoParamConf":${deepObjectJson(5_000)}}`;
    const res = await call({
      method: 'POST',
      path: '/v1/uploads',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(400);
    expect(res.code).toBe('InvalidAlgoParamConf');
    expect((await ledger.listByTask(taskId)).items).toEqual([]);
  });
});

describe('an unexpected fault after the record was begun', () => {
  it('ends the record failed InternalError (answered 500), never pending for ever', async () => {
    const taskId = `fault-${randomBytes(4).toString('hex')}`;
    const faulty = createHandler(() => ({
      ledger,
      // A bug or an unforeseen exception inside the submission, before anything was sent.
      iva: {
        submit: async () => {
          throw new TypeError('something unforeseen');
        },
      },
      s3: createS3Client({ endpoint: s3local.endpoint, region: 'us-east-1', forcePathStyle: true }),
      bucket: BUCKET,
      config: { directMaxBytes: 4_500_000, uploadUrlTtlSeconds: 900, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    }));
    const body = rawForm([requestPart(goodRequest('image', taskId)), filePart()]);
    const result = (await faulty(
      restEvent(submit(SUBMIT_ROUTES[0]!, body)),
      lambdaContext(30_000),
    )) as APIGatewayProxyResult;
    expect(result.statusCode).toBe(500);
    const records = (await ledger.listByTask(taskId)).items;
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: 'failed', error: { code: 'InternalError' } });
  });
});

describe('forged listing cursors', () => {
  it('a cursor with the right fields but over-long, foreign or mismatched values is 400 InvalidCursor', async () => {
    const taskId = 'cursor-task';
    const cursor = (key: Record<string, unknown>) => Buffer.from(JSON.stringify(key)).toString('base64url');
    const id = 'api_x';
    const good = { pk: `SUB#${id}`, sk: 'SUB', gsi1pk: `TASK#${taskId}`, gsi1sk: `2026-01-01T00:00:00.000Z#${id}` };
    const forged = [
      { ...good, gsi1sk: `2026-01-01T00:00:00.000Z#${'x'.repeat(5_000)}` },
      { ...good, pk: `SUB#${'y'.repeat(5_000)}` },
      { ...good, sk: 'S'.repeat(5_000) },
      { ...good, sk: 'DATA' },
      { ...good, pk: 'DATA#abc' },
      { ...good, pk: 'SUB#other' },
    ];
    for (const [i, key] of forged.entries()) {
      const res = await call({
        method: 'GET',
        path: `/v1/tasks/${taskId}/submissions`,
        query: { cursor: cursor(key) },
      });
      expect(res.statusCode, `cursor ${i}: ${res.body.slice(0, 200)}`).toBe(400);
      expect(res.code).toBe('InvalidCursor');
    }
    // A cursor of thousands of characters that is not even base64 JSON.
    const huge = await call({
      method: 'GET',
      path: `/v1/tasks/${taskId}/submissions`,
      query: { cursor: 'A'.repeat(50_000) },
    });
    expect(huge.statusCode).toBe(400);
    expect(huge.code).toBe('InvalidCursor');
    // The well-formed one still works.
    const ok = await call({ method: 'GET', path: `/v1/tasks/${taskId}/submissions`, query: { cursor: cursor(good) } });
    expect(ok.statusCode).toBe(200);
  });
});

describe('random mangled shapes on every submit route', () => {
  it('never a 5xx, and no record left pending', async () => {
    let seed = 4242;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = <T>(values: readonly T[]): T => values[rand(values.length)]!;
    const huge = (n: number) => 'h'.repeat(n);
    const valueShapes: readonly string[] = [
      '"ok"',
      '""',
      'null',
      '7',
      '[]',
      '{}',
      JSON.stringify(huge(100_000)),
      JSON.stringify('a\r\nb\u0000c'),
      deepObjectJson(3_000),
      deepArrayJson(3_000),
      deepObjectJson(33),
      '{"Name":"a.jpg","Source":"file"}',
      '{"Name":"a.jpg","Source":"url","Url":"http://127.0.0.1:9/a.jpg"}',
      `{"Name":${JSON.stringify(huge(50_000))},"Source":"file","Desc":${JSON.stringify(huge(100_000))}}`,
      `{"Name":"a.jpg","Source":"file","Desc":${deepObjectJson(3_000)}}`,
    ];
    const dispositions: readonly string[] = [
      'form-data; name="Request"',
      'form-data',
      'form-data; name=""',
      'form-data; name="Request"; filename="r.json"',
      'form-data; name="ImageFile"; filename="a.jpg"',
      'form-data; name="VideoFile"; filename="a.mp4"',
      'form-data; filename="a.jpg"',
      `form-data; name="${huge(300)}"`,
      'form-data; name="ImageFile"',
    ];
    const statuses: Record<number, number> = {};
    for (let i = 0; i < 120; i++) {
      const route = SUBMIT_ROUTES[i % SUBMIT_ROUTES.length]!;
      const key = route.kind === 'image' ? 'Image' : 'Video';
      const request = `{"TaskID":${pick(valueShapes)},"${key}":${pick(valueShapes)},"AlgoParamConf":${pick(valueShapes)}}`;
      const parts: Array<{ disposition: string; type?: string; content: string | Buffer }> = [];
      if (i % 4 === 0) {
        // Well framed, so the request reaches the ledger (and IVA) with a mangled value inside.
        const fileField = route.kind === 'image' ? 'ImageFile' : 'VideoFile';
        const media = '{"Name":"a.jpg","Source":"file"}';
        parts.push(requestPart(`{"TaskID":"fuzz-${i}","${key}":${media},"AlgoParamConf":${pick(valueShapes)}}`));
        parts.push(filePart(fileField));
      }
      const count = i % 4 === 0 ? rand(2) : 1 + rand(3);
      for (let p = 0; p < count; p++) {
        const disposition = pick(dispositions);
        parts.push({
          disposition,
          content: disposition.includes('Request') || rand(3) === 0 ? request : randomBytes(1 + rand(200)),
        });
      }
      const res = await call(submit(route, rawForm(parts)));
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      expect(res.statusCode, `case ${i}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
      if (res.statusCode >= 400) expect(res.code, `case ${i}`).toMatch(/^[A-Za-z]+$/);
    }
    // The generator reaches both refusals and submissions that get as far as IVA.
    expect(statuses[400] ?? 0).toBeGreaterThan(50);
    expect(statuses[200] ?? 0).toBeGreaterThan(0);
    const pending = (await allRecords()).filter((r) => r.submitStatus === 'pending' && r.source === 'api');
    expect(pending.map((r) => r.id)).toEqual([]);
  });
});

describe('GET /v1/submissions?status=…: refusals are findable across tasks', () => {
  it('lists failed submissions of every task, pages, and refuses a missing or unknown status', async () => {
    const taskId = `list-${randomBytes(4).toString('hex')}`;
    sandbox.injectFaults({ code: 'InvalidParameter', httpStatus: 400, message: 'bad parameter' });
    const refused = await call(
      submit(SUBMIT_ROUTES[0]!, rawForm([requestPart(goodRequest('image', taskId)), filePart()])),
    );
    expect(refused.statusCode).toBe(400);
    const id =
      JSON.parse(refused.body).ResponseMetadata?.SubmissionId ?? refused.headers?.['x-iva-bridge-submission-id'];
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const res = await call({
        method: 'GET',
        path: '/v1/submissions',
        query: { status: 'failed', limit: '5', ...(cursor ? { cursor } : {}) },
      });
      expect(res.statusCode, res.body.slice(0, 200)).toBe(200);
      const body = JSON.parse(res.body) as {
        Items: Array<{ SubmissionId: string; Status: string; TaskID?: string }>;
        NextCursor?: string;
      };
      for (const item of body.Items) expect(item.Status).toBe('failed');
      seen.push(...body.Items.filter((i) => i.TaskID === taskId).map((i) => i.SubmissionId));
      cursor = body.NextCursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(1);
    if (id) expect(seen[0]).toBe(id);
    for (const query of [
      {} as Record<string, string>,
      { status: 'done' },
      { status: 'FAILED' },
      { status: 'failed'.repeat(500) },
    ]) {
      const res = await call({ method: 'GET', path: '/v1/submissions', query });
      expect(res.statusCode, JSON.stringify(query).slice(0, 50)).toBe(400);
      expect(res.code).toBe('InvalidStatus');
    }
    const badCursor = await call({
      method: 'GET',
      path: '/v1/submissions',
      query: { status: 'failed', cursor: 'x'.repeat(5000) },
    });
    expect(badCursor.statusCode).toBe(400);
    expect(badCursor.code).toBe('InvalidCursor');
  });
});
