/**
 * IVA's callbacks through the local stack (`npm start`'s API Gateway emulation with the
 * template's authorizer and S3 integration, the inbox queue, the real result-callback
 * function, dynalite, s3rver, the local EventBridge), driven over HTTP like a hostile or
 * merely unusual sender would. A 200 means "in callbacks-inbox/"; the filed object and
 * its event follow from the S3 event, so the tests wait for them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lib/storage/s3-client';
import { decodeKeySegment } from '../../lib/storage/wtf8';
import { type LocalStack, startLocalStack } from '../../local/stack/index';
import { until } from '../support/e2e';
import { checkedFetch, signedApi } from '../support/openapi';

let stack: LocalStack;
let s3: S3Client;
const SECRET = randomBytes(32).toString('hex');

beforeAll(async () => {
  stack = await startLocalStack({
    callbackSecret: SECRET,
    // Short sweep settings; the sandbox calls back only after the tests are done.
    sweep: { intervalMs: 250, overdueAfterSeconds: 2, expireUploadsAfterSeconds: 1 },
    sandbox: { callbackDelayMs: 600_000 },
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
    // A failed inbox object comes back after 1 s instead of the template's 6 minutes.
    pipelines: { visibilityTimeoutMs: 1000 },
    log: () => undefined,
  });
  s3 = createS3Client({
    endpoint: stack.info.s3Endpoint,
    region: stack.info.s3Region,
    forcePathStyle: true,
    credentials: { accessKeyId: stack.info.s3AccessKeyId, secretAccessKey: stack.info.s3SecretAccessKey },
  });
});

afterAll(async () => {
  s3?.destroy();
  await stack?.close();
});

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

async function post(body: Buffer | string, contentType = 'application/json', secret = SECRET) {
  const res = await checkedFetch(stack.info.apiUrl)(`callbacks/${secret}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

async function read(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: stack.info.bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: stack.info.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(out.Contents ?? []).map((o) => o.Key ?? ''));
    token = out.NextContinuationToken;
  } while (token);
  return keys;
}

const inInbox = (inbox: unknown) =>
  s3.send(new HeadObjectCommand({ Bucket: stack.info.bucket, Key: `callbacks-inbox/${String(inbox)}` })).then(
    () => true,
    () => false,
  );

/** Waits until the inbox object of a 200 answer is filed (gone), then the result key holding `sha`. */
async function filed(out: { status: number; json: Record<string, unknown> }, bodySha: string): Promise<string> {
  expect(out.status).toBe(200);
  expect(out.json).toEqual({ ok: true, inbox: expect.any(String) });
  await until('the inbox object filed', async () => ((await inInbox(out.json.inbox)) ? undefined : true), {
    timeoutMs: 60_000,
  });
  const key = (await keysUnder('results/')).find((k) => k.includes(bodySha));
  if (!key) throw new Error(`no result object holds ${bodySha}`);
  return key;
}

const resultEvents = () => stack.events.filter((e) => e['detail-type'] === 'IVA Result Stored');

describe('a wrong secret looks exactly like an unknown route', () => {
  it('same status, same body shape, same headers', async () => {
    const shape = (r: Awaited<ReturnType<typeof post>>) => ({
      status: r.status,
      body: JSON.parse(r.text.replace(/"RequestId":"[^"]*"/, '"RequestId":"X"')) as unknown,
      headers: [...r.headers.keys()].filter((h) => !['date', 'connection', 'keep-alive'].includes(h)).sort(),
      contentType: r.headers.get('content-type'),
      errorType: r.headers.get('x-amzn-errortype'),
    });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'Success' });
    const wrong = await post(body, 'application/json', `${SECRET.slice(0, -1)}${SECRET.endsWith('0') ? '1' : '0'}`);
    const unknown = await fetch(`${stack.info.apiUrl}callbacks/${SECRET}/extra`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const unknownAnswer = { status: unknown.status, headers: unknown.headers, text: await unknown.text(), json: {} };
    expect(shape(wrong)).toEqual(shape(unknownAnswer));
    expect(wrong.status).toBe(404);
    // Refused before API Gateway writes a byte (the folder marker is the local stack's own).
    expect((await keysUnder('callbacks-inbox/')).filter((k) => k !== 'callbacks-inbox/')).toEqual([]);
  });
});

