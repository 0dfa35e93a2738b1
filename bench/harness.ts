/**
 * What every benchmark here shares: the table it returns, a local drain server standing
 * in for IVA, the median, and running one case in a fresh child process (so each
 * case's peak memory is its own).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface BenchTable {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
}

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Drain {
  url: string;
  close(): Promise<void>;
}

const SUCCESS = JSON.stringify({ ResponseMetadata: { RequestId: 'drain' }, Result: { ImageID: 'img-drain' } });
const MISMATCH = JSON.stringify({
  ResponseMetadata: { RequestId: 'drain', Error: { Code: 'SignatureDoesNotMatch', Message: 'body hash mismatch' } },
});

/**
 * Reads every body and answers IVA's success shape. With `verifyHash` it also checks the
 * body against its X-Content-Sha256 (400 on a mismatch); that hashing is part of each
 * timed request, so a bench keeps the same choice run after run.
 */
export function startDrain(options: { verifyHash?: boolean } = {}): Promise<Drain> {
  const server: Server = createServer((req, res) => {
    const hash = options.verifyHash ? createHash('sha256') : undefined;
    if (hash) req.on('data', (chunk: Buffer) => hash.update(chunk));
    else req.resume();
    req.on('end', () => {
      const ok = !hash || hash.digest('hex') === req.headers['x-content-sha256'];
      res.writeHead(ok ? 200 : 400, { 'Content-Type': 'application/json' });
      res.end(ok ? SUCCESS : MISMATCH);
    });
  });
  // Longer than any case's gap between runs, so a keep-alive socket is never closed under it.
  server.keepAliveTimeout = 120_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface CaseOptions {
  /** Node flags before `--import tsx`. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  maxBuffer?: number;
}

/**
 * Runs `node [nodeArgs] --import tsx caseFile ...args` from the repo root; resolves its
 * stdout. Settles on the case's exit, not on its pipes closing: execFile waited for every
 * holder of the stdout/stderr pipes to close them, so a process the case left behind kept
 * `npm run bench backlog` waiting after the case had printed its result and exited. The
 * case runs in a process group of its own, killed whole on timeout and after its exit.
 */
export function runCase(caseFile: string, args: string[], options: CaseOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', caseFile, ...args], {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.env ? { env: options.env } : {}),
    });
    const maxBuffer = options.maxBuffer ?? 1 << 20;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < maxBuffer) stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-64 * 1024);
    });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      killGroup();
      reject(new Error(`${args.join(' ')}: timed out after 600 s\n${stderr}`));
    }, 600_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    let settled = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      killGroup();
      child.stdout.destroy();
      child.stderr.destroy();
      if (code !== 0) reject(new Error(`${args.join(' ')}: exited ${code ?? signal}\n${stderr}`));
      else resolve(stdout);
    };
    // Normally the pipes close right after the exit; if something of the case's still
    // holds them, give them 2 s to deliver what the case wrote, then stop waiting.
    child.on('close', settle);
    child.on('exit', (code, signal) => {
      setTimeout(() => settle(code, signal), 2000).unref();
    });
  });
}
