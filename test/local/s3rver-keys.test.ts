/**
 * The embedded S3 (s3rver, contained by local/servers/s3rver-keys.ts) against keys AWS
 * S3 accepts literally and keys it refuses: every accepted key round-trips byte for byte,
 * lists as itself and deletes, nothing is written outside the data folder, and the
 * process survives.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lib/storage/s3-client';
import { decodeKeyPath, encodeKeyPath } from '../../local/servers/s3rver-keys';
import { startS3rver, type LocalS3 } from '../../local/servers/s3rver';

const BUCKET = 'keys';
let root: string;
let s3rver: LocalS3;
let s3: S3Client;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  return out;
}

beforeAll(async () => {
  // The data folder is one level down, so a write that escapes it lands in `root`.
  root = await mkdtemp(join(tmpdir(), 's3rver-keys-'));
  s3rver = await startS3rver({ buckets: [BUCKET], directory: join(root, 'data') });
  s3 = createS3Client({
    endpoint: s3rver.endpoint,
    region: s3rver.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3rver.accessKeyId, secretAccessKey: s3rver.secretAccessKey },
  });
});

afterAll(async () => {
  s3?.destroy();
  await s3rver?.close();
  await rm(root, { recursive: true, force: true });
});

const accepted: Array<[string, string]> = [
  ['a plain key', 'incoming/task/cat.jpg'],
  ['1,024 bytes in one segment', 'k'.repeat(1024)],
  ['1,024 bytes of 3-byte characters and slashes', `${'€/'.repeat(256)}`],
  ['1,024 bytes of `%` (the escape character)', '%'.repeat(1024)],
  ['1,024 slashes', '/'.repeat(1024)],
  ['`..` segments that would climb out', 'incoming/../../../../escaped.jpg'],
  ['`..` alone', '..'],
  ['`.` segments', './a/./b/.'],
  ['a dot-file segment', 'incoming/t/.hidden'],
  ['an empty middle segment', 'a//b'],
  ['the same without it (must stay distinct)', 'a/b'],
  ['a leading slash', '/leading'],
  ['a trailing slash (folder marker)', 'incoming/folder/'],
  ['percent signs that look like the escapes', 'x/%2E%25%+/y'],
  ['a 300-byte segment ending in a dot', `${'z'.repeat(199)}.${'q'.repeat(99)}.`],
  ['spaces, plus, unicode, control-free punctuation', "incoming/my cat+1 ü/!'()*&$@=;:,?.jpg"],
];

describe('s3rver contained: keys S3 accepts', () => {
  it.each(accepted)('%s: stored, read back, listed and deleted as itself', async (_, key) => {
    const body = Buffer.from(`body of ${key.length}`);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(body);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toContain(key);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    await expect(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({
      name: 'NoSuchKey',
    });
  });

  it('keeps distinct keys distinct and every file inside the data folder', async () => {
    for (const [, key] of accepted)
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(key) }));
    for (const [, key] of accepted) {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).toString()).toBe(key);
    }
    const files = await filesUnder(root);
    expect(files.length).toBeGreaterThan(accepted.length);
    for (const file of files) expect(relative(root, file).startsWith(`data${'/'}`), file).toBe(true);
    for (const [, key] of accepted) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    // Deleting removed the folders the keys made, and nothing outside the bucket.
    expect(await readdir(join(root, 'data', BUCKET))).toEqual(expect.not.arrayContaining(['incoming']));
    expect(await readdir(root)).toEqual(['data']);
  });
});

describe('s3rver contained: keys and requests S3 refuses', () => {
  it('a key of 1,025 bytes: 400 KeyTooLongError, nothing stored, the server still answers', async () => {
    for (const key of ['k'.repeat(1025), `${'€'.repeat(341)}xy`]) {
      await expect(
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from('x') })),
      ).rejects.toMatchObject({ name: 'KeyTooLongError', $metadata: { httpStatusCode: 400 } });
    }
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'still-alive', Body: Buffer.from('y') }));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'still-alive' }));
    expect(await got.Body!.transformToString()).toBe('y');
  });

  it('an uploadId that climbs out of the uploads folder: 404 NoSuchUpload, nothing written', async () => {
    const res = await fetch(`${s3rver.endpoint}/${BUCKET}/k?partNumber=1&uploadId=..%2F..%2F..%2Fevil`, {
      method: 'PUT',
      body: 'x',
    });
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('NoSuchUpload');
    expect(await readdir(root)).toEqual(['data']);
  });
});

describe('the key encoding', () => {
  it('is reversible, leaves plain keys alone and keeps prefixes prefixes', () => {
    expect(encodeKeyPath('incoming/task/cat.jpg')).toBe('incoming/task/cat.jpg');
    for (const [, key] of accepted) {
      expect(decodeKeyPath(encodeKeyPath(key))).toBe(key);
      for (let i = 0; i <= key.length; i++)
        expect(encodeKeyPath(key).startsWith(encodeKeyPath(key.slice(0, i)))).toBe(true);
      for (const part of encodeKeyPath(key).split('/')) {
        expect(part === '.' || part === '..').toBe(false);
        expect(Buffer.byteLength(part)).toBeLessThanOrEqual(210);
      }
    }
  });
});
