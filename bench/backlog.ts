/**
 * Backlog: N uploads dropped into S3 at once, against an IVA sandbox limited to R
 * submissions a second (token bucket, burst R), through the whole local stack (SQS
 * emulation with batches of 10 and 4 invocations at once, object-created, dynalite).
 * Reports the time until IVA holds all N against the ideal N/R, the IVA calls spent
 * and how many of them were 429s, and the dead letters. Three variants: the limit known
 * (`-c ivaRateLimit=R`: one schedule of send slots shared by every container), the
 * adaptive pacer learning it from 429s (IVA_PACING=on), and unpaced (the IVA client's
 * own retries only). Each run in a fresh child process.
 */
import { fileURLToPath } from 'node:url';
import { runCase, type BenchTable } from './harness';

const CASE = fileURLToPath(new URL('./backlog-case.ts', import.meta.url));

interface BacklogResult {
  n: number;
  rate: number;
  uploadedMs: number;
  drainMs: number;
  submitted: number;
  calls: number;
  throttled: number;
  deadLetters: number;
}

type Variant = 'known' | 'learnt' | 'unpaced';
const VARIANTS: Record<Variant, string> = {
  known: 'limit known (ivaRateLimit=R)',
  learnt: 'learnt (IVA_PACING=on)',
  unpaced: 'unpaced',
};

async function run(n: number, rate: number, variant: Variant): Promise<BacklogResult> {
  const stdout = await runCase(CASE, [String(n), String(rate)], {
    env: {
      ...process.env,
      IVA_PACING: variant === 'learnt' ? 'on' : 'off',
      IVA_RATE_LIMIT: variant === 'known' ? String(rate) : '',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    maxBuffer: 4 << 20,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`backlog ${n}/${rate}: no result\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice('RESULT '.length)) as BacklogResult;
}

export async function benchBacklog(): Promise<BenchTable> {
  // R below what the local stack itself drains on a 2-core machine (≈ 4-5 uploads/s with
  // callbacks), so IVA's limit, not the machine, sets the pace.
  const cases: Array<[number, number]> = [
    [60, 3],
    [120, 3],
  ];
  const rows: string[][] = [];
  for (const [n, rate] of cases) {
    for (const variant of Object.keys(VARIANTS) as Variant[]) {
      const r = await run(n, rate, variant);
      const ideal = n / rate;
      rows.push([
        VARIANTS[variant],
        `${n} @ ${rate}/s`,
        ideal.toFixed(1),
        (r.drainMs / 1000).toFixed(1),
        (r.drainMs / 1000 / ideal).toFixed(2),
        String(r.calls),
        `${r.throttled} (${((100 * r.throttled) / Math.max(1, r.calls)).toFixed(1)}%)`,
        String(r.deadLetters),
        `${r.submitted}/${n}`,
      ]);
    }
  }
  return {
    title: 'Backlog: N uploads against IVA limited to R submissions/s',
    columns: [
      'variant',
      'N @ R',
      'ideal N/R s',
      'drain s',
      'drain ÷ ideal',
      'IVA calls',
      '429s (% of calls)',
      'DLQ',
      'at IVA',
    ],
    rows,
    notes: [
      'drain: from the first PUT until the sandbox holds all N (uploads run 16 at a time and overlap the drain).',
      'Goal: drain within 1.2× N/R, no dead letters, 429s under 5% of calls.',
      'Local stack in one process on this machine: SQS emulation (batches of 10, 4 invocations at once), IVA_CONCURRENCY 4.',
    ],
  };
}
