/**
 * One direct-submit benchmark case in a fresh process:
 *   tsx bench/direct-submit-case.ts <variant> <bytes> <runs> <drainUrl>
 * Prints one line `RESULT {json}`: handler times and the peak extra RSS of one request.
 *
 * Peak memory is sampled from a worker thread (process RSS every ~0.5 ms, in parallel
 * with the handler's synchronous work), against the RSS right before the request. The
 * process high-water mark (maxRSS) cannot be used: building the event itself (file,
 * multipart body, base64 text) already peaks above what a request adds.
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';
import middy from '@middy/core';
import httpMultipartBodyParser from '@middy/http-multipart-body-parser';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { createHandler } from '../functions/direct-submit/handler';
import { createIvaClient } from '../lib/iva/client';
import { createMemoryLedger } from '../lib/ledger/memory';
import { logger, noMetrics, silentLogger } from '../lib/observability';
import { createS3Client } from '../lib/storage/s3-client';
import { lambdaContext } from '../local/stack/lambda';
import { BENCH_CREDENTIALS, SdkFormData, sdkSign } from './sdk-alternative';

export type DirectVariant = 'ours' | 'alt' | 'alt-nodehash';

const CREDS = BENCH_CREDENTIALS;

function context(): Context {
  return lambdaContext({ name: 'direct-submit', timeoutMs: 60_000, memoryMb: 1024 });
}

/** The event API Gateway would deliver: a real encoder's multipart body, base64. */
async function buildEvent(bytes: number): Promise<APIGatewayProxyEvent> {
  const form = new FormData();
  form.append('ImageFile', new Blob([randomFillSync(Buffer.allocUnsafe(bytes))], { type: 'image/jpeg' }), 'photo.jpg');
  form.append('Request', JSON.stringify({ TaskID: 'bench', Image: { Name: 'photo.jpg', Source: 'file' } }));
  const response = new Response(form);
  const contentType = response.headers.get('content-type')!;
  const body = Buffer.from(await response.arrayBuffer()).toString('base64');
  return {
    resource: '/v1/images',
    path: '/v1/images',
    httpMethod: 'POST',
    headers: { 'Content-Type': contentType },
    multiValueHeaders: { 'Content-Type': [contentType] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded: true,
    requestContext: { requestId: randomUUID() } as APIGatewayProxyEvent['requestContext'],
  };
}

type Handler = (event: APIGatewayProxyEvent, ctx: Context) => Promise<APIGatewayProxyResult>;

function oursHandler(drain: string): Handler {
  logger.setLogLevel('SILENT');
  const handler = createHandler({
    // Just enough ledger for the handler: the bench measures parsing, signing and sending.
    ledger: createMemoryLedger(),
    iva: createIvaClient({ credentials: CREDS, endpoint: drain, timeoutMs: 120_000 }),
    s3: createS3Client({ region: 'us-east-1' }),
    bucket: 'bench',
    config: { directMaxBytes: 64 * 1024 * 1024, uploadUrlTtlSeconds: 900, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    logger: silentLogger,
    metrics: noMetrics,
  });
  return handler as unknown as Handler;
}

interface ParsedFile {
  filename: string;
  mimetype: string;
  content: Buffer;
}

/** The obvious way: middy's multipart parser, form-data, the official SDK's Signer, http.request. */
function altHandler(drain: string, nodeHash: boolean): Handler {
  const url = new URL(drain);
  const agent = new Agent({ keepAlive: true });
  const post = (headers: Record<string, string>, body: Buffer) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          agent,
          hostname: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/?Action=AddAsyncTaskImageData&Version=2022-05-13',
          headers: { ...headers, 'Content-Length': String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const base = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const parsed = event.body as unknown as { Request: string; ImageFile: ParsedFile };
    const form = new SdkFormData();
    form.append('ImageFile', parsed.ImageFile.content, {
      filename: parsed.ImageFile.filename,
      contentType: parsed.ImageFile.mimetype,
    });
    form.append('Request', parsed.Request);
    const signed = sdkSign(form, url.host, nodeHash);
    const answer = await post(signed.headers, signed.body);
    return { statusCode: answer.status, headers: { 'content-type': 'application/json' }, body: answer.text };
  };
  return middy(base).use(httpMultipartBodyParser()) as unknown as Handler;
}

/** Samples process RSS from another thread, so synchronous peaks are seen. */
function startSampler(): { reset(): void; peak(): number; stop(): Promise<number> } {
  const shared = new SharedArrayBuffer(16);
  const flag = new Int32Array(shared, 0, 1);
  const peak = new Float64Array(shared, 8, 1);
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const flag = new Int32Array(workerData, 0, 1);
     const peak = new Float64Array(workerData, 8, 1);
     while (Atomics.load(flag, 0) === 0) {
       const rss = process.memoryUsage.rss();
       if (rss > peak[0]) peak[0] = rss;
       Atomics.wait(flag, 0, 0, 0.5);
     }`,
    { eval: true, workerData: shared },
  );
  return {
    reset: () => {
      peak[0] = 0;
    },
    peak: () => peak[0]!,
    stop: () => {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      return worker.terminate();
    },
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function main(): Promise<void> {
  const [variant, bytesArg, runsArg, drain] = process.argv.slice(2) as [DirectVariant, string, string, string];
  if (!gc) throw new Error('run with --expose-gc');
  const handler = variant === 'ours' ? oursHandler(drain) : altHandler(drain, variant === 'alt-nodehash');
  const event = await buildEvent(Number(bytesArg));
  // middy's multipart parser replaces event.body: every call gets its own shallow copy.
  const once = async (): Promise<number> => {
    const started = performance.now();
    const res = await handler({ ...event }, context());
    const ms = performance.now() - started;
    if (res.statusCode !== 200) throw new Error(`${variant}: HTTP ${res.statusCode} ${res.body.slice(0, 200)}`);
    return ms;
  };
  await once();
  await once(); // warm-up: JIT, keep-alive connection

  const sampler = startSampler();
  const peaks: number[] = [];
  for (let i = 0; i < 3; i++) {
    await settle();
    const baseline = process.memoryUsage.rss();
    sampler.reset();
    await once();
    peaks.push(Math.max(0, sampler.peak() - baseline));
  }
  await sampler.stop();

  const timesMs: number[] = [];
  for (let i = 0; i < Number(runsArg); i++) timesMs.push(await once());
  process.stdout.write(`RESULT ${JSON.stringify({ timesMs, peakExtraBytes: peaks })}\n`);
  process.exit(0);
}

await main();
