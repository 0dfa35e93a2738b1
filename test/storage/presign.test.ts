import { PutBucketVersioningCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPresigner,
  PRESIGN_MAX_SECONDS,
  redactPresignedUrl,
  redactSignedUrls,
  type AwsKeyPair,
} from '../../lib/storage/presign';
import { createS3Client } from '../../lib/storage/s3-client';
import { cephS3Client, createBucket, requireCeph, uniqueBucketName } from '../../local/servers/ceph';
import { startS3rver, type LocalS3 } from '../../local/servers/s3rver';

const BUCKET = 'presign-bucket';
const KEYS = [
  'incoming/t1/plain.jpg',
  'incoming/t 1/my photo+1 (2).jpg',
  'incoming/t1/猫 ü.png',
  'incoming/t1/100%.png',
  'incoming/a/b/c/d/e.mp4',
];

const fixed = (keys: AwsKeyPair) => ({ get: async () => keys, refresh: async () => keys });

function expectNoChecksumParams(url: string) {
  const params = [...new URL(url).searchParams.keys()].map((k) => k.toLowerCase());
  expect(params.filter((k) => k.includes('checksum'))).toEqual([]);
  expect(params).toContain('x-amz-signature');
}

describe('presignGet on s3rver', () => {
  let s3: LocalS3;
  let client: S3Client;

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
    client = createS3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
  });
  afterAll(async () => {
    await s3?.close();
  });

  it('gives URLs a plain fetch downloads byte for byte, with no checksum parameters', async () => {
    const presigner = createPresigner({ s3: client, ttlSeconds: 900 });
    for (const [i, key] of KEYS.entries()) {
      const body = Buffer.from(`bytes of ${key} #${i} \u0000\u00ff`, 'utf8');
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      const signed = await presigner.presignGet({ bucket: BUCKET, key });
      expectNoChecksumParams(signed.url);
      expect(new URL(signed.url).searchParams.get('X-Amz-Expires')).toBe('900');
      expect(signed).toMatchObject({ expiresInSeconds: 900, signedWith: 'role', warnings: [] });
      const res = await fetch(signed.url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    }
  });

  it('caps the TTL at 7 days with a warning', async () => {
    const signed = await createPresigner({ s3: client, ttlSeconds: PRESIGN_MAX_SECONDS + 1 }).presignGet({
      bucket: BUCKET,
      key: KEYS[0]!,
    });
    expect(signed.expiresInSeconds).toBe(PRESIGN_MAX_SECONDS);
    expect(new URL(signed.url).searchParams.get('X-Amz-Expires')).toBe(String(PRESIGN_MAX_SECONDS));
    expect(signed.warnings.join()).toMatch(/SigV4 maximum/);
  });

  it('warns when the TTL outlives temporary credentials, and not when they outlive it', async () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    const expiring = (inSeconds: number) =>
      new S3Client({
        endpoint: s3.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        credentials: async () => ({
          accessKeyId: 'S3RVER',
          secretAccessKey: 'S3RVER',
          sessionToken: 'tok',
          expiration: new Date(now + inSeconds * 1000),
        }),
      });
    const short = await createPresigner({ s3: expiring(3600), ttlSeconds: 6 * 3600, now: () => now }).presignGet({
      bucket: BUCKET,
      key: KEYS[0]!,
    });
    expect(short.warnings).toHaveLength(1);
    expect(short.warnings[0]).toMatch(/expire in 3600 s.*PRESIGN_SECRET_ARN/);
    expect(short.credentialsExpireAt).toBe('2026-11-30T13:00:00.000Z');
    expect(short.warnings[0]).not.toContain('S3RVER');
    const long = await createPresigner({ s3: expiring(12 * 3600), ttlSeconds: 6 * 3600, now: () => now }).presignGet({
      bucket: BUCKET,
      key: KEYS[0]!,
    });
    expect(long.warnings).toEqual([]);
  });

  it('signs with the long-lived keys when configured', async () => {
    const made: string[] = [];
    const presigner = createPresigner({
      s3: client,
      ttlSeconds: 3 * 24 * 3600,
      longLived: fixed({ accessKeyId: 'AKIALONGLIVED', secretAccessKey: 'long-lived-secret' }),
      signingClient: (keys) => {
        made.push(keys.accessKeyId);
        return createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, credentials: keys });
      },
    });
    const a = await presigner.presignGet({ bucket: BUCKET, key: KEYS[0]! });
    await presigner.presignGet({ bucket: BUCKET, key: KEYS[1]! });
    expect(a.signedWith).toBe('long-lived');
    expect(a.warnings).toEqual([]);
    expect(new URL(a.url).searchParams.get('X-Amz-Credential')).toMatch(/^AKIALONGLIVED\//);
    expect(made).toEqual(['AKIALONGLIVED']);
  });

  it('redacts the signature for logs', () => {
    expect(redactPresignedUrl('http://h/b/k.jpg?X-Amz-Signature=abc')).toBe('http://h/b/k.jpg');
  });
});

