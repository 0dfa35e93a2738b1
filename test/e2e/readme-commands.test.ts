/**
 * The README's "On one machine" commands work as printed: `npm start` runs (free ports, a
 * temporary state folder), then the README's shell block runs in the repository with
 * only the printed endpoint and the facts file's path swapped for this run's. Every
 * command must exit 0 (`set -e`), and its effects must show: the upload, the direct
 * submission, the large-file upload and the CLI's files all end completed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { StackInfo } from '../../local/stack/index';
import { signedApi } from '../support/openapi';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const hasAws = spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0;

/** The first ```sh block of the README's "On one machine: `npm start`" section. */
async function readmeBlock(): Promise<string> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## On one machine: `npm start`'), readme.indexOf('## Deploying to AWS'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('no sh block in the README section "On one machine"');
  return block;
}

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the README, followed as printed', () => {
  it('runs every command of "On one machine" against npm start', async () => {
    dir = await mkdtemp(join(tmpdir(), 'iva-bridge-readme-'));
    const jsonPath = join(dir, 'stack.json');
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(env))
      if (/^(IVA_|VOLC_|AWS_|CEPH_|LEDGER_TABLE|BUCKET_NAME|CALLBACK_|VITEST)/.test(name)) delete env[name];
    Object.assign(env, {
      IVA_BRIDGE_API_PORT: '0',
      IVA_BRIDGE_S3_PORT: '0',
      IVA_BRIDGE_IVA_PORT: '0',
      IVA_BRIDGE_DDB_PORT: '0',
      IVA_BRIDGE_EVENTS_PORT: '0',
      IVA_BRIDGE_AWS_PORT: '0',
      IVA_BRIDGE_STACK_JSON: jsonPath,
      IVA_BRIDGE_STATE_DIR: join(dir, 'state'),
      IVA_BRIDGE_SANDBOX_CALLBACK_DELAY_MS: '20',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    const child = spawn('npm', ['start', '--silent'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const end = Date.now() + 90_000;
      while (!existsSync(jsonPath)) {
        if (Date.now() > end) throw new Error('npm start did not write its facts file');
        await new Promise((r) => setTimeout(r, 100));
      }
      const info = JSON.parse(await readFile(jsonPath, 'utf8')) as StackInfo;
      expect(info.apiUrl.endsWith('/')).toBe(true);
      expect(output).toContain(`VOLC_ACCESSKEY=${info.sandboxAccessKeyId}`);

      let script = (await readmeBlock())
        .replaceAll('./.local/stack.json', jsonPath)
        .replaceAll('http://127.0.0.1:4569', info.s3Endpoint)
        .replaceAll('--out results/', `--out ${join(dir, 'results')}/`);
      // The aws CLI is the one command this repository does not install.
      if (!hasAws) script = script.replace(/^AWS_ACCESS_KEY_ID=.*\\\n.*\n/m, '');
      const run = spawnSync('bash', ['-e', '-c', script], {
        cwd: REPO_ROOT,
        env: { ...env, PATH: process.env.PATH },
        encoding: 'utf8',
        timeout: 180_000,
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain('iva-bridge send: 2/2 files completed');
      expect(run.stdout).toMatch(/"VideoID":"vid-/);

      // The upload, the direct submission and the ticketed upload complete as well.
      const listed = async () =>
        (
          (await (await signedApi(info)('v1/tasks/demo/submissions?limit=100')).json()) as {
            Items: { Source: string; Status: string }[];
          }
        ).Items;
      const wanted = hasAws ? ['api', 'api', 'api', 's3', 'upload'] : ['api', 'api', 'api', 'upload'];
      for (;;) {
        const items = await listed();
        const done = items.filter((i) => i.Status === 'completed').map((i) => i.Source);
        if (done.length >= wanted.length) {
          expect(done.sort()).toEqual(wanted);
          break;
        }
        if (Date.now() > end + 60_000) throw new Error(`not completed: ${JSON.stringify(items)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- npm start output ---\n${output.slice(-3000)}`);
    }
  }, 300_000);
});
