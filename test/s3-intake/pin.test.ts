/**
 * pinObject against real servers: s3rver (the local stack's S3, which needs our guard for
 * conditional copies and exact copy-source keys) and Ceph RGW (a real S3) when running.
 */
import { GetObjectCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_OBJECT_MAX_BYTES, pinnedKey, pinObject } from '../../lib/s3-intake/pin';
import { cephS3Client, createBucket, requireCeph, uniqueBucketName } from '../../local/servers/ceph';
import { startS3rver, type LocalS3 } from '../../local/servers/s3rver';
import { s3rverClient } from '../support/servers';

const KEYS = [
  'incoming/t1/plain.jpg',
  'incoming/t 1/my photo+1 (2).jpg',
  'incoming/t1/猫 ü?#&=.png',
  'incoming/t1/100%25 %2F.PNG',
  'incoming/a/b/c/d/e',
];

async function read(s3: S3Client, bucket: string, key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await out.Body?.transformToString()) ?? '';
}

function pinSuite(name: string, setup: () => Promise<{ s3: S3Client; bucket: string; close?: () => Promise<void> }>) {
  describe(name, () => {
    let s3: S3Client;
    let bucket: string;
    let close: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      ({ s3, bucket, close } = await setup());
    });
    afterAll(async () => {
      s3?.destroy();
      await close?.();
    });

    it('copies the upload to pinned/<id><ext> when its ETag is still the event’s, for awkward keys', async () => {
      for (const [i, key] of KEYS.entries()) {
        const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `bytes ${i}` }));
        const out = await pinObject(s3, { bucket, key, eTag: put.ETag, size: 7 }, `sub-${i}`);
        expect(out).toEqual({ action: 'pinned', ref: { bucket, key: pinnedKey(`sub-${i}`, key) }, copied: true });
        if (out.action === 'pinned') expect(await read(s3, bucket, out.ref.key)).toBe(`bytes ${i}`);
      }
      expect(pinnedKey('sub-3', KEYS[3]!)).toBe('pinned/sub-3.png');
      expect(pinnedKey('sub-4', KEYS[4]!)).toBe('pinned/sub-4');
    });

    it('refuses to pin bytes that are no longer the event’s: ObjectOverwritten, and nothing copied', async () => {
      const key = 'incoming/t1/overwritten.jpg';
      const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'first' }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'second, longer' }));
      const out = await pinObject(s3, { bucket, key, eTag: first.ETag }, 'sub-ow');
      expect(out).toMatchObject({ action: 'fail', failure: { code: 'ObjectOverwritten' } });
      await expect(read(s3, bucket, pinnedKey('sub-ow', key))).rejects.toMatchObject({ name: 'NoSuchKey' });
    });

    it('ends a deleted object as ObjectNotFound', async () => {
      const out = await pinObject(s3, { bucket, key: 'incoming/t1/never.jpg', eTag: '"abc"' }, 'sub-gone');
      expect(out).toMatchObject({ action: 'fail', failure: { code: 'ObjectNotFound' } });
    });
  });
}

describe('pinObject without a server', () => {
  const never = {
    send: () => {
      throw new Error('no S3 call expected');
    },
  } as unknown as S3Client;

  it('uses the event’s version in a versioned bucket, without a copy', async () => {
    expect(await pinObject(never, { bucket: 'b', key: 'incoming/x.jpg', versionId: 'v1' }, 'id')).toEqual({
      action: 'pinned',
      ref: { bucket: 'b', key: 'incoming/x.jpg', versionId: 'v1' },
      copied: false,
    });
  });

  it('refuses an unversioned object too large for one copy, naming the fix', async () => {
    const out = await pinObject(never, { bucket: 'b', key: 'incoming/x.mp4', size: COPY_OBJECT_MAX_BYTES + 1 }, 'id');
    expect(out).toMatchObject({ action: 'fail', failure: { code: 'VersioningRequired' } });
    if (out.action === 'fail') expect(out.failure.message).toMatch(/turn versioning on/);
  });
});

pinSuite('pinObject on s3rver (the local stack)', async () => {
  const server: LocalS3 = await startS3rver({ buckets: ['pins'] });
  return { s3: s3rverClient(server), bucket: 'pins', close: () => server.close() };
});

const ceph = requireCeph();
describe.skipIf(!ceph)('on Ceph RGW (a real S3)', () => {
  pinSuite('pinObject on Ceph RGW', async () => {
    const bucket = uniqueBucketName('pin');
    await createBucket(ceph!, bucket);
    const s3 = cephS3Client(ceph!);
    // Suspended versioning behaves as unversioned for new writes: the case pinning is for.
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Suspended' } }));
    return { s3, bucket };
  });
});
