/**
 * Upload: a 1 GiB file to the local stack's S3 by `iva-bridge send` (a multipart upload,
 * and for comparison one streamed PUT) and by `aws s3 cp` (the AWS CLI), in one run:
 * throughput and peak RSS, as ratios to the AWS CLI. bench/upload-case.ts does the work
 * in a child process; it needs GNU time (/usr/bin/time) and the AWS CLI
 * (`apt-get install awscli`; AWS_CLI=path picks another one).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, runCase, type BenchTable } from './harness';

const CASE = fileURLToPath(new URL('./upload-case.ts', import.meta.url));
const GiB = 1024 ** 3;

interface Measured {
  variant: string;
  seconds: number;
  peakRssKb: number;
}

/** The AWS CLI to compare with: AWS_CLI, else Debian's v2 at /usr/bin/aws, else `aws` on PATH. */
function awsCli(): { bin: string; version: string } {
  for (const bin of [process.env.AWS_CLI, '/usr/bin/aws', 'aws']) {
    if (!bin) continue;
    const out = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (out.status === 0) return { bin, version: (out.stdout || out.stderr).trim().split(' ')[0] ?? bin };
  }
  throw new Error('no AWS CLI found: sudo apt-get install -y awscli (or set AWS_CLI)');
}

export async function benchUpload(size = GiB, runs = 3): Promise<BenchTable> {
  const aws = awsCli();
  const stdout = await runCase(CASE, [String(size), String(runs), aws.bin], {
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    nodeArgs: ['--openssl-legacy-provider'],
    maxBuffer: 4 << 20,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`upload: no result\n${stdout.slice(-2000)}`);
  const { results } = JSON.parse(line.slice('RESULT '.length)) as { results: Measured[] };
  const of = (variant: string) => {
    const rows = results.filter((r) => r.variant === variant);
    return {
      seconds: median(rows.map((r) => r.seconds)),
      peakMb: Math.max(...rows.map((r) => r.peakRssKb)) / 1024,
    };
  };
  const baseline = of('aws');
  const label: Record<string, string> = {
    send: 'ours: iva-bridge send (multipart, 16 MiB parts, 4 at a time)',
    'send-single-put': 'ours: iva-bridge send --multipart-threshold above the file (one PUT)',
    aws: `aws s3 cp (${aws.version}, 8 MiB parts, 10 at a time)`,
  };
  const rows = ['send', 'send-single-put', 'aws'].map((variant) => {
    const m = of(variant);
    const mbps = size / 1024 / 1024 / m.seconds;
    return [
      label[variant] ?? variant,
      `${(size / GiB).toFixed(size % GiB ? 2 : 0)} GiB`,
      m.seconds.toFixed(2),
      mbps.toFixed(0),
      m.peakMb.toFixed(0),
      `${(baseline.seconds / m.seconds).toFixed(2)}x`,
      `${(m.peakMb / baseline.peakMb).toFixed(2)}x`,
    ];
  });
  return {
    title: 'Upload a large file to the local S3: iva-bridge send vs aws s3 cp',
    columns: ['variant', 'size', 'median s', 'MiB/s', 'peak RSS MB', 'speed vs aws', 'RSS vs aws'],
    rows,
    notes: [
      `Runs: ${runs} of each variant, alternating, each a fresh process under GNU time (elapsed, max RSS); the median time, the largest peak.`,
      "Against `npm start`'s stack on this machine: s3rver (the embedded S3, writing parts to disk and joining them at completion) and the real functions. Times include process start (node + tsx for ours, Python for aws).",
      'After each send, the run waits until the intake has handed the object to the IVA sandbox, so that its work (a copy to pinned/, IVA downloading 1 GiB) does not overlap the next timed run; aws s3 cp writes outside incoming/.',
      'Goal: multipart send at least as fast as aws s3 cp, under 150 MB peak RSS.',
    ],
  };
}
