/**
 * A real S3 for tests: the one-node Ceph RADOS Gateway that `scripts/ceph-rgw.sh start`
 * runs (it writes `.local/ceph/env` and `.local/ceph/ceph.json`). Unlike s3rver it
 * verifies SigV4, presigned URLs and `If-None-Match`, and pushes bucket notifications
 * over HTTP. Its traps (docs/local-s3.md): region must be us-east-1, streamed
 * uploads need checksums WHEN_REQUIRED (else 411), and notification records carry raw
 * keys, `eventSource: 'ceph:s3'` and an empty `awsRegion`.
 *
 * Tests: `const ceph = requireCeph(); describe.skipIf(!ceph)(…)` — skipped on a laptop
 * without Ceph, a hard failure in CI where a silent skip would hide a broken setup.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
// A dependency of every @aws-sdk client (via @aws-sdk/core), so always installed.
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../../lib/aws/sha256';
import { createS3Client } from '../../lib/storage/s3-client';
import { closeServer, listen, urlOf } from './http-close';
import { isAwsError } from '../../lib/aws/errors';

export interface S3Endpoint {
  /** `http://127.0.0.1:PORT`; use path-style addressing. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

type Env = Record<string, string | undefined>;

/** Where `scripts/ceph-rgw.sh start` writes the endpoint facts by default. */
export const CEPH_JSON_PATH = fileURLToPath(new URL('../../.local/ceph/ceph.json', import.meta.url));

/**
 * The Ceph S3 endpoint from CEPH_S3_* variables, else from `.local/ceph/ceph.json`;
 * undefined when neither is there. Reading the file too means a plain `npx vitest run`
 * finds a gateway started earlier without sourcing its env file.
 */
export function cephFromEnv(env: Env = process.env, jsonPath: string = CEPH_JSON_PATH): S3Endpoint | undefined {
  const endpoint = env.CEPH_S3_ENDPOINT?.trim();
  if (endpoint) {
    const accessKeyId = env.CEPH_S3_ACCESS_KEY_ID?.trim();
    const secretAccessKey = env.CEPH_S3_SECRET_ACCESS_KEY?.trim();
    if (!accessKeyId || !secretAccessKey) {
      throw new Error('CEPH_S3_ENDPOINT is set but CEPH_S3_ACCESS_KEY_ID or CEPH_S3_SECRET_ACCESS_KEY is missing');
    }
    return { endpoint, region: env.CEPH_S3_REGION?.trim() || 'us-east-1', accessKeyId, secretAccessKey };
  }
  if (!existsSync(jsonPath)) return undefined;
  const raw: unknown = JSON.parse(readFileSync(jsonPath, 'utf8'));
  if (!isS3Endpoint(raw))
    throw new Error(`${jsonPath} does not hold endpoint, region, accessKeyId and secretAccessKey`);
  return {
    endpoint: raw.endpoint,
    region: raw.region,
    accessKeyId: raw.accessKeyId,
    secretAccessKey: raw.secretAccessKey,
  };
}

function isS3Endpoint(value: unknown): value is S3Endpoint {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['endpoint', 'region', 'accessKeyId', 'secretAccessKey'].every((k) => typeof v[k] === 'string' && v[k] !== '');
}

/**
 * The Ceph endpoint, or undefined outside CI so local runs can `describe.skipIf(!ceph)`.
 * In CI (`CI=true`) a missing Ceph is an error: `.ci/run` is supposed to have started it.
 */
export function requireCeph(env: Env = process.env, jsonPath: string = CEPH_JSON_PATH): S3Endpoint | undefined {
  const ceph = cephFromEnv(env, jsonPath);
  if (!ceph && env.CI === 'true') {
    throw new Error(
      'CI=true but no local Ceph S3 is configured: run `bash scripts/ceph-rgw.sh start` and `source .local/ceph/env` (see .ci/run)',
    );
  }
  return ceph;
}

/** An S3 client for the gateway: path-style, checksums WHEN_REQUIRED (RGW answers 411 otherwise). */
export function cephS3Client(ceph: S3Endpoint): S3Client {
  return createS3Client({
    endpoint: ceph.endpoint,
    region: ceph.region,
    forcePathStyle: true,
    credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
  });
}

