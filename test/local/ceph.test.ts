import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  cephFromEnv,
  cephS3Client,
  createBucket,
  enableBucketNotifications,
  requireCeph,
  startEventReceiver,
  uniqueBucketName,
  type EventReceiver,
} from '../../local/servers/ceph';

const NO_FILE = join(tmpdir(), 'iva-bridge-no-such-ceph.json');
const FAKE = { endpoint: 'http://127.0.0.1:1', region: 'us-east-1', accessKeyId: 'ak', secretAccessKey: 'sk' };

describe('cephFromEnv / requireCeph', () => {
  it('reads CEPH_S3_* and defaults the region to us-east-1', () => {
    expect(
      cephFromEnv(
        { CEPH_S3_ENDPOINT: 'http://127.0.0.1:7480', CEPH_S3_ACCESS_KEY_ID: 'ak', CEPH_S3_SECRET_ACCESS_KEY: 'sk' },
        NO_FILE,
      ),
    ).toEqual({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', accessKeyId: 'ak', secretAccessKey: 'sk' });
  });

  it('refuses an endpoint without keys', () => {
    expect(() => cephFromEnv({ CEPH_S3_ENDPOINT: 'http://127.0.0.1:7480' }, NO_FILE)).toThrow(/CEPH_S3_ACCESS_KEY_ID/);
  });

  it('falls back to ceph.json, and rejects an incomplete one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceph-json-'));
    try {
      const file = join(dir, 'ceph.json');
      writeFileSync(file, JSON.stringify(FAKE));
      expect(cephFromEnv({}, file)).toEqual(FAKE);
      writeFileSync(file, JSON.stringify({ ...FAKE, secretAccessKey: '' }));
      expect(() => cephFromEnv({}, file)).toThrow(/secretAccessKey/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is undefined locally but an error in CI when nothing is configured', () => {
    expect(requireCeph({}, NO_FILE)).toBeUndefined();
    expect(() => requireCeph({ CI: 'true' }, NO_FILE)).toThrow(/ceph-rgw\.sh start/);
    expect(
      requireCeph(
        { CI: 'true', CEPH_S3_ENDPOINT: FAKE.endpoint, CEPH_S3_ACCESS_KEY_ID: 'ak', CEPH_S3_SECRET_ACCESS_KEY: 'sk' },
        NO_FILE,
      ),
    ).toEqual(FAKE);
  });
});

const ceph = requireCeph();

describe.skipIf(!ceph)('Ceph RGW as a real S3', () => {
  const bucket = uniqueBucketName('ceph-test');
  let s3: S3Client;

  beforeAll(async () => {
    if (!ceph) return;
    s3 = cephS3Client(ceph);
    await createBucket(ceph, bucket);
  });
  afterAll(() => {
    s3?.destroy();
  });

  it('verifies SigV4: a wrong secret gets 403 SignatureDoesNotMatch', async () => {
    if (!ceph) return;
    const wrong = cephS3Client({ ...ceph, secretAccessKey: `${ceph.secretAccessKey}x` });
    try {
      const err = await wrong.send(new ListObjectsV2Command({ Bucket: bucket })).then(
        () => undefined,
        (e: unknown) => e as { name?: string; $metadata?: { httpStatusCode?: number } },
      );
      expect(err?.name).toBe('SignatureDoesNotMatch');
      expect(err?.$metadata?.httpStatusCode).toBe(403);
    } finally {
      wrong.destroy();
    }
    // The right secret works, so the 403 was the signature and not the bucket.
    const ok = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(ok.$metadata.httpStatusCode).toBe(200);
  });

  it('serves a presigned GET byte for byte to plain fetch, and refuses a tampered one', async () => {
    const key = 'media/clip 1.bin';
    const body = randomBytes(300 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 60 });

    const res = await fetch(url);
    expect(res.status).toBe(200);
    const got = Buffer.from(await res.arrayBuffer());
    expect(sha256(got)).toBe(sha256(body));

    const tampered = new URL(url);
    const sig = tampered.searchParams.get('X-Amz-Signature') ?? '';
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    tampered.searchParams.set('X-Amz-Signature', `${sig[0] === '0' ? '1' : '0'}${sig.slice(1)}`);
    const bad = await fetch(tampered);
    expect(bad.status).toBe(403);
    expect(await bad.text()).toContain('SignatureDoesNotMatch');

    // Same signature, other object: the key is part of what is signed.
    const otherKey = new URL(url);
    otherKey.pathname = otherKey.pathname.replace('clip%201.bin', 'clip%202.bin');
    expect(otherKey.pathname).not.toBe(new URL(url).pathname);
    const moved = await fetch(otherKey);
    expect(moved.status).toBe(403);
    await moved.arrayBuffer();
  });

  it("enforces IfNoneMatch '*': a second create of the same key gets 412", async () => {
    const key = 'results/once.json';
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"n":1}', IfNoneMatch: '*' }));
    expect(first.$metadata.httpStatusCode).toBe(200);
    const err = await s3
      .send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"n":2}', IfNoneMatch: '*' }))
      .then(
        () => undefined,
        (e: unknown) => e as { name?: string; $metadata?: { httpStatusCode?: number } },
      );
    expect(err?.$metadata?.httpStatusCode).toBe(412);
    const kept = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await kept.Body?.transformToString()).toBe('{"n":1}');
  });

  it('accepts a presigned PUT with x-amz-meta-* metadata that HeadObject then shows', async () => {
    const key = 'incoming/upload-with-meta.jpg';
    const url = await getSignedUrl(
      s3,
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        ContentType: 'image/jpeg',
        Metadata: { 'task-id': 'task-42', source: 'camera 7' },
      }),
      // Signed headers rather than query parameters, so the uploader must send exactly these.
      // (RGW also accepts the presigner's default, x-amz-meta-* hoisted into the query string.)
      { expiresIn: 60, unhoistableHeaders: new Set(['x-amz-meta-task-id', 'x-amz-meta-source']) },
    );
    const body = randomBytes(2048);
    const headers = { 'content-type': 'image/jpeg', 'x-amz-meta-task-id': 'task-42', 'x-amz-meta-source': 'camera 7' };

    // Metadata different from what was signed is refused.
    const forged = await fetch(url, { method: 'PUT', body, headers: { ...headers, 'x-amz-meta-task-id': 'task-43' } });
    expect(forged.status).toBe(403);
    await forged.arrayBuffer();

    const put = await fetch(url, { method: 'PUT', body, headers });
    expect(put.status).toBe(200);
    await put.arrayBuffer();
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata).toEqual({ 'task-id': 'task-42', source: 'camera 7' });
    expect(head.ContentType).toBe('image/jpeg');
    expect(head.ContentLength).toBe(body.length);
  });

  describe('bucket notifications', () => {
    const events = uniqueBucketName('ceph-events');
    let receiver: EventReceiver;

    beforeAll(async () => {
      if (!ceph) return;
      receiver = await startEventReceiver();
      await createBucket(ceph, events);
      await enableBucketNotifications({
        ceph,
        bucket: events,
        pushEndpoint: `${receiver.url}/s3-events`,
        prefix: 'incoming/',
      });
    });
    afterAll(async () => {
      await receiver?.close();
    });

    it('POSTs an ObjectCreated record for an upload under incoming/, and none outside it', async () => {
      const key = 'incoming/task 1/été photo+ü 100%.jpg';
      await s3.send(new PutObjectCommand({ Bucket: events, Key: 'other/skipped.jpg', Body: 'x' }));
      await s3.send(new PutObjectCommand({ Bucket: events, Key: key, Body: randomBytes(1024) }));

      const post = await receiver.waitFor((p) => p.body.includes('ObjectCreated'));
      expect(post.path).toBe('/s3-events');
      const records = (JSON.parse(post.body) as { Records: Array<Record<string, unknown>> }).Records;
      expect(records).toHaveLength(1);
      const record = records[0] as {
        eventName: string;
        eventSource: string;
        s3: { bucket: { name: string }; object: { key: string; size: number } };
      };
      expect(record.eventName).toBe('ObjectCreated:Put');
      expect(record.eventSource).toBe('ceph:s3'); // AWS says 'aws:s3'
      expect(record.s3.bucket.name).toBe(events);
      expect(record.s3.object.size).toBe(1024);
      // RGW sends the key RAW: 'incoming/task 1/été photo+ü 100%.jpg' exactly as uploaded.
      // AWS URL-encodes it ('incoming/task+1/%C3%A9t%C3%A9+photo%2B%C3%BC+100%25.jpg'), so a
      // consumer must decode AWS keys with decodeURIComponent(key.replace(/\+/g, ' ')) and must
      // not do so for RGW records (a raw '+' or '%' would be mangled).
      expect(record.s3.object.key).toBe(key);
      // Only the prefix-filtered upload was pushed (the push happens during the PUT).
      expect(receiver.received.filter((p) => p.body.includes('other/skipped.jpg'))).toHaveLength(0);
    });
  });
});

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
