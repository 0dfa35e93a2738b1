import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_HTTP_TIMEOUTS, sdkRequestHandler } from '../../lib/aws/sdk-http';
import { createS3Client } from '../../lib/storage/s3-client';

/** Reads every request and never answers: a hung AWS endpoint. */
let server: Server;
let endpoint: string;
let requests = 0;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((req) => {
    requests++;
    req.resume();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const creds = { accessKeyId: 'AKID', secretAccessKey: 'SECRET' };

describe('SDK clients give up on a hung endpoint', () => {
  it('defaults bound every phase of a call and turn a request timeout into an error', () => {
    expect(sdkRequestHandler()).toEqual({
      connectionTimeout: SDK_HTTP_TIMEOUTS.connectionTimeoutMs,
      requestTimeout: SDK_HTTP_TIMEOUTS.requestTimeoutMs,
      socketTimeout: SDK_HTTP_TIMEOUTS.socketTimeoutMs,
      throwOnRequestTimeout: true,
    });
    // Every value is finite and shorter than the shortest function timeout (15 s) where it must be.
    expect(SDK_HTTP_TIMEOUTS.connectionTimeoutMs).toBeLessThan(15_000);
    expect(SDK_HTTP_TIMEOUTS.socketTimeoutMs * 2).toBeLessThan(15_000);
  });

  it('S3 (createS3Client): a silent server fails each attempt, the SDK retries, then the call rejects', async () => {
    requests = 0;
    const s3 = createS3Client({
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: creds,
      timeouts: { socketTimeoutMs: 250, requestTimeoutMs: 2_000 },
    });
    const started = Date.now();
    const error = await s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(8_000);
    // Retries are kept: the SDK's default of 3 attempts.
    expect(requests).toBe(3);
    s3.destroy();
  });

  it('S3: a server silent past the request timeout is cut off even with a long idle timeout', async () => {
    requests = 0;
    const s3 = createS3Client({
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: creds,
      timeouts: { socketTimeoutMs: 60_000, requestTimeoutMs: 250 },
    });
    const error = await s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e as Error);
    expect((error as Error).name).toBe('TimeoutError');
    expect(requests).toBe(3);
    s3.destroy();
  });

  it('DynamoDB with sdkRequestHandler: rejects instead of waiting for the 5-minute SDK default', async () => {
    requests = 0;
    const ddb = new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: creds,
      maxAttempts: 2,
      requestHandler: sdkRequestHandler({ socketTimeoutMs: 250 }),
    });
    const error = await ddb
      .send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } } }))
      .catch((e: unknown) => e as Error);
    expect((error as Error).name).toBe('TimeoutError');
    expect(requests).toBe(2);
    ddb.destroy();
  });
});