/** A bucket name no earlier run used: the gateway outlives test runs. */
export function uniqueBucketName(prefix = 'test'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`.toLowerCase();
}

/** Creates the bucket; an existing bucket of the same owner is fine. */
export async function createBucket(ceph: S3Endpoint, name: string): Promise<void> {
  const client = cephS3Client(ceph);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    if (!isAwsError(err, 'BucketAlreadyOwnedByYou')) throw err;
  } finally {
    client.destroy();
  }
}

export interface BucketNotificationOptions {
  ceph: S3Endpoint;
  bucket: string;
  /** Where RGW POSTs the records, e.g. `http://127.0.0.1:PORT/events`. */
  pushEndpoint: string;
  /** Only keys starting with this (e.g. `incoming/`). */
  prefix?: string;
  /** Defaults to a name derived from the bucket. */
  topicName?: string;
}

/**
 * Sends `s3:ObjectCreated:*` records of `bucket` to `pushEndpoint` as HTTP POSTs: an
 * SNS-style topic on the gateway (RGW speaks the SNS API on the S3 port) plus the
 * bucket's notification configuration. Non-persistent topic: RGW pushes while it
 * handles the upload, and a push endpoint that is down loses the event.
 */
export async function enableBucketNotifications(options: BucketNotificationOptions): Promise<{ topicArn: string }> {
  const { ceph, bucket, pushEndpoint, prefix } = options;
  const topicName = options.topicName ?? `${bucket}-created`;
  const topicArn = await createTopic(ceph, topicName, pushEndpoint);
  const client = cephS3Client(ceph);
  try {
    await client.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: {
          TopicConfigurations: [
            {
              Id: `${topicName}-config`,
              TopicArn: topicArn,
              Events: ['s3:ObjectCreated:*'],
              ...(prefix ? { Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } } } : {}),
            },
          ],
        },
      }),
    );
  } finally {
    client.destroy();
  }
  return { topicArn };
}

/** `POST / Action=CreateTopic` signed for service `sns`; returns the TopicArn. */
async function createTopic(ceph: S3Endpoint, name: string, pushEndpoint: string): Promise<string> {
  const form = new URLSearchParams({
    Action: 'CreateTopic',
    Name: name,
    'Attributes.entry.1.key': 'push-endpoint',
    'Attributes.entry.1.value': pushEndpoint,
  }).toString();
  const url = new URL(ceph.endpoint);
  const signer = new SignatureV4({
    service: 'sns',
    region: ceph.region,
    credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
    sha256: NodeSha256,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: form,
  });
  const res = await fetch(new URL('/', ceph.endpoint), {
    method: 'POST',
    headers: signed.headers as Record<string, string>,
    body: form,
  });
  const text = await res.text();
  const arn = /<TopicArn>([^<]+)<\/TopicArn>/.exec(text)?.[1];
  if (!res.ok || !arn) {
    throw new Error(`RGW CreateTopic ${name} failed: HTTP ${res.status} ${errorCodeOf(text)}`);
  }
  return arn;
}

function errorCodeOf(xml: string): string {
  return /<Code>([^<]+)<\/Code>/.exec(xml)?.[1] ?? 'unknown error';
}

export interface ReceivedPost {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface EventReceiver {
  /** `http://127.0.0.1:PORT`; append any path for the push endpoint. */
  url: string;
  received: ReceivedPost[];
  /** Resolves with the first POST (already received or coming) that matches. */
  waitFor: (match: (post: ReceivedPost) => boolean, timeoutMs?: number) => Promise<ReceivedPost>;
  close: () => Promise<void>;
}

/** A local HTTP endpoint that records every POST and answers 200 (what RGW's push expects). */
export async function startEventReceiver(): Promise<EventReceiver> {
  const received: ReceivedPost[] = [];
  const waiters = new Set<(post: ReceivedPost) => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const post = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      if (req.method === 'POST') {
        received.push(post);
        for (const w of [...waiters]) w(post);
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  const url = urlOf(await listen(server));
  const waitFor = (match: (post: ReceivedPost) => boolean, timeoutMs = 10_000): Promise<ReceivedPost> => {
    const already = received.find(match);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const waiter = (post: ReceivedPost): void => {
        if (!match(post)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(post);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching POST within ${timeoutMs} ms (${received.length} received)`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };
  return { url, received, waitFor, close: () => closeServer(server) };
}
