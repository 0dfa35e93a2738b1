/**
 * Direct multipart submission through the whole Lambda handler (API Gateway event in,
 * IVA-shaped answer out), posting to a local drain server that checks each body
 * against its X-Content-Sha256:
 *   ours — functions/direct-submit (busboy views of the one decoded buffer, hashed and
 *          sent in place by lib/iva);
 *   alt  — middy + @middy/http-multipart-body-parser, form-data, the official
 *          @volcengine/openapi Signer, http.request.
 * Each case runs in a fresh child process (`tsx bench/direct-submit.ts` prints the table).
 */
import { fileURLToPath } from 'node:url';
import type { DirectVariant } from './direct-submit-case';
import { median, runCase as runChild, startDrain, type BenchTable } from './harness';

const CASE = fileURLToPath(new URL('./direct-submit-case.ts', import.meta.url));

const VARIANTS: Array<{ id: DirectVariant; label: string }> = [
  { id: 'ours', label: 'ours: direct-submit handler' },
  { id: 'alt', label: 'alt: middy multipart parser + form-data + SDK Signer' },
  { id: 'alt-nodehash', label: 'alt, SDK Signer given a node:crypto sha256' },
];

export interface DirectBenchRow {
  sizeMiB: number;
  variant: DirectVariant;
  medianMs: number;
  peakExtraMiB: number;
  /** Peak extra memory over the file size. */
  peakPerFile: number;
  /** ours = 1; >1 means slower / hungrier than ours. */
  timeVsOurs: number;
  memoryVsOurs: number;
}

async function runCase(
  variant: DirectVariant,
  bytes: number,
  runs: number,
  url: string,
): Promise<{ timesMs: number[]; peakExtraBytes: number[] }> {
  const stdout = await runChild(CASE, [variant, String(bytes), String(runs), url], {
    nodeArgs: ['--expose-gc'],
    maxBuffer: 4 << 20,
    env: {
      ...process.env,
      ...MALLOC_ENV,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`${variant} ${bytes}: no result\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as { timesMs: number[]; peakExtraBytes: number[] };
}

/**
 * glibc raises its mmap threshold after large frees (up to 32 MB), so a freed buffer's
 * pages stay in RSS and the next request reuses them unseen. A fixed threshold keeps
 * every large buffer mmapped and returned on free: RSS then shows each request's own.
 */
const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' };

export async function runDirectSubmitBench(
  options: { sizesMiB?: number[]; runs?: number } = {},
): Promise<DirectBenchRow[]> {
  const sizes = options.sizesMiB ?? [1, 4, 16];
  const runs = options.runs ?? 15;
  // Every body is checked against its signed hash, so a wrong body cannot pass as fast.
  const drain = await startDrain({ verifyHash: true });
  const url = drain.url;
  const rows: DirectBenchRow[] = [];
  try {
    for (const mib of sizes) {
      const bytes = mib * 1024 * 1024;
      let ours: DirectBenchRow | undefined;
      for (const v of VARIANTS) {
        // Sequential: two shared cores, parallel cases would skew each other.
        const result = await runCase(v.id, bytes, runs, url);
        // The highest of three sampled requests: the conservative figure.
        const peak = Math.max(...result.peakExtraBytes);
        const row: DirectBenchRow = {
          sizeMiB: mib,
          variant: v.id,
          medianMs: median(result.timesMs),
          peakExtraMiB: peak / 1024 / 1024,
          peakPerFile: peak / bytes,
          timeVsOurs: 1,
          memoryVsOurs: 1,
        };
        if (v.id === 'ours') ours = row;
        else if (ours) {
          row.timeVsOurs = row.medianMs / ours.medianMs;
          row.memoryVsOurs = row.peakExtraMiB / Math.max(ours.peakExtraMiB, 0.01);
        }
        rows.push(row);
      }
    }
  } finally {
    await drain.close();
  }
  return rows;
}

export async function benchDirectSubmit(options: { sizesMiB?: number[]; runs?: number } = {}): Promise<BenchTable> {
  const runs = options.runs ?? 15;
  const rows = await runDirectSubmitBench({ ...options, runs });
  const label = (id: DirectVariant) => VARIANTS.find((v) => v.id === id)!.label;
  return {
    title: 'Direct multipart submission: API Gateway event → handler → local drain server',
    columns: ['size', 'variant', 'median ms', 'peak extra MiB', 'peak / file', 'time vs ours', 'memory vs ours'],
    rows: rows.map((r) => [
      `${r.sizeMiB} MiB`,
      label(r.variant),
      r.medianMs.toFixed(1),
      r.peakExtraMiB.toFixed(1),
      `${r.peakPerFile.toFixed(2)}x`,
      r.variant === 'ours' ? '-' : `${r.timeVsOurs.toFixed(2)}x`,
      r.variant === 'ours' ? '-' : `${r.memoryVsOurs.toFixed(1)}x`,
    ]),
    notes: [
      'Each case runs in a fresh `node --expose-gc --import tsx` child. The event (base64 multipart from undici FormData) exists before measuring, as it does in Lambda.',
      "Children run with MALLOC_MMAP_THRESHOLD_=131072 so freed large buffers leave RSS (glibc otherwise keeps them and hides the next request's allocations).",
      '"peak extra" = highest process RSS during one request (sampled every ~0.5 ms from a worker thread) minus RSS right before it, after GC; the largest of three requests.',
      `Time: median of ${runs} requests after two warm-up requests; includes sending to and the answer of a local drain server that verifies each body's X-Content-Sha256.`,
      '16 MiB is past what API Gateway can deliver (DIRECT_MAX_BYTES is raised in the bench): it shows the slope, i.e. what grows with the file and what is a fixed ~1-2 MiB of JS heap per request.',
      'ours: the base64 body decoded once; busboy file chunks are views of it, hashed and written to the socket in place; ledger in memory.',
    ],
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await runDirectSubmitBench();
  console.table(
    rows.map((r) => ({
      ...r,
      medianMs: +r.medianMs.toFixed(1),
      peakExtraMiB: +r.peakExtraMiB.toFixed(2),
      peakPerFile: +r.peakPerFile.toFixed(2),
      timeVsOurs: +r.timeVsOurs.toFixed(2),
      memoryVsOurs: +r.memoryVsOurs.toFixed(2),
    })),
  );
}
