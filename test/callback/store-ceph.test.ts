/**
 * The conditional-put half of "stored once", on the Ceph gateway (s3rver ignores
 * If-None-Match, so it cannot show this). A concurrent delivery is simulated the only
 * way a server cannot produce on demand: its HEAD reports "absent" because it ran just
 * before the winner's PUT landed. Ceph itself then decides with 412.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { putOnce } from '../../lib/callback/store';
import { cephS3Client, createBucket, requireCeph, uniqueBucketName } from '../../local/servers/ceph';

const ceph = requireCeph();

function headMisses(client: S3Client, count: number): void {
  let left = count;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'HeadObjectCommand' && left-- > 0) {
        throw Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
      }
      return next(args);
    },
    { step: 'initialize', name: 'raceHeadMiss' },
  );
}

describe.skipIf(!ceph)('putOnce on Ceph', () => {
  it('lets the gateway refuse the second put (412) and reports the first receipt time', async () => {
    const bucket = uniqueBucketName('cbstore');
    await createBucket(ceph!, bucket);
    const client = cephS3Client(ceph!);
    headMisses(client, 2);
    const input = {
      bucket,
      key: 'results/t/d/abc.json',
      body: Buffer.from('{"a":1}'),
      contentType: 'application/json',
    };
    const first = await putOnce(client, { ...input, receivedAt: '2026-11-30T12:00:00.000Z' });
    const second = await putOnce(client, {
      ...input,
      body: Buffer.from('{"a":2}'),
      receivedAt: '2026-11-30T12:00:09.000Z',
    });
    expect(first).toMatchObject({ duplicate: false, receivedAt: '2026-11-30T12:00:00.000Z' });
    expect(second).toMatchObject({
      duplicate: true,
      receivedAt: '2026-11-30T12:00:00.000Z',
      uri: `s3://${bucket}/results/t/d/abc.json`,
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['results/t/d/abc.json']);
    const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'results/t/d/abc.json' }));
    expect(await body.Body?.transformToString()).toBe('{"a":1}');
  });
});
