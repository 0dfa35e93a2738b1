/**
 * IVA's callbacks through the local stack (`npm start`'s API Gateway emulation, the real
 * result-callback function, dynalite, s3rver, the local EventBridge), driven over HTTP
 * like a hostile or merely unusual sender would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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

async function stored(uri: unknown): Promise<Buffer> {
  const key = String(uri).replace(`s3://${stack.info.bucket}/`, '');
  const out = await s3.send(new GetObjectCommand({ Bucket: stack.info.bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
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
    const out = await post(body);
    expect(out.status).toBe(200);
    expect((await stored(out.json.stored)).equals(Buffer.from(body))).toBe(true);
    const [, t, d] = String(out.json.stored).replace(`s3://${stack.info.bucket}/`, '').split('/');
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
    const outA = await post(a);
    const outB = await post(b);
    expect([outA.status, outB.status]).toEqual([200, 200]);
    expect(outA.json.duplicate).toBe(false);
    expect(outB.json.duplicate).toBe(false);
    expect(outA.json.stored).not.toBe(outB.json.stored);
    expect(String(outA.json.stored)).toContain(sha(a));
    expect(String(outB.json.stored)).toContain(sha(b));
    expect((await stored(outA.json.stored)).equals(a)).toBe(true);
    expect((await stored(outB.json.stored)).equals(b)).toBe(true);
  });

  it.each(['application/octet-stream', 'image/png', 'text/plain', 'application/x-www-form-urlencoded'])(
    'keeps a binary body sent as %s exactly',
    async (type) => {
      const bytes = Buffer.concat([randomBytes(4096), Buffer.from([0, 0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80])]);
      const out = await post(bytes, type);
      expect(out.status).toBe(200);
      expect(String(out.json.stored)).toContain(sha(bytes));
      expect((await stored(out.json.stored)).equals(bytes)).toBe(true);
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
    expect(await status(result.SubmissionId)).toMatchObject({ Status: 'completed', OverdueAt: expect.any(String) });
  });
});

describe('body sizes', () => {
  const bodyOf = (bytes: number, id: string) => {
    const head = `{"TaskID":"size","ImageID":"${id}","Status":"Success","Frames":"`;
    return Buffer.from(`${head}${'x'.repeat(bytes - head.length - 2)}"}`);
  };

  it.each([
    ['1 MB', 1024 * 1024],
    ['4.4 MB', 4.4 * 1024 * 1024],
  ])('stores a %s body byte for byte', async (_, size) => {
    const body = bodyOf(Math.floor(size), `s-${size}`);
    const out = await post(body);
    expect(out.status).toBe(200);
    expect((await stored(out.json.stored)).equals(body)).toBe(true);
  });

  // Not stored yet (lib/callback/README.md, "Large bodies"): what must hold meanwhile is
  // that no such body is ever acknowledged, so IVA keeps it and retries.
  it.each([
    ['7 MB', 7 * 1024 * 1024],
    ['9.5 MB', 9.5 * 1024 * 1024],
  ])('never answers a %s body 2xx while it cannot store it', async (_, size) => {
    const before = resultEvents().length;
    const out = await post(bodyOf(Math.floor(size), `big-${size}`));
    expect(out.status).toBeGreaterThanOrEqual(400);
    expect(resultEvents().length).toBe(before);
  });
});