const ceph = requireCeph();

describe.skipIf(!ceph)('presignGet verified by a real S3 (Ceph RGW)', () => {
  const bucket = uniqueBucketName('presign');
  let client: S3Client;

  beforeAll(async () => {
    await createBucket(ceph!, bucket);
    client = cephS3Client(ceph!);
    await client.send(
      new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
  });

  it('serves exactly the signed version, for awkward keys', async () => {
    const presigner = createPresigner({ s3: client, ttlSeconds: 600 });
    for (const key of KEYS) {
      const v1 = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(`v1 ${key}`) }));
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(`v2 ${key}`) }));
      expect(v1.VersionId).toBeTruthy();
      const signed = await presigner.presignGet({ bucket, key, versionId: v1.VersionId });
      expectNoChecksumParams(signed.url);
      const res = await fetch(signed.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`v1 ${key}`);
      const latest = await fetch((await presigner.presignGet({ bucket, key })).url);
      expect(await latest.text()).toBe(`v2 ${key}`);
    }
  });

  it('is refused when tampered with or signed with a wrong secret (the gateway verifies)', async () => {
    const key = KEYS[1]!;
    const good = await createPresigner({ s3: client, ttlSeconds: 600 }).presignGet({ bucket, key });
    const tampered = new URL(good.url);
    tampered.searchParams.set('X-Amz-Expires', '601');
    expect((await fetch(tampered)).status).toBe(403);
    const wrong = createPresigner({
      s3: client,
      ttlSeconds: 600,
      longLived: fixed({ accessKeyId: ceph!.accessKeyId, secretAccessKey: 'not-the-secret' }),
      signingClient: (keys) =>
        createS3Client({ endpoint: ceph!.endpoint, region: ceph!.region, forcePathStyle: true, credentials: keys }),
    });
    expect((await fetch((await wrong.presignGet({ bucket, key })).url)).status).toBe(403);
    const right = createPresigner({
      s3: client,
      ttlSeconds: 600,
      longLived: fixed({ accessKeyId: ceph!.accessKeyId, secretAccessKey: ceph!.secretAccessKey }),
      signingClient: (keys) =>
        createS3Client({ endpoint: ceph!.endpoint, region: ceph!.region, forcePathStyle: true, credentials: keys }),
    });
    const ok = await fetch((await right.presignGet({ bucket, key })).url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe(`v2 ${key}`);
  });

  it('stops working when its TTL has passed', async () => {
    const signed = await createPresigner({ s3: client, ttlSeconds: 1 }).presignGet({ bucket, key: KEYS[0]! });
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(signed.url)).status).toBe(403);
  });
});

describe('redactSignedUrls', () => {
  it('blanks the credential, session token and signature of every URL quoted in a text, whatever the case', () => {
    const text =
      'fetch of "https://b.s3.amazonaws.com/k.jpg?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=abc123&x-amz-security-token=TOK" failed; ' +
      'retry https://b.s3.amazonaws.com/j.jpg?versionId=v1&X-Amz-Signature=def456';
    const out = redactSignedUrls(text);
    for (const secret of ['AKIA', 'abc123', 'TOK"', 'def456']) expect(out).not.toContain(secret);
    expect(out).toBe(
      'fetch of "https://b.s3.amazonaws.com/k.jpg?X-Amz-Credential=***&X-Amz-Signature=***&x-amz-security-token=***" failed; ' +
        'retry https://b.s3.amazonaws.com/j.jpg?versionId=v1&X-Amz-Signature=***',
    );
    expect(redactSignedUrls('Url is not reachable')).toBe('Url is not reachable');
  });
});
