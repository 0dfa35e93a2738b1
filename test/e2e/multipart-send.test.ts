/**
 * `iva-bridge send` of a file above its multipart threshold, against the local stack with
 * the REAL functions: the parts go to presigned UploadPart URLs, `…/complete` makes one
 * object, its ObjectCreated:CompleteMultipartUpload event reaches the intake, and IVA (the
 * sandbox) downloads exactly the file's bytes, once. On the embedded s3rver, and on the
 * Ceph RGW (a real S3) behind a tiny proxy that loses the answer of one part's first PUT
 * after S3 stored it: that part alone is sent again. Every answer of the API the CLI
 * reads is validated against docs/openapi.json.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../lib/cli/submit';
import { uniqueBucketName } from '../../local/servers/ceph';
import { closeServer, listen, urlOf } from '../../local/servers/http-close';
import { startLocalStack, type LocalStack } from '../../local/stack/index';
import { stackBackends } from '../support/e2e';
import { checkingFetch, type ResponseChecker, responseChecker } from '../support/openapi';

const MiB = 1024 * 1024;
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface Proxy {
  url: string;
  /** `METHOD partNumber` of every part request it saw. */
  parts: string[];
  close(): Promise<void>;
}

/** Forwards everything to `target` (Host kept: the signatures cover it); drops the answer of part `dropPart`'s first PUT. */
async function startProxy(target: string, dropPart: number): Promise<Proxy> {
  const to = new URL(target);
  const parts: string[] = [];
  let dropped = false;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const part = url.searchParams.get('partNumber');
    if (part) parts.push(`${req.method} ${part}`);
    const drop = !dropped && req.method === 'PUT' && part === String(dropPart);
    if (drop) dropped = true;
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (drop) {
          // S3 stored the part; its answer never reaches the client.
          answer.resume();
          answer.on('end', () => res.socket?.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  const address = await listen(server, 0);
  return { url: urlOf(address), parts, close: () => closeServer(server) };
}

/** The CLI in process, signing with the stack's client key; every API answer it reads is checked against docs/openapi.json. */
async function send(
  stack: LocalStack,
  checker: ResponseChecker,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const text = (c: string | Uint8Array) => (typeof c === 'string' ? c : Buffer.from(c).toString('utf8'));
  const code = await runCli(['send', ...args], {
    stdout: { write: (c: string | Uint8Array) => (stdout += text(c)) },
    stderr: { write: (c: string | Uint8Array) => (stderr += text(c)) },
    fetch: checkingFetch(stack.apiUrl, checker),
    env: {
      IVA_BRIDGE_API_URL: stack.apiUrl,
      IVA_BRIDGE_ACCESS_KEY_ID: stack.clientAccessKeyId,
      IVA_BRIDGE_SECRET_ACCESS_KEY: stack.clientSecretAccessKey,
    },
  });
  return { code, stdout, stderr };
}

describe.each(stackBackends())('iva-bridge send in parts on $name', ({ name, s3, enabled }) => {
  describe.skipIf(!enabled)(name, () => {
    let stack: LocalStack;
    let proxy: Proxy | undefined;
    let dir: string;
    const lines: string[] = [];

    beforeAll(async () => {
      const external = s3?.();
      if (external) proxy = await startProxy(external.endpoint, 2);
      stack = await startLocalStack({
        ...(external && proxy ? { s3: { ...external, endpoint: proxy.url }, bucket: uniqueBucketName('mp') } : {}),
        sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
        sqs: { visibilityTimeoutMs: 500, maxReceiveCount: 5, maxConcurrency: 4, batchingWindowMs: 20 },
        functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR' },
        log: (line) => lines.push(line),
      });
      dir = await mkdtemp(join(tmpdir(), 'iva-mp-'));
    }, 90_000);

    afterAll(async () => {
      await stack?.close();
      await proxy?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('sends 4 parts, completes once, and IVA gets the exact bytes once', async () => {
      const task = `mp-${randomBytes(3).toString('hex')}`;
      const bytes = randomBytes(15 * MiB + 4321);
      const file = join(dir, 'long.mp4');
      await writeFile(file, bytes);
      const checker = responseChecker();
      const run = await send(stack, checker, [
        file,
        '--task-id',
        task,
        '--multipart-threshold',
        '6MiB',
        '--part-size',
        '5MiB',
        '--wait',
        '--json',
      ]);
      expect(run.code, `${run.stderr}${run.stdout}`).toBe(0);
      const line = JSON.parse(run.stdout.trim()) as { route: string; status: string; submissionId: string };
      expect(line).toMatchObject({ route: 'multipart', status: 'completed' });
      // POST /v1/uploads (the part plan), …/complete, and --wait's GET /v1/submissions/{id}.
      expect(checker.checked).toBeGreaterThanOrEqual(3);

      await stack.sandbox?.callbacksSettled();
      const atIva = stack.sandbox!.submissions.filter((s) => s.taskId === task);
      expect(atIva).toHaveLength(1);
      expect(atIva[0]).toMatchObject({ source: 'url', size: bytes.length, sha256: sha(bytes) });
      expect(lines.some((l) => l.includes('CompleteMultipartUpload') && l.includes(task))).toBe(true);
      if (proxy) {
        const puts = proxy.parts.filter((p) => p.startsWith('PUT '));
        expect(puts.sort()).toEqual(['PUT 1', 'PUT 2', 'PUT 2', 'PUT 3', 'PUT 4']);
      }
    }, 120_000);
  });
});
