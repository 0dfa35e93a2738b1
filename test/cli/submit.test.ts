/** Runs the real `bin/iva-bridge.mjs` (through tsx) against the fake gateway. */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ivaError, startFakeGateway, type FakeGateway } from '../support/fake-gateway';

const BIN = fileURLToPath(new URL('../../bin/iva-bridge.mjs', import.meta.url));
const AK = 'AKLTcliTestKey';
const SK = 'cli-secret-key-that-must-never-be-printed-0123456789';

let gw: FakeGateway;
let dir: string;
let imagePath: string;
let videoPath: string;
const image = randomBytes(1_500_000);
const video = randomBytes(700_000);

beforeAll(async () => {
  gw = await startFakeGateway({ secrets: { [AK]: SK } });
  dir = await mkdtemp(join(tmpdir(), 'iva-cli-'));
  imagePath = join(dir, 'photo one.jpg');
  videoPath = join(dir, 'clip.mp4');
  await writeFile(imagePath, image);
  await writeFile(videoPath, video);
});
afterAll(async () => {
  await gw.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => gw.reset());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const base: Record<string, string | undefined> = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    VOLC_ACCESSKEY: AK,
    VOLC_SECRETKEY: SK,
    IVA_ENDPOINT: gw.url,
  };
  const merged = Object.fromEntries(Object.entries({ ...base, ...env }).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  return new Promise((resolve) => {
    // cwd outside the repository: the bin must not depend on where it is run from.
    execFile(process.execPath, [BIN, ...args], { cwd: dir, env: merged, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      const result = { code, stdout, stderr };
      // Whatever happened, the secret never reaches the terminal.
      expect(stdout).not.toContain(SK);
      expect(stderr).not.toContain(SK);
      resolve(result);
    });
  });
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('iva-bridge submit: the four input forms', () => {
  it('--image PATH streams the file, name defaults to the file name', async () => {
    const r = await run(['submit', '--task-id', 'task-cli', '--image', imagePath]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const n = gw.calls[0]!.n;
    expect(r.stdout).toBe(`${JSON.stringify({ ImageID: `image-${n}`, RequestId: `req-${n}` })}\n`);
    const call = gw.calls[0]!;
    expect(call.signature).toMatchObject({ ok: true, bodyHashOk: true });
    expect(call.parts.map((p) => p.name)).toEqual(['ImageFile', 'Request']);
    expect(call.parts[0]!.filename).toBe('photo one.jpg');
    expect(sha(call.parts[0]!.data)).toBe(sha(image));
    expect(call.request).toEqual({ TaskID: 'task-cli', Image: { Name: 'photo one.jpg', Source: 'file' } });
  });

  it('--video PATH with --name, --desc, --algo-param-conf and --content-type', async () => {
    const r = await run([
      'submit',
      '--task-id',
      't2',
      '--video',
      videoPath,
      '--name',
      'My clip',
      '--desc',
      'a desc',
      '--algo-param-conf',
      '{"fps":5,"labels":["a"]}',
      '--content-type',
      'video/mp4',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ VideoID: `video-${gw.calls[0]!.n}`, RequestId: `req-${gw.calls[0]!.n}` });
    const call = gw.calls[0]!;
    expect(call.parts[0]).toMatchObject({ name: 'VideoFile', filename: 'clip.mp4', contentType: 'video/mp4' });
    expect(sha(call.parts[0]!.data)).toBe(sha(video));
    expect(call.request).toEqual({
      TaskID: 't2',
      Video: { Name: 'My clip', Source: 'file', Desc: 'a desc' },
      AlgoParamConf: { fps: 5, labels: ['a'] },
    });
  });

  it('--image-url: name defaults to the URL last path segment, decoded', async () => {
    const url = 'https://bucket.example.com/incoming/t/caf%C3%A9%20shot.png?X-Amz-Signature=abc';
    const r = await run(['submit', '--task-id', 't3', '--image-url', url]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('ImageID');
    expect(gw.calls[0]!.parts.map((p) => p.name)).toEqual(['Request']);
    expect(gw.calls[0]!.request).toEqual({ TaskID: 't3', Image: { Name: 'café shot.png', Source: 'url', Url: url } });
  });

  it('--video-url with a session token from the environment', async () => {
    const r = await run(['submit', '--task-id', 't4', '--video-url', 'https://x.example.com/v/clip.mp4'], {
      VOLC_SESSION_TOKEN: 'sts-token',
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('VideoID');
    const call = gw.calls[0]!;
    expect(call.headers['x-security-token']).toBe('sts-token');
    expect(call.signature.ok).toBe(true);
    expect(call.request).toEqual({
      TaskID: 't4',
      Video: { Name: 'clip.mp4', Source: 'url', Url: 'https://x.example.com/v/clip.mp4' },
    });
  });
});

describe('iva-bridge submit: failures', () => {
  it('an IVA error: one stderr line with Code, Message and RequestId, exit 1', async () => {
    gw.queue(ivaError('InvalidParameter', 'TaskID does not exist', 400, 'rid-cli-1'));
    const r = await run(['submit', '--task-id', 'nope', '--image', imagePath]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toContain('InvalidParameter');
    expect(r.stderr).toContain('TaskID does not exist');
    expect(r.stderr).toContain('rid-cli-1');
  });

  it('a wrong secret: SignatureDoesNotMatch, one attempt, exit 1, secret not printed', async () => {
    const r = await run(['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg'], {
      VOLC_SECRETKEY: `${SK}-wrong`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SignatureDoesNotMatch');
    expect(r.stderr).not.toContain(`${SK}-wrong`);
    expect(gw.calls).toHaveLength(1);
  });

  it('retryable errors past the budget: exit 1 naming the last error', async () => {
    gw.respond = () => ivaError('FlowLimitExceeded', 'too many', 429, 'rid-flow');
    // Retries start only with 1 s of budget left (DEFAULT_MIN_ATTEMPT_MS): 2.5 s allows several.
    const r = await run(['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg', '--budget-ms', '2500']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FlowLimitExceeded: too many .*gave up after \d+ attempts.*rid-flow/);
    expect(gw.calls.length).toBeGreaterThan(1);
  });

  it('each retry is printed on stderr as it happens, before the next attempt is answered', async () => {
    const seenAtSecondCall: string[] = [];
    let stderr = '';
    gw.respond = () => {
      if (gw.calls.length === 1) return ivaError('FlowLimitExceeded', 'too many', 429, 'rid-flow-1');
      // While the second attempt waits for its answer, the retry line is already out.
      setTimeout(() => seenAtSecondCall.push(stderr), 300);
      return { delayMs: 1_000, json: { ResponseMetadata: { RequestId: 'rid-ok' }, Result: { ImageID: 'image-ok' } } };
    };
    const child = spawn(process.execPath, [BIN, 'submit', '--task-id', 't', '--image-url', 'https://x/y.jpg'], {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', VOLC_ACCESSKEY: AK, VOLC_SECRETKEY: SK, IVA_ENDPOINT: gw.url },
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout).toBe(`${JSON.stringify({ ImageID: 'image-ok', RequestId: 'rid-ok' })}\n`);
    expect(seenAtSecondCall).toHaveLength(1);
    expect(seenAtSecondCall[0]).toMatch(
      /^iva-bridge submit: retrying: attempt 1 failed with FlowLimitExceeded: too many \(RequestId rid-flow-1\) \[HTTP 429\]; attempt 2 in \d+ ms\n$/,
    );
    expect(stderr).toBe(seenAtSecondCall[0]);
  });

  it('a host name that does not resolve: one line naming it, at once, no retries (exit 1)', async () => {
    const r = await run(['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg'], {
      IVA_ENDPOINT: 'https://iva-bridge-no-such-host.invalid',
    });
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/HostNotFound: .*(ENOTFOUND|EAI_NONAME)/);
  });

  it('a connection dropped after sending: exit 3 UNCERTAIN, sent once, never retried', async () => {
    gw.queue({ drop: 'after-body' });
    const r = await run(['submit', '--task-id', 't', '--image', imagePath]);
    expect(r.code).toBe(3);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/UNCERTAIN: IVA may have accepted this submission: ConnectionLostAfterSend: /);
    expect(gw.calls).toHaveLength(1);
  });

  const usage: Array<[string, string[], Record<string, string | undefined>, RegExp]> = [
    [
      'missing file',
      ['submit', '--task-id', 't', '--image', '/no/such/file.jpg'],
      {},
      /cannot read \/no\/such\/file\.jpg: ENOENT/,
    ],
    ['a directory as file', ['submit', '--task-id', 't', '--video', '.'], {}, /cannot read \.: /],
    [
      'missing credentials',
      ['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg'],
      { VOLC_SECRETKEY: undefined },
      /missing credentials: set VOLC_ACCESSKEY and VOLC_SECRETKEY/,
    ],
    [
      'bad JSON',
      ['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg', '--algo-param-conf', '{nope'],
      {},
      /--algo-param-conf is not valid JSON/,
    ],
    [
      'JSON that is not an object',
      ['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg', '--algo-param-conf', '[1]'],
      {},
      /must be a JSON object/,
    ],
    [
      'conflicting options',
      ['submit', '--task-id', 't', '--image', imagePathLazy(), '--video-url', 'https://x/y.mp4'],
      {},
      /conflicting options: --image, --video-url/,
    ],
    ['no input', ['submit', '--task-id', 't'], {}, /one of --image, --image-url, --video, --video-url is required/],
    ['missing task id', ['submit', '--image-url', 'https://x/y.jpg'], {}, /--task-id is required/],
    [
      'unknown option',
      ['submit', '--task-id', 't', '--image-url', 'https://x/y.jpg', '--bogus'],
      {},
      /Unknown option '--bogus'/,
    ],
    [
      'URL without a name',
      ['submit', '--task-id', 't', '--image-url', 'https://x.example.com/'],
      {},
      /--name is required/,
    ],
    ['not a URL', ['submit', '--task-id', 't', '--video-url', 'not a url'], {}, /not a valid URL/],
    ['unknown command', ['frobnicate'], {}, /unknown command "frobnicate"/],
  ];
  for (const [label, args, env, pattern] of usage) {
    it(`${label}: exit 2, one stderr line, IVA not called`, async () => {
      const r = await run(args, env);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(gw.calls).toHaveLength(0);
    });
  }

  it('--help documents every option and variable', async () => {
    const r = await run(['submit', '--help']);
    expect(r.code).toBe(0);
    for (const word of [
      '--task-id',
      '--image',
      '--image-url',
      '--video',
      '--video-url',
      '--name',
      '--desc',
      '--algo-param-conf',
      'VOLC_ACCESSKEY',
      'VOLC_SECRETKEY',
      'VOLC_SESSION_TOKEN',
      'IVA_ENDPOINT',
      'IVA_REGION',
      'IVA_SERVICE',
      'exit 2',
    ]) {
      expect(r.stdout).toContain(word);
    }
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('submit');
  });
});

/** The conflicting-options case is built before beforeAll runs; the path need not exist. */
function imagePathLazy(): string {
  return join(tmpdir(), 'whatever.jpg');
}
