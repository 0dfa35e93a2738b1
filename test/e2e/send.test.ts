/**
 * `iva-bridge send` as a new user runs it against the local stack: the real bin, found
 * through `.local/stack.json` (what `npm start` writes), one small image, one 8 MB video
 * (over the direct limit: the upload route) and a folder of 50 mixed files, with
 * `--wait --out`. Then the same with IVA throttling and dropping connections: nothing is
 * submitted twice. Also `status`, `list`, `wait` and `result` on what was sent.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../lib/cli/submit';
import { startLocalStack, type LocalStack } from '../../local/stack/index';

const BIN = fileURLToPath(new URL('../../bin/iva-bridge.mjs', import.meta.url));
const sha = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Line {
  file: string;
  ok: boolean;
  submissionId?: string;
  route?: string;
  status: string;
  dataId?: string;
  result?: string;
  error?: { code: string; message: string };
}

let stack: LocalStack;
let dir: string;
const stackLog: string[] = [];

/** The CLI as a child process in `dir`, with no connection settings of this process's own. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('IVA_') && !k.startsWith('VOLC_')) env[k] = v;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: dir, env: { ...env, ...extraEnv }, timeout: 170_000, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({
          code: typeof code === 'number' ? code : 1,
          stdout: stdout.toString('utf8'),
          stderr: stderr.toString('utf8'),
        });
      },
    );
  });
}

/** `iva-bridge send --wait --json` of the image, the video and the folder makeFiles wrote under `root`. */
function sendAll(root: string, task: string, out: string, ...extra: string[]): Promise<Run> {
  const files = [join(root, 'cat.jpg'), join(root, 'clip.mp4'), join(root, 'folder')];
  return cli(['send', ...files, '--task-id', task, '--wait', '--out', out, '--json', ...extra]);
}

/** The same commands in this process (faster than a child per call): runCli with captured output. */
async function inProcess(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const decoder = (chunk: string | Uint8Array) =>
    typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  const code = await runCli(args, {
    stdout: { write: (c: string | Uint8Array) => (stdout += decoder(c)) },
    stderr: { write: (c: string | Uint8Array) => (stderr += decoder(c)) },
    env: {
      IVA_BRIDGE_API_URL: stack.apiUrl,
      IVA_BRIDGE_ACCESS_KEY_ID: stack.clientAccessKeyId,
      IVA_BRIDGE_SECRET_ACCESS_KEY: stack.clientSecretAccessKey,
      ...extraEnv,
    },
  });
  return { code, stdout, stderr };
}

const lines = (run: Run): Line[] =>
  run.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);

/** What status, list, resolve and resubmit print: one submission view per line. */
const views = (run: Run): Record<string, unknown>[] =>
  run.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** One small image, one 8 MB video and a folder of 50 mixed images and videos. */
async function makeFiles(root: string): Promise<string[]> {
  await mkdir(join(root, 'folder', 'nested'), { recursive: true });
  await writeFile(join(root, 'cat.jpg'), randomBytes(20_000));
  await writeFile(join(root, 'clip.mp4'), randomBytes(8 * 1024 * 1024));
  const names: string[] = ['cat.jpg', 'clip.mp4'];
  for (let i = 0; i < 50; i++) {
    const ext = ['jpg', 'png', 'webp', 'mp4', 'mov'][i % 5] as string;
    const sub = i % 7 === 0 ? 'folder/nested' : 'folder';
    // Mostly small; every tenth one over the direct limit (upload route).
    const size = i % 10 === 3 ? 4_700_000 + i * 1000 : 500 + i * 3000;
    const name = `${sub}/f${String(i).padStart(2, '0')}.${ext}`;
    await writeFile(join(root, name), randomBytes(size));
    names.push(name);
  }
  await writeFile(join(root, 'folder', 'notes.txt'), 'not media');
  return names;
}