describe('odd ids over HTTP', () => {
  it.each([
    ['a lone surrogate', '{"TaskID":"t-\\ud800","ImageID":"img-\\udfff","Status":"Success"}', 't-\ud800', 'img-\udfff'],
    [
      'control characters',
      '{"TaskID":"t\\u0000\\u001f","VideoID":"v\\u007f\\n","Status":"done"}',
      't\u0000\u001f',
      'v\u007f\n',
    ],
    ['a lone surrogate in DataID', '{"DataID":"d\\udbff","Status":"running"}', undefined, 'd\udbff'],
  ])('%s: 200, stored byte for byte under a key that decodes to the ids, one event', async (_, body, task, data) => {
    const before = resultEvents().length;
    const key = await filed(await post(body), sha(body));
    expect((await read(key)).equals(Buffer.from(body))).toBe(true);
    const [, t, d] = key.split('/');
    if (task !== undefined) expect(decodeKeySegment(t!)).toBe(task);
    expect(decodeKeySegment(d!)).toBe(data);
    expect(resultEvents().length).toBe(before + 1);
  });
});

describe('bodies byte for byte', () => {
  it('keeps bodies that are not valid UTF-8 exactly, and two such bodies stay two objects', async () => {
    // Differ only in their invalid bytes: a lossy decoder maps both to the same text.
    const a = Buffer.concat([
      Buffer.from('{"TaskID":"t","ImageID":"nu","Note":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const b = Buffer.concat([
      Buffer.from('{"TaskID":"t","ImageID":"nu","Note":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const before = resultEvents().length;
    const keyA = await filed(await post(a), sha(a));
    const keyB = await filed(await post(b), sha(b));
    expect(keyA).not.toBe(keyB);
    expect((await read(keyA)).equals(a)).toBe(true);
    expect((await read(keyB)).equals(b)).toBe(true);
    await until('two events', () => (resultEvents().length >= before + 2 ? true : undefined));
    expect(resultEvents().map((e) => (e.detail as { location: { key: string } }).location.key)).toEqual(
      expect.arrayContaining([keyA, keyB]),
    );
  });

  it.each(['application/octet-stream', 'image/png', 'text/plain', 'application/x-www-form-urlencoded'])(
    'keeps a binary body sent as %s exactly',
    async (type) => {
      const bytes = Buffer.concat([randomBytes(4096), Buffer.from([0, 0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80])]);
      const key = await filed(await post(bytes, type), sha(bytes));
      expect((await read(key)).equals(bytes)).toBe(true);
    },
  );
});

describe('the sweep (short settings)', () => {
  const api = (path: string, init: RequestInit = {}) => signedApi(stack.info)(path, init);
  const status = async (id: string) => (await (await api(`/v1/submissions/${id}`)).json()) as Record<string, unknown>;
  it('marks a reserved upload never used expired, announces it once, and shows it', async () => {
    const res = await api('/v1/uploads', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        TaskID: 'sweep-t',
        Kind: 'image',
        Name: 'never.jpg',
        Size: 10,
        ContentType: 'image/jpeg',
      }),
    });
    expect(res.status).toBe(200);
    const id = ((await res.json()) as { SubmissionId: string }).SubmissionId;
    const view = await until('expired', async () => {
      const v = await status(id);
      return v.Status === 'expired' ? v : undefined;
    });
    expect(view.ExpiredAt).toEqual(expect.any(String));
    await new Promise((r) => setTimeout(r, 600)); // more sweep runs
    const announced = stack.events.filter(
      (e) => e['detail-type'] === 'Upload Expired' && (e.detail as { submissionId?: string }).submissionId === id,
    );
    expect(announced).toHaveLength(1);
  });

  it('marks a submission with no final callback overdue, announces it once; a later callback completes it', async () => {
    const form = new FormData();
    form.set('Request', JSON.stringify({ TaskID: 'sweep-o', Image: { Name: 'late.jpg', Source: 'file' } }));
    form.set('ImageFile', new Blob([randomBytes(64)], { type: 'image/jpeg' }), 'late.jpg');
    const res = await api('/v1/images', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const result = ((await res.json()) as { Result: { SubmissionId: string; ImageID: string } }).Result;
    await until('overdue', async () => ((await status(result.SubmissionId)).Status === 'overdue' ? true : undefined));
    await new Promise((r) => setTimeout(r, 600));
    const announced = stack.events.filter(
      (e) =>
        e['detail-type'] === 'IVA Result Overdue' &&
        (e.detail as { submissionId?: string }).submissionId === result.SubmissionId,
    );
    expect(announced).toHaveLength(1);
    const out = await post(JSON.stringify({ TaskID: 'sweep-o', ImageID: result.ImageID, Status: 'Success' }));
    expect(out.status).toBe(200);
    await until('completed', async () =>
      (await status(result.SubmissionId)).Status === 'completed' ? true : undefined,
    );
    expect(await status(result.SubmissionId)).toMatchObject({ Status: 'completed', OverdueAt: expect.any(String) });
  });
});

describe("body sizes: up to API Gateway's 10 MB, byte for byte", () => {
  const bodyOf = (bytes: number, id: string) => {
    const head = `{"TaskID":"size","ImageID":"${id}","Status":"Success","Frames":"`;
    const filler = randomBytes(bytes)
      .toString('base64')
      .slice(0, bytes - head.length - 2);
    return Buffer.from(`${head}${filler}"}`);
  };
  const eventsFor = (key: string) =>
    resultEvents().filter((e) => (e.detail as { location: { key: string } }).location.key === key);

  it.each([
    ['1 MB', 1_000_000],
    ['7 MB', 7_000_000],
    ['9.5 MB', 9_500_000],
  ])('files a %s body: read back from S3 with the same sha256, announced once', async (_, size) => {
    const body = bodyOf(size, `s-${size}`);
    expect(body.length).toBe(size);
    const key = await filed(await post(body), sha(body));
    expect(key).toBe(`results/size/s-${size}/${sha(body)}.json`);
    expect(sha(await read(key))).toBe(sha(body));
    await until('its event', () => (eventsFor(key).length > 0 ? true : undefined));
    expect(eventsFor(key)).toHaveLength(1);
  });

  it('refuses a body of 10 MB + 1 byte with 413 and stores nothing', async () => {
    const before = await keysUnder('');
    const out = await post(Buffer.alloc(10 * 1024 * 1024 + 1, 0x61));
    expect(out.status).toBe(413);
    expect(await keysUnder('')).toEqual(before);
  });

  it('the same 9.5 MB body sent twice (IVA retrying) is one object and one event', async () => {
    const body = bodyOf(9_500_000, 'replayed');
    const [first, second] = await Promise.all([post(body), post(body)]);
    expect(first?.json.inbox).not.toBe(second?.json.inbox);
    const key = await filed(first!, sha(body));
    expect(await filed(second!, sha(body))).toBe(key);
    await until('its event', () => (eventsFor(key).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 500)); // room for a wrong second event
    expect(eventsFor(key)).toHaveLength(1);
  });
});

describe('a failure after the inbox write', () => {
  it('leaves the inbox object in place, and the redelivered event files it, announced once', async () => {
    const body = Buffer.from(JSON.stringify({ TaskID: 'fault', ImageID: 'eb-down', Status: 'Success' }));
    // EventBridge refuses every attempt of the first processing (the SDK makes 3).
    stack.eventBridge.failPutEvents(3);
    const out = await post(body);
    expect(out.status).toBe(200);
    await until('the faults used up', () => (stack.eventBridge.faultsLeft === 0 ? true : undefined), {
      timeoutMs: 30_000,
    });
    // The first processing failed: only a successful one deletes the inbox object.
    expect(await inInbox(out.json.inbox)).toBe(true);
    const key = await filed(out, sha(body));
    expect(key).toBe(`results/fault/eb-down/${sha(body)}.json`);
    await until('its event', () =>
      resultEvents().some((e) => (e.detail as { location: { key: string } }).location.key === key) ? true : undefined,
    );
    expect(resultEvents().filter((e) => (e.detail as { location: { key: string } }).location.key === key)).toHaveLength(
      1,
    );
    expect(stack.pipelineQueues.resultCallback?.deadLetters).toEqual([]);
  });
});
