import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startDynalite, type LocalDynalite } from '../../local/servers/dynalite';
import { encodeS3EventKey, startS3rver, type LocalS3, type S3EventNotification } from '../../local/servers/s3rver';
import { createS3Client, forcePathStyleFromEnv } from '../../lib/storage/s3-client';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('startDynalite', () => {
  let db: LocalDynalite;
  beforeAll(async () => {
    db = await startDynalite();
  });
  afterAll(async () => {
    await db.close();
  });

  it('serves an in-memory DynamoDB whose tables are ACTIVE at once', async () => {
    expect(db.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new DynamoDBClient({ endpoint: db.endpoint, region: db.region, credentials: db.credentials });
    const created = await client.send(
      new CreateTableCommand({
        TableName: 'ledger',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    expect(created.TableDescription?.TableName).toBe('ledger');
    const described = await client.send(new DescribeTableCommand({ TableName: 'ledger' }));
    expect(described.Table?.TableStatus).toBe('ACTIVE');

    await client.send(new PutItemCommand({ TableName: 'ledger', Item: { pk: { S: 'a' }, n: { N: '42' } } }));
    const got = await client.send(new GetItemCommand({ TableName: 'ledger', Key: { pk: { S: 'a' } } }));
    expect(got.Item).toEqual({ pk: { S: 'a' }, n: { N: '42' } });
    client.destroy();
  });
});

describe('startDynalite close', () => {
  it('waits for actions whose callers hung up, so none meets a closed LevelDB store, and outlives hang-ups mid-body', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dynalite-close-'));
    const db = await startDynalite({ path: dir });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const client = new DynamoDBClient({ endpoint: db.endpoint, region: db.region, credentials: db.credentials });
      await client.send(
        new CreateTableCommand({
          TableName: 'ledger',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      client.destroy();
      // Callers that send a whole PutItem and hang up at once (a Lambda process killed
      // mid-call): dynalite still runs each action (a read, then a write) after the
      // connection is gone.
      const { hostname, port } = new URL(db.endpoint);
      const body = JSON.stringify({ TableName: 'ledger', Item: { pk: { S: 'x' }, blob: { S: 'b'.repeat(300_000) } } });
      await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const req = httpRequest({
                host: hostname,
                port,
                method: 'POST',
                path: '/',
                headers: {
                  'content-type': 'application/x-amz-json-1.0',
                  'x-amz-target': 'DynamoDB_20120810.PutItem',
                  'x-amz-date': '20260101T000000Z',
                  authorization:
                    'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00',
                  'content-length': Buffer.byteLength(body),
                },
              });
              req.on('error', () => resolve());
              req.end(body, () =>
                setTimeout(() => {
                  req.destroy();
                  resolve();
                }, i % 8),
              );
            }),
        ),
      );
      // And callers that hang up halfway through a body (dynalite rethrows the request's
      // 'aborted' error as an uncaught exception).
      await Promise.all(
        Array.from(
          { length: 5 },
          () =>
            new Promise<void>((resolve) => {
              const req = httpRequest({
                host: hostname,
                port,
                method: 'POST',
                path: '/',
                headers: { 'content-type': 'application/x-amz-json-1.0', 'content-length': 1000 },
              });
              req.on('error', () => resolve());
              req.write('{"TableName":', () => setTimeout(() => req.destroy(), 20));
            }),
        ),
      );
      await db.close();
      await new Promise((r) => setTimeout(r, 200));
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('startS3rver + createS3Client', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['media'] });
  });
  afterAll(async () => {
    await s3.close();
    expect(existsSync(s3.directory)).toBe(false);
  });

  it('stores binary objects under awkward keys byte for byte, via the SDK and a presigned GET', async () => {
    const client = createS3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const key = 'incoming/task 1/été+photo %41 (1).jpg';
    const body = randomBytes(256 * 1024);
    const events: S3EventNotification[] = [];
    s3.events.on('event', (n) => events.push(n));

    await client.send(new PutObjectCommand({ Bucket: 'media', Key: key, Body: body, ContentType: 'image/jpeg' }));

    const got = await client.send(new GetObjectCommand({ Bucket: 'media', Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(bytes.equals(body)).toBe(true);
    expect(got.ContentType).toBe('image/jpeg');

    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'media', Key: key }), { expiresIn: 600 });
    expect(url).not.toMatch(/x-amz-checksum/i);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);

    // The event record carries the key URL-encoded, as AWS delivers it.
    expect(events).toHaveLength(1);
    const record = events[0]!.Records[0]!;
    expect(record.eventName).toBe('ObjectCreated:Put');
    expect(record.s3.bucket.name).toBe('media');
    expect(record.s3.object.key).toBe(encodeS3EventKey(key));
    expect(decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '))).toBe(key);
    client.destroy();
  });

  it('encodes event keys like AWS: + for space, / kept, + and % escaped', () => {
    expect(encodeS3EventKey('incoming/a b+c%/ü.jpg')).toBe('incoming/a+b%2Bc%25/%C3%BC.jpg');
  });
});

describe('forcePathStyleFromEnv', () => {
  it('reads S3_FORCE_PATH_STYLE', () => {
    expect(forcePathStyleFromEnv({ S3_FORCE_PATH_STYLE: 'true' })).toBe(true);
    expect(forcePathStyleFromEnv({ S3_FORCE_PATH_STYLE: '1' })).toBe(true);
    expect(forcePathStyleFromEnv({ S3_FORCE_PATH_STYLE: 'false' })).toBe(false);
    expect(forcePathStyleFromEnv({})).toBe(false);
  });

  it('is used when forcePathStyle is not given', async () => {
    const client = createS3Client({ region: 'us-east-1', env: { S3_FORCE_PATH_STYLE: 'true' } });
    expect(client.config.forcePathStyle).toBe(true);
    const other = createS3Client({ region: 'us-east-1', env: {} });
    expect(other.config.forcePathStyle).toBe(false);
    client.destroy();
    other.destroy();
  });
});