beforeAll(async () => {
  stack = await startLocalStack({
    sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
    sqs: { visibilityTimeoutMs: 500, maxReceiveCount: 5, maxConcurrency: 4, batchingWindowMs: 20 },
    // IVA_TIMEOUT_MS: the sandbox answers a Source=url submission only after downloading
    // the file; on a CPU-starved machine an 8 MB download can outlast the default 20 s,
    // and a timed-out call IVA already accepted is the intake's ambiguous case (IVA may or
    // may not have it), not what this file tests: the client never sending twice.
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR', IVA_TIMEOUT_MS: '55000' },
    log: (line) => stackLog.push(line),
  });
  dir = await mkdtemp(join(tmpdir(), 'iva-send-'));
  await mkdir(join(dir, '.local'));
  await writeFile(join(dir, '.local', 'stack.json'), JSON.stringify(stack.info, null, 2));
}, 60_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('iva-bridge send against the local stack', () => {
  it('--help explains every option a first run needs', async () => {
    const run = await inProcess(['send', '--help']);
    expect(run.code).toBe(0);
    for (const option of ['--task-id', '--wait', '--out', '--concurrency', '--json', '--kind', '--api-url', '--stack'])
      expect(run.stdout).toContain(option);
    const main = await inProcess(['--help']);
    for (const command of ['send', 'status', 'list', 'wait', 'result']) expect(main.stdout).toContain(`  ${command} `);
  });

  it('sends an image, an 8 MB video and a folder of 50 mixed files with --wait --out: every result saved, exit 0', async () => {
    const root = join(dir, 'plain');
    const names = await makeFiles(root);
    const task = `send-${randomBytes(3).toString('hex')}`;
    const run = await sendAll(root, task, join(dir, 'results'), '--concurrency', '3');
    const out = lines(run);
    const sentLines = out.filter((l) => l.status !== 'skipped');
    expect(sentLines.filter((l) => !l.ok)).toEqual([]);
    expect(run.code, run.stderr).toBe(0);
    expect(sentLines).toHaveLength(52);
    expect(out.filter((l) => l.status === 'skipped').map((l) => l.file)).toEqual([join(root, 'folder', 'notes.txt')]);
    expect(sentLines.every((l) => l.ok && l.status === 'completed')).toBe(true);
    expect(sentLines.find((l) => l.file.endsWith('clip.mp4'))?.route).toBe('upload');
    expect(sentLines.find((l) => l.file.endsWith('cat.jpg'))?.route).toBe('direct');
    expect(sentLines.filter((l) => l.route === 'upload').length).toBe(6);

    // Each file reached IVA once, with its bytes; each saved result is IVA's callback body
    // (the sandbox records a delivery once its POST is answered: let the last ones land).
    await stack.sandbox?.callbacksSettled();
    const submissions = stack.sandbox!.submissions.filter((s) => s.taskId === task);
    expect(submissions).toHaveLength(52);
    for (const name of names) {
      const bytes = await readFile(join(root, name));
      const matches = submissions.filter((s) => s.sha256 === sha(bytes));
      expect(matches, name).toHaveLength(1);
      const line = sentLines.find((l) => l.file === join(root, name));
      expect(line?.dataId, name).toBe(matches[0]?.dataId);
      const saved = await readFile(join(dir, line!.result!), 'utf8');
      const delivered = stack.sandbox!.callbacks.find((c) => c.dataId === matches[0]?.dataId);
      expect(saved, name).toBe(delivered?.body);
    }
    expect((await readdir(join(dir, 'results'))).length).toBe(52);
  }, 180_000);

  it('with IVA throttling and dropping connections, submits nothing twice', async () => {
    const root = join(dir, 'faults');
    const names = await makeFiles(root);
    const task = `faults-${randomBytes(3).toString('hex')}`;
    stack.sandbox!.injectFaults(
      { count: 6, code: 'FlowLimitExceeded', httpStatus: 429 },
      { count: 3, drop: true },
      { count: 4, code: 'ServiceUnavailable', httpStatus: 503 },
      { count: 3, drop: true },
    );
    const run = await sendAll(root, task, join(dir, 'results-faults'));
    const out = lines(run).filter((l) => l.status !== 'skipped');
    expect(out).toHaveLength(52);
    expect(stack.sandbox!.pendingFaults()).toEqual([]);
    const submissions = stack.sandbox!.submissions.filter((s) => s.taskId === task);
    for (const name of names) {
      const bytes = await readFile(join(root, name));
      const copies = submissions.filter((s) => s.sha256 === sha(bytes));
      const detail = JSON.stringify({
        line: out.find((l) => l.file === join(root, name)),
        copies: copies.map((c) => ({
          source: c.source,
          dataId: c.dataId,
          requestId: c.requestId,
          url: c.url?.split('?')[0],
        })),
        log: stackLog.filter((l) => l.includes(name.split('/').pop() as string)).slice(-30),
      });
      expect(copies.length, `${name}: ${detail}`).toBeLessThanOrEqual(1);
    }
    // Each file ends in exactly one state, and the exit code says whether all completed.
    const completed = out.filter((l) => l.ok);
    expect(completed.length + out.filter((l) => !l.ok).length).toBe(52);
    const notCompleted = out.filter((l) => !l.ok);
    const expectedCode = notCompleted.length === 0 ? 0 : notCompleted.every((l) => l.status === 'uncertain') ? 3 : 1;
    expect(run.code, run.stderr).toBe(expectedCode);
    for (const l of completed) expect(submissions.filter((s) => s.dataId === l.dataId)).toHaveLength(1);
  }, 180_000);

  it('status, list, wait and result read what was sent; errors are one line with the code', async () => {
    const root = join(dir, 'query');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'dog.jpg'), randomBytes(5000));
    const task = `query-${randomBytes(3).toString('hex')}`;
    const sent = await inProcess(['send', join(root, 'dog.jpg'), '--task-id', task, '--json']);
    expect(sent.code, sent.stderr).toBe(0);
    const id = lines(sent)[0]?.submissionId as string;

    const waited = await inProcess(['wait', id, '--timeout', '30']);
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ SubmissionId: id, Status: 'completed' });

    const status = await inProcess(['status', id]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ SubmissionId: id, TaskID: task });

    const list = await inProcess(['list', '--task-id', task, '--status', 'completed']);
    expect(list.code).toBe(0);
    expect(lines(list).map((l) => (l as unknown as { SubmissionId: string }).SubmissionId)).toEqual([id]);
    expect((await inProcess(['list', '--task-id', task, '--status', 'failed'])).stdout).toBe('');

    await stack.sandbox?.callbacksSettled();
    const result = await inProcess(['result', id]);
    expect(result.code).toBe(0);
    const dataId = (JSON.parse(status.stdout) as { ImageID: string }).ImageID;
    expect(result.stdout).toBe(stack.sandbox!.callbacks.find((c) => c.dataId === dataId)?.body);
    const saved = await inProcess(['result', id, '--out', join(dir, 'r.json')]);
    expect(saved.code).toBe(0);
    expect(await readFile(join(dir, 'r.json'), 'utf8')).toBe(result.stdout);

    const missing = await inProcess(['status', 'api_missing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^iva-bridge status: api_missing: SubmissionNotFound: .+ \[HTTP 404\]\n$/);
    const usage = await inProcess(['send', join(root, 'dog.jpg')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('iva-bridge send: --task-id is required (see --help)\n');
    const unreadable = await inProcess(['send', join(root, 'nope.jpg'), '--task-id', task]);
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toContain('ENOENT');
    const wrongKey = await inProcess([
      'status',
      id,
      '--api-url',
      stack.apiUrl,
      '--secret-access-key',
      'wrong-secret-123456',
    ]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('SignatureDoesNotMatch');
    expect(wrongKey.stderr).not.toContain('wrong-secret-123456');
    // The pre-signing configuration (an API URL and an API key, no access key): refused
    // before anything is sent, naming what to set, instead of a 403 MissingSignature from the API.
    const unsigned = await inProcess(['send', join(root, 'dog.jpg'), '--task-id', task], {
      IVA_BRIDGE_API_KEY: stack.apiKey,
      IVA_BRIDGE_ACCESS_KEY_ID: '',
      IVA_BRIDGE_SECRET_ACCESS_KEY: '',
    });
    expect(unsigned.code, unsigned.stdout).toBe(2);
    expect(unsigned.stderr).toContain('no client access key');
    expect(unsigned.stderr).toContain('IVA_BRIDGE_ACCESS_KEY_ID');
    expect(unsigned.stderr).not.toContain(stack.apiKey);
    const nowhere = await cli(['status', id], { IVA_BRIDGE_STACK_JSON: join(dir, 'absent.json') });
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain('npm start');
  }, 120_000);

  it('resolve, resubmit and list --status: the owner settles uncertain submissions from the command line', async () => {
    const root = join(dir, 'uncertain');
    await mkdir(root, { recursive: true });
    const task = `cli-uncertain-${randomBytes(3).toString('hex')}`;
    // Two direct sends and one by upload (over the direct limit), each answer lost before IVA
    // read the body: uncertain, and IVA has none of them.
    await writeFile(join(root, 'a.jpg'), randomBytes(2_000));
    await writeFile(join(root, 'b.jpg'), randomBytes(2_000));
    await writeFile(join(root, 'big.mp4'), randomBytes(4_800_000));
    stack.sandbox!.injectFaults({ count: 3, drop: true });
    const sent = await inProcess([
      'send',
      join(root, 'a.jpg'),
      join(root, 'b.jpg'),
      join(root, 'big.mp4'),
      '--task-id',
      task,
      '--json',
      '--wait',
      '--concurrency',
      '1',
    ]);
    expect(sent.code, sent.stderr).toBe(3);
    const byName = new Map(lines(sent).map((l) => [String(l.file).split('/').pop(), String(l.submissionId)]));
    const [a, b, big] = ['a.jpg', 'b.jpg', 'big.mp4'].map((n) => byName.get(n) ?? `missing ${n}`) as [
      string,
      string,
      string,
    ];

    const listed = await inProcess(['list', '--status', 'uncertain']);
    expect(listed.code).toBe(0);
    const uncertainIds = views(listed).map((v) => v['SubmissionId']);
    expect(uncertainIds).toEqual(expect.arrayContaining([a, b, big]));
    expect((await inProcess(['list'])).code).toBe(2);

    const failed = await inProcess(['resolve', a, '--as', 'failed', '--note', 'sent again by hand']);
    expect(failed.code, failed.stderr).toBe(0);
    expect(views(failed)[0]).toMatchObject({ SubmissionId: a, Status: 'failed', Resolution: { Action: 'failed' } });
    const again = await inProcess(['resolve', a, '--as', 'submitted']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/SubmissionNotUncertain/);
    expect((await inProcess(['resolve', b, '--as', 'maybe'])).code).toBe(2);

    // A direct submission's bytes are not kept: resubmit says so; an upload's object goes again.
    const direct = await inProcess(['resubmit', b]);
    expect(direct.code).toBe(1);
    expect(direct.stderr).toMatch(/ResubmitNeedsFile/);
    const upload = await inProcess(['resubmit', big, '--wait', '--timeout', '60']);
    expect(upload.code, upload.stderr).toBe(0);
    expect(views(upload)[0]).toMatchObject({ SubmissionId: big, Status: 'completed' });
    const atIva = stack.sandbox!.submissions.filter((s) => s.taskId === task);
    expect(atIva.map((s) => s.name)).toEqual(['big.mp4']);
  }, 120_000);
});
