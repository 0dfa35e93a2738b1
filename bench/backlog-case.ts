/**
 * One backlog run (a child process of bench/backlog.ts): the whole local stack (s3rver,
 * SQS emulation, object-created, dynalite) against an IVA sandbox limited to R
 * submissions a second (token bucket, burst R); N uploads dropped into S3 at once.
 * Prints `RESULT {json}`: time until IVA holds all N, IVA calls, 429s, dead letters.
 * Args: N R
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/storage/s3-client';
import { INCOMING_PREFIX } from '../lib/storage/prefixes';
import { startLocalStack } from '../local/stack/index';

const [n = 200, rate = 20] = process.argv.slice(2).map(Number);

const stack = await startLocalStack({
  ports: { api: 0, s3: 0, iva: 0, dynamodb: 0, eventBridge: 0 },
  sandbox: { rateLimit: { perSecond: rate, burst: rate }, callbackDelayMs: 20 },
  // The deployed stack's shape: batches of 10, a few invocations at once.
  sqs: { visibilityTimeoutMs: 30_000, maxReceiveCount: 5, maxConcurrency: 4, batchingWindowMs: 20 },
  // The functions run in processes of their own with the template's environment: pass the switch on.
  // IVA_RATE_LIMIT: the known limit, as infra sets it from `-c ivaRateLimit=R`.
  functionEnv: {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    IVA_PACING: process.env.IVA_PACING ?? 'off',
    ...(process.env.IVA_RATE_LIMIT ? { IVA_RATE_LIMIT: process.env.IVA_RATE_LIMIT } : {}),
  },
  log: () => undefined,
});
const sandbox = stack.sandbox;
if (!sandbox) throw new Error('no sandbox');
const s3 = createS3Client({
  endpoint: stack.s3Endpoint,
  region: stack.s3Region,
  forcePathStyle: true,
  credentials: { accessKeyId: stack.s3AccessKeyId, secretAccessKey: stack.s3SecretAccessKey },
});

const started = Date.now();
const body = Buffer.alloc(256, 7);
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (let i = next++; i < n; i = next++) {
      await s3.send(
        new PutObjectCommand({
          Bucket: stack.bucket,
          Key: `${INCOMING_PREFIX}backlog/${i}.jpg`,
          Body: body,
          ContentType: 'image/jpeg',
        }),
      );
    }
  }),
);
const uploadedMs = Date.now() - started;
const deadline = started + 20 * 60_000;
while (sandbox.submissions.length < n && Date.now() < deadline) {
  if (stack.queue.depth === 0 && sandbox.submissions.length < n && stack.deadLetters.length > 0) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const drainMs = Date.now() - started;
const calls = sandbox.requests.length;
const throttled = sandbox.requests.filter((r) => r.httpStatus === 429).length;
const result = {
  n,
  rate,
  uploadedMs,
  drainMs,
  submitted: sandbox.submissions.length,
  calls,
  throttled,
  deadLetters: stack.deadLetters.length,
};
await stack.close();
s3.destroy();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
process.exit(0);
