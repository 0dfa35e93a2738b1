/**
 * The client library's retry and redirect rules against real HTTP servers on 127.0.0.1
 * that misbehave on purpose (the local stack cannot drop an answer after doing the work).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { createIvaBridgeClient, IvaBridgeError, resolveConnection } from '../../lib/client/index';
import { closeServer, listen, urlOf } from '../../local/servers/http-close';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

let dir: string;
const servers: Server[] = [];

async function serve(
  handler: (req: Seen, res: ServerResponse, n: number) => void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      handler(s, res, seen.length);
    });
  });
  servers.push(server);
  return { url: urlOf(await listen(server, 0)), seen };
}

const fast = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iva-client-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await closeServer(s);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('IvaBridgeClient', () => {
  it('retries a throttled or dropped POST with the same Idempotency-Key, and a 4xx not at all', async () => {
    const api = await serve((req, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' });
        res.end(JSON.stringify({ ResponseMetadata: { Error: { Code: 'FlowLimitExceeded', Message: 'slow down' } } }));
      } else if (n === 2) res.socket?.destroy();
      else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ SubmissionId: 'upl_1', Url: 'http://x', Method: 'PUT', Headers: {} }));
      }
    });
    const client = createIvaBridgeClient({ apiUrl: `${api.url}/prod`, apiKey: 'key-1', retry: fast });
    const ticket = await client.createUpload({ taskId: 't', kind: 'video', name: 'a.mp4', size: 10 });
    expect(ticket.SubmissionId).toBe('upl_1');
    expect(api.seen).toHaveLength(3);
    const keys = api.seen.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    expect(api.seen.every((s) => s.url === '/prod/v1/uploads' && s.headers['x-api-key'] === 'key-1')).toBe(true);

    const refusing = await serve((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ResponseMetadata: { RequestId: 'r-9', Error: { Code: 'InvalidKind', Message: 'Kind must be' } },
        }),
      );
    });
    const other = createIvaBridgeClient({ apiUrl: refusing.url, retry: fast });
    const error = await other.createUpload({ taskId: 't', kind: 'video', name: 'a', size: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IvaBridgeError);
    expect(error).toMatchObject({ code: 'InvalidKind', status: 400, requestId: 'r-9', retryable: false });
    expect(refusing.seen).toHaveLength(1);
  });

  it('follows a result redirect without sending the API key to S3', async () => {
    const s3 = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from([0xff, 0x00, 0x01]));
    });
    const api = await serve((_req, res) => {
      res.writeHead(303, {
        location: `${s3.url}/bucket/results/x?X-Amz-Signature=abc`,
        'x-iva-bridge-result-id': 'r.txt',
      });
      res.end('{}');
    });
    const client = createIvaBridgeClient({ apiUrl: api.url, apiKey: 'secret-api-key', retry: fast });
    const result = await client.getResult('api_1');
    expect([...result.bytes]).toEqual([0xff, 0x00, 0x01]);
    expect(result).toMatchObject({ resultId: 'r.txt', contentType: 'application/octet-stream' });
    expect(api.seen[0]?.url).toBe('/v1/submissions/api_1/result');
    expect(s3.seen[0]?.headers['x-api-key']).toBeUndefined();
  });

  it('re-sends a PUT whose answer was lost with If-None-Match: *, and takes 412 as already stored', async () => {
    const path = join(dir, 'clip.mp4');
    const bytes = randomBytes(300_000);
    await writeFile(path, bytes);
    const s3 = await serve((req, res, n) => {
      if (n === 1) res.socket?.destroy();
      else {
        res.writeHead(412);
        res.end('<Error><Code>PreconditionFailed</Code></Error>');
      }
    });
    const client = createIvaBridgeClient({ apiUrl: 'http://127.0.0.1:1', retry: fast });
    const progress: number[] = [];
    await client.putFile(
      {
        Url: `${s3.url}/b/k?sig=1`,
        Method: 'PUT',
        Headers: { 'Content-Type': 'video/mp4', 'x-amz-meta-iva-kind': 'video' },
      },
      path,
      bytes.length,
      { onProgress: (n) => progress.push(n) },
    );
    expect(s3.seen).toHaveLength(2);
    for (const seen of s3.seen) {
      expect(seen.headers['if-none-match']).toBe('*');
      expect(seen.headers['content-length']).toBe(String(bytes.length));
      expect(seen.headers['x-amz-meta-iva-kind']).toBe('video');
      expect(seen.body.equals(bytes)).toBe(true);
    }
    expect(progress.at(-1)).toBe(bytes.length);

    const expired = await serve((_req, res) => {
      res.writeHead(403);
      res.end('<Error><Code>AccessDenied</Code></Error>');
    });
    const error = await client
      .putFile({ Url: `${expired.url}/b/k`, Method: 'PUT', Headers: {} }, path, bytes.length)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(expired.seen).toHaveLength(1);
  });
});

describe('IvaBridgeClient multipart uploads', () => {
  it('sends the parts in parallel from their file ranges, retries only a failed part, refreshes an expired URL, completes once', async () => {
    const MiB = 1024 * 1024;
    const path = join(dir, 'big.mp4');
    const bytes = randomBytes(3 * MiB + 1234);
    await writeFile(path, bytes);
    const partSize = MiB;
    const partCount = 4;
    let part2Failures = 0;
    let part3Expired = 0;
    const s3 = await serve((req, res) => {
      const n = Number(new URL(req.url, 'http://x').searchParams.get('partNumber'));
      // Part 2's first PUT: the connection drops mid-answer. Part 3's first URL has expired.
      if (n === 2 && part2Failures++ === 0) return void res.socket?.destroy();
      if (n === 3 && req.url.includes('sig=old') && part3Expired++ === 0) {
        res.writeHead(403);
        return void res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      }
      res.writeHead(200, { etag: `"etag-${n}-${createHash('md5').update(req.body).digest('hex')}"` });
      res.end();
    });
    const partUrl = (n: number, sig: string) => ({
      PartNumber: n,
      Url: `${s3.url}/b/k?partNumber=${n}&uploadId=u1&sig=${sig}`,
      Size: Math.min(partSize, bytes.length - (n - 1) * partSize),
    });
    const later = new Date(Date.now() + 3600_000).toISOString();
    const api = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/v1/uploads')
        return void res.end(
          JSON.stringify({
            SubmissionId: 'upl_mp',
            Method: 'MULTIPART',
            UploadId: 'u1',
            PartSize: partSize,
            PartCount: partCount,
            // Only the first three URLs come with the plan; the fourth from …/parts.
            Parts: [1, 2, 3].map((n) => partUrl(n, 'old')),
            ExpiresAt: later,
            Key: 'incoming/t/upl_mp/big.mp4',
            Bucket: 'b',
          }),
        );
      if (req.url === '/v1/uploads/upl_mp/parts') {
        const { PartNumbers } = JSON.parse(req.body.toString()) as { PartNumbers: number[] };
        return void res.end(
          JSON.stringify({
            SubmissionId: 'upl_mp',
            UploadId: 'u1',
            Parts: PartNumbers.map((n) => partUrl(n, 'new')),
            ExpiresAt: later,
          }),
        );
      }
      res.end(JSON.stringify({ SubmissionId: 'upl_mp', Bucket: 'b', Key: 'k', Size: bytes.length, ETag: '"x-4"' }));
    });
    const client = createIvaBridgeClient({
      apiUrl: api.url,
      retry: fast,
      directMaxBytes: 1000,
      multipartThresholdBytes: 2 * MiB,
      partConcurrency: 3,
    });
    const progress: number[] = [];
    const retries: string[] = [];
    const sent = await client.sendFile({
      path,
      taskId: 't',
      onProgress: (n, total) => {
        expect(total).toBe(bytes.length);
        progress.push(n);
      },
      onRetry: (info) => retries.push(info.reason),
    });
    expect(sent).toEqual({ submissionId: 'upl_mp', route: 'multipart', kind: 'video' });

    // Every part's body is its exact range; parts 2 and 3 went twice, 1 and 4 once.
    const puts = s3.seen.map((r) => Number(new URL(r.url, 'http://x').searchParams.get('partNumber')));
    expect(puts.filter((n) => n === 1)).toHaveLength(1);
    expect(puts.filter((n) => n === 2)).toHaveLength(2);
    expect(puts.filter((n) => n === 3)).toHaveLength(2);
    expect(puts.filter((n) => n === 4)).toHaveLength(1);
    for (const r of s3.seen) {
      const n = Number(new URL(r.url, 'http://x').searchParams.get('partNumber'));
      if (r.body.length === 0) continue;
      expect(r.body.equals(bytes.subarray((n - 1) * partSize, n * partSize)), `part ${n}`).toBe(true);
      expect(r.headers['content-length']).toBe(String(Math.min(partSize, bytes.length - (n - 1) * partSize)));
    }
    expect(retries).toHaveLength(2);
    expect(retries.some((r) => r.startsWith('part 2: '))).toBe(true);
    expect(retries.some((r) => r.startsWith('part 3: S3 403'))).toBe(true);
    // Part 3 went again with a fresh URL, asked for with the fourth.
    expect(s3.seen.filter((r) => r.url.includes('partNumber=3')).map((r) => r.url.includes('sig=new'))).toEqual([
      false,
      true,
    ]);

    const calls = api.seen.map((r) => r.url);
    expect(calls[0]).toBe('/v1/uploads');
    expect(JSON.parse(api.seen[0]!.body.toString())).toMatchObject({ Multipart: true, Size: bytes.length });
    const completes = api.seen.filter((r) => r.url === '/v1/uploads/upl_mp/complete');
    expect(completes).toHaveLength(1);
    expect(completes[0]?.headers['idempotency-key']).toMatch(/-complete$/);
    const md5 = (n: number) =>
      createHash('md5')
        .update(bytes.subarray((n - 1) * partSize, n * partSize))
        .digest('hex');
    expect(JSON.parse(completes[0]!.body.toString())).toEqual({
      Parts: [1, 2, 3, 4].map((n) => ({ PartNumber: n, ETag: `"etag-${n}-${md5(n)}"` })),
    });
    expect(progress.at(-1)).toBe(bytes.length);
    expect(Math.max(...progress)).toBe(bytes.length);
  });

  it('stops at a part S3 refuses for good (404: aborted) without completing', async () => {
    const path = join(dir, 'gone.mp4');
    await writeFile(path, randomBytes(2 * 1024 * 1024 + 1));
    const s3 = await serve((_req, res) => {
      res.writeHead(404);
      res.end('<Error><Code>NoSuchUpload</Code></Error>');
    });
    const api = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          SubmissionId: 'upl_gone',
          Method: 'MULTIPART',
          UploadId: 'u',
          PartSize: 1024 * 1024,
          PartCount: 3,
          Parts: [1, 2, 3].map((n) => ({ PartNumber: n, Url: `${s3.url}/b/k?partNumber=${n}`, Size: 1 })),
          ExpiresAt: new Date(Date.now() + 3600_000).toISOString(),
          Key: 'k',
          Bucket: 'b',
        }),
      );
      expect(req.url).toBe('/v1/uploads');
    });
    const client = createIvaBridgeClient({
      apiUrl: api.url,
      retry: fast,
      directMaxBytes: 1000,
      multipartThresholdBytes: 1024 * 1024,
      partConcurrency: 1,
    });
    const error = await client.sendFile({ path, taskId: 't' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NoSuchUpload', status: 404 });
    expect(s3.seen).toHaveLength(1);
    expect(api.seen).toHaveLength(1);
  });
});

describe('resolveConnection', () => {
  it('takes flags, then the environment, then .local/stack.json, and says what to do without any', async () => {
    const cwd = join(dir, 'conn');
    await mkdir(join(cwd, '.local'), { recursive: true });
    await writeFile(join(cwd, '.local', 'stack.json'), JSON.stringify({ apiUrl: 'http://local:3000', apiKey: 'lk' }));
    const env = { IVA_BRIDGE_API_URL: 'http://env', IVA_BRIDGE_API_KEY: 'ek' };
    expect(await resolveConnection({ apiUrl: 'http://flag', apiKey: 'fk', env, cwd })).toMatchObject({
      apiUrl: 'http://flag',
      apiKey: 'fk',
      source: 'flags',
    });
    expect(await resolveConnection({ env, cwd })).toMatchObject({ apiUrl: 'http://env', apiKey: 'ek', source: 'env' });
    expect(await resolveConnection({ env: {}, cwd })).toMatchObject({
      apiUrl: 'http://local:3000',
      apiKey: 'lk',
      source: 'local',
    });
    const none = await resolveConnection({ env: { IVA_BRIDGE_STACK_JSON: join(dir, 'absent.json') }, cwd }).catch(
      (e: unknown) => e,
    );
    expect(none).toMatchObject({ code: 'NoConnection' });
    expect((none as Error).message).toContain('--stack');
  });
});

describe('the package export', () => {
  it('imports as iva-bridge/client from plain Node.js', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "const m = await import('iva-bridge/client'); console.log(typeof m.createIvaBridgeClient, typeof m.resolveConnection, m.FINAL_STATUSES.has('completed'))",
        ],
        { cwd: root, timeout: 30_000 },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    expect(out.trim()).toBe('function function true');
  });
});
