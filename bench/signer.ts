/**
 * Submitting a file: build + hash + sign + send to a local drain server.
 * OURS (createIvaClient, body hashed and sent as pieces) against the obvious
 * alternative (form-data + the official @volcengine/openapi Signer), each case in a
 * fresh child process so its peak RSS is its own.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Variant } from './signer-case';

export interface BenchTable {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
}

interface CaseResult {
  timesMs: number[];
  baselineRssKb: number;
  peakRssKb: number;
}

const CASE = fileURLToPath(new URL('./signer-case.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const VARIANTS: Array<{ id: Variant; label: string }> = [
  { id: 'ours', label: 'ours: createIvaClient, pieces hashed in place' },
  { id: 'sdk', label: 'alt: form-data + SDK Signer(FormData)' },
  { id: 'sdk-nodehash', label: 'alt: form-data + SDK Signer, node sha256' },
];

/** Reads and discards every body, answers IVA's success shape. */
function startDrain(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ResponseMetadata: { RequestId: 'drain' }, Result: { ImageID: 'img-drain' } }));
    });
  });
  // Longer than any case's gap between runs, so ours' keep-alive socket is never closed under it.
  server.keepAliveTimeout = 120_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function runCase(variant: Variant, bytes: number, runs: number, url: string): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', CASE, variant, String(bytes), String(runs), url], { cwd: ROOT, timeout: 600_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${variant} ${bytes}: ${error.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as CaseResult);
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function benchSigner(options: { sizesMb?: number[]; runs?: (mb: number) => number } = {}): Promise<BenchTable> {
  const sizes = options.sizesMb ?? [4, 50];
  const runsFor = options.runs ?? ((mb: number) => (mb <= 4 ? 15 : 5));
  const server = await startDrain();
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const rows: string[][] = [];
  try {
    for (const mb of sizes) {
      const bytes = mb * 1024 * 1024;
      let ours: { ms: number; mem: number } | undefined;
      for (const variant of VARIANTS) {
        // Sequential on purpose: two cores, and parallel cases would skew each other.
        const result = await runCase(variant.id, bytes, runsFor(mb), url);
        const ms = median(result.timesMs);
        const mem = (result.peakRssKb - result.baselineRssKb) / 1024;
        if (variant.id === 'ours') ours = { ms, mem };
        rows.push([
          `${mb} MB`,
          variant.label,
          ms.toFixed(1),
          mem.toFixed(1),
          ours ? `${(ms / ours.ms).toFixed(2)}x` : '-',
          ours ? (ours.mem > 0.5 ? `${(mem / ours.mem).toFixed(1)}x` : `+${(mem - ours.mem).toFixed(1)} MB`) : '-',
        ]);
      }
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return {
    title: 'Submit one file: build + hash + sign + send to a local drain server',
    columns: ['size', 'variant', 'median ms', 'peak RSS Δ MB', 'time vs ours', 'memory vs ours'],
    rows,
    notes: [
      'Each case runs in a fresh `node --import tsx` child; "peak RSS Δ" = maxRSS after the runs minus maxRSS once modules are loaded and the file is in memory.',
      `Runs per case: ${sizes.map((mb) => `${mb} MB × ${runsFor(mb)}`).join(', ')} (median), after one untimed warm-up run.`,
      '"SDK Signer(FormData)" is what @volcengine/openapi\'s own Service does: the Signer calls form.getBuffer() and hashes with crypto-js. "node sha256" gives it bodySha256 from node:crypto over form.getBuffer() instead.',
    ],
  };
}
