/**
 * Submitting a file: build + hash + sign + send to a local drain server.
 * OURS (createIvaClient, body hashed and sent as pieces) against the obvious
 * alternative (form-data + the official @volcengine/openapi Signer), each case in a
 * fresh child process so its peak RSS is its own.
 */
import { fileURLToPath } from 'node:url';
import { median, runCase as runChild, startDrain, type BenchTable } from './harness';
import type { Variant } from './signer-case';

interface CaseResult {
  timesMs: number[];
  baselineRssKb: number;
  peakRssKb: number;
}

const CASE = fileURLToPath(new URL('./signer-case.ts', import.meta.url));

const VARIANTS: Array<{ id: Variant; label: string }> = [
  { id: 'ours', label: 'ours: createIvaClient, pieces hashed in place' },
  { id: 'sdk', label: 'alt: form-data + SDK Signer(FormData)' },
  { id: 'sdk-nodehash', label: 'alt: form-data + SDK Signer, node sha256' },
];

async function runCase(variant: Variant, bytes: number, runs: number, url: string): Promise<CaseResult> {
  const stdout = await runChild(CASE, [variant, String(bytes), String(runs), url]);
  return JSON.parse(stdout.trim().split('\n').pop()!) as CaseResult;
}

export async function benchSigner(
  options: { sizesMb?: number[]; runs?: (mb: number) => number } = {},
): Promise<BenchTable> {
  const sizes = options.sizesMb ?? [4, 50];
  const runsFor = options.runs ?? ((mb: number) => (mb <= 4 ? 15 : 5));
  const drain = await startDrain();
  const url = drain.url;
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
    await drain.close();
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
