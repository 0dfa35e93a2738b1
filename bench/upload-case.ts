/**
 * One upload run (a child process of bench/upload.ts): the local stack of `npm start`
 * (its embedded S3, s3rver, and the real functions), a file of SIZE bytes generated into
 * a temporary folder (deleted at the end), then each variant R times, alternating, each a
 * fresh process under GNU time (elapsed seconds and peak RSS):
 *
 * - `iva-bridge send FILE` (the CLI, as a user runs it: a multipart upload above 64 MiB);
 * - the same with a threshold above the file: one streamed PUT;
 * - `aws s3 cp FILE s3://BUCKET/bench/…` to the same S3 (the AWS CLI's own multipart
 *   upload, 8 MiB parts, 10 at a time by default).
 *
 * After each `send`, the run waits until the intake has handed the object to the IVA
 * sandbox (which downloads it), so that work never overlaps the next timed run. The AWS
 * CLI's copies go outside `incoming/` (no intake). Prints `RESULT {json}`.
 * Args: SIZE RUNS AWS_BIN
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalStack } from '../local/stack/index';

const [sizeArg = String(1024 ** 3), runsArg = '3', awsBin = 'aws'] = process.argv.slice(2);
const size = Number(sizeArg);
const runs = Number(runsArg);
const BIN = fileURLToPath(new URL('../bin/iva-bridge.mjs', import.meta.url));

interface Measured {
  variant: string;
  seconds: number;
  peakRssKb: number;
}

/** `cmd args` under /usr/bin/time: its elapsed seconds and peak RSS (KiB), or the failure. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; peakRssKb: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIMED %e %M', cmd, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = /TIMED ([\d.]+) (\d+)/.exec(err);
      if (code !== 0 || !line)
        return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${out.slice(-2000)}\n${err.slice(-2000)}`));
      resolve({ seconds: Number(line[1]), peakRssKb: Number(line[2]) });
    });
  });
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = 8 * 1024 * 1024;
  for (let written = 0; written < bytes; written += chunk) {
    const piece = randomBytes(Math.min(chunk, bytes - written));
    if (!out.write(piece)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

const stack = await startLocalStack({
  ports: { api: 0, s3: 0, iva: 0, dynamodb: 0, eventBridge: 0, aws: 0 },
  sandbox: { callbackDelayMs: 20 },
  functionEnv: { POWERTOOLS_LOG_LEVEL: 'SILENT', IVA_TIMEOUT_MS: '120000' },
  log: () => undefined,
  functionOutput: () => undefined,
});
const sandbox = stack.sandbox;
if (!sandbox) throw new Error('no sandbox');
const dir = await mkdtemp(join(tmpdir(), 'iva-bench-upload-'));
const results: Measured[] = [];
try {
  const file = join(dir, 'bench.mp4');
  await writeRandomFile(file, size);
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(base)) if (/^(IVA_|AWS_|VOLC_)/.test(name)) delete base[name];
  const sendEnv = {
    ...base,
    IVA_BRIDGE_API_URL: stack.apiUrl,
    IVA_BRIDGE_ACCESS_KEY_ID: stack.clientAccessKeyId,
    IVA_BRIDGE_SECRET_ACCESS_KEY: stack.clientSecretAccessKey,
  };
  const awsEnv = {
    ...base,
    AWS_ACCESS_KEY_ID: stack.s3AccessKeyId,
    AWS_SECRET_ACCESS_KEY: stack.s3SecretAccessKey,
    AWS_DEFAULT_REGION: stack.s3Region,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  let n = 0;
  const send = async (variant: string, extra: string[]): Promise<void> => {
    const task = `bench-upload-${++n}`;
    const m = await timed(process.execPath, [BIN, 'send', file, '--task-id', task, '--json', ...extra], sendEnv);
    results.push({ variant, ...m });
    // The intake's work (pin copy, IVA's download) must not overlap the next timed run.
    const deadline = Date.now() + 10 * 60_000;
    while (!sandbox.submissions.some((s) => s.taskId === task)) {
      if (Date.now() > deadline) throw new Error(`${task}: the intake did not reach IVA within 10 min`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  for (let i = 0; i < runs; i++) {
    await send('send', []);
    await send('send-single-put', ['--multipart-threshold', `${size + 1}`]);
    const m = await timed(
      awsBin,
      [
        's3',
        'cp',
        file,
        `s3://${stack.bucket}/bench/run-${i}.bin`,
        '--endpoint-url',
        stack.s3Endpoint,
        '--only-show-errors',
      ],
      awsEnv,
    );
    results.push({ variant: 'aws', ...m });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
  await stack.close();
}
process.stdout.write(`RESULT ${JSON.stringify({ size, runs, results })}\n`);
process.exit(0);
