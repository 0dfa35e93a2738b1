/**
 * The client library's retry and redirect rules against real HTTP servers on 127.0.0.1
 * that misbehave on purpose (the local stack cannot drop an answer after doing the work).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
