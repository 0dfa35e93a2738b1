/**
 * The local stack keeps its state across a restart (stateDir, what npm start keeps in
 * .local/state): an S3 upload, a direct submission and their callbacks are recorded;
 * the stack stops with a message still in the queue; a new stack on the same folder shows
 * the same records, accepts the same API key and callback secret, and delivers the
 * message that was left.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lib/storage/s3-client';
import { type LocalStack, type StackInfo, startLocalStack } from '../../local/stack/index';
import { checkedFetch } from '../support/openapi';

interface View {
  SubmissionId: string;
  Status: string;
  Source: string;
  TaskID?: string;
  ImageID?: string;
  Result?: { Status: string; Location: string };
}

const task = `restart-${randomBytes(4).toString('hex')}`;
let stateDir: string;
let stack: LocalStack | undefined;

afterAll(async () => {
  await stack?.close();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

const start = (): Promise<LocalStack> =>
  startLocalStack({
    stateDir,
    sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
    sqs: { batchingWindowMs: 20 },
    log: () => undefined,
  });

/** Signed with `keys` (default: the stack's own client key). */
const api = (
  info: StackInfo,
  path: string,
  init: RequestInit = {},
  keys = { accessKeyId: info.clientAccessKeyId, secretAccessKey: info.clientSecretAccessKey },
): Promise<Response> => checkedFetch(info.apiUrl, { credentials: keys })(path, init);

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function listTask(info: StackInfo): Promise<View[]> {
  const res = await api(info, `v1/tasks/${task}/submissions?limit=100`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { Items: View[] }).Items;
}

async function upload(info: StackInfo, name: string): Promise<void> {
  const s3 = createS3Client({
    endpoint: info.s3Endpoint,
    region: info.s3Region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.s3AccessKeyId, secretAccessKey: info.s3SecretAccessKey },
  });
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: info.bucket,
        Key: `incoming/${task}/${name}`,
        Body: randomBytes(3000),
        ContentType: 'image/jpeg',
      }),
    );
  } finally {
    s3.destroy();
  }
}

describe('a restart on the same state folder', () => {
  it('keeps the records, the API key and the callback secret, and delivers the message left in the queue', async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'iva-bridge-restart-'));
    stack = await start();
    const first = stack.info;

    // An upload and a direct submission, each completed by the sandbox's callback.
    await upload(first, 'uploaded.jpg');
    const form = new FormData();
    form.set('Request', JSON.stringify({ TaskID: task, Image: { Name: 'direct.jpg', Source: 'file' } }));
    form.set('ImageFile', new Blob([randomBytes(2000)], { type: 'image/jpeg' }), 'direct.jpg');
    const direct = await api(first, 'v1/images', { method: 'POST', body: form });
    expect(direct.status, await direct.clone().text()).toBe(200);
    const before = await until('both completed', async () => {
      const items = await listTask(first);
      return items.length === 2 && items.every((v) => v.Status === 'completed') ? items : undefined;
    });
    expect(before.map((v) => v.Source).sort()).toEqual(['api', 's3']);
    const views = await Promise.all(
      before.map(async (v) => (await (await api(first, `v1/submissions/${v.SubmissionId}`)).json()) as View),
    );

    // Stop delivering, then upload: the message stays in the queue when the stack stops.
    await stack.queue.stop();
    await upload(first, 'left-in-queue.jpg');
    expect(stack.queue.depth).toBe(1);
    await stack.close();
    stack = undefined;

    stack = await start();
    const second = stack.info;
    expect(second.apiKey).toBe(first.apiKey);
    expect(second.clientAccessKeyId).toBe(first.clientAccessKeyId);
    expect(new URL(second.callbackUrl).pathname).toBe(new URL(first.callbackUrl).pathname);
    // The old client key works on the new stack; a wrong secret still does not.
    const firstKeys = { accessKeyId: first.clientAccessKeyId, secretAccessKey: first.clientSecretAccessKey };
    expect((await api(second, `v1/submissions/${views[0]!.SubmissionId}`, {}, firstKeys)).status).toBe(200);
    const wrong = { ...firstKeys, secretAccessKey: 'wrong' };
    expect((await api(second, `v1/submissions/${views[0]!.SubmissionId}`, {}, wrong)).status).toBe(403);
    for (const view of views)
      expect((await (await api(second, `v1/submissions/${view.SubmissionId}`)).json()) as View).toEqual(view);

    // The message left behind is delivered, submitted and completed by the new stack.
    const after = await until('the left message completed', async () => {
      const items = await listTask(second);
      return items.length === 3 && items.every((v) => v.Status === 'completed') ? items : undefined;
    });
    expect(after.filter((v) => !views.some((w) => w.SubmissionId === v.SubmissionId))).toHaveLength(1);
    expect(stack.queue.depth).toBe(0);
  }, 120_000);
});
