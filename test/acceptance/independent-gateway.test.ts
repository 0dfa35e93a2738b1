/**
 * Acceptance against an IVA gateway that shares no code with the product
 * (./independent-gateway.ts verifies with the vendor's own Node signer), the way a
 * reviewer's own gateway would judge it: the CLI as a user runs it, and the local stack
 * in its real-IVA mode driven only through S3 and HTTP.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../local/stack/index';
import { until } from '../support/e2e';
import { startIndependentGateway, type AcceptedSubmission, type IndependentGateway } from './independent-gateway';
import { signingFetch } from '../../lib/client/signing';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const task = (label: string): string => `acc-${label}-${randomBytes(4).toString('hex')}`;
const KEY = { accessKeyId: 'AKLTACCEPTANCE', secretAccessKey: randomBytes(20).toString('base64') };
/** This gateway answers at once: wait less and look more often than the stack tests do. */
const QUICK = { timeoutMs: 10_000, everyMs: 50 };

const STS_KEY = {
  accessKeyId: 'AKTPACCEPTANCESTS',
  secretAccessKey: randomBytes(20).toString('base64'),
  sessionToken: `STS2${randomBytes(40).toString('base64')}`,
};

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(childEnv)) if (/^(IVA_|VOLC_)/.test(name)) delete childEnv[name];
  Object.assign(childEnv, env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/iva-bridge.mjs', 'submit', ...args], {
      cwd: REPO_ROOT,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A plain web server the gateway downloads Source=url media from. */
async function startMediaServer(files: Record<string, Buffer>): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const bytes = files[decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)];
    if (!bytes) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('the independent gateway itself (so its verdicts mean something)', () => {
  let gw: IndependentGateway;
  beforeAll(async () => {
    gw = await startIndependentGateway({ keys: [KEY] });
  });
  afterAll(() => gw.close());

  /** A request signed by the vendor's signer alone, none of the product's code. */
  async function officialRequest(tamper: boolean): Promise<Response> {
    const require = createRequire(import.meta.url);
    type Official = new (
      r: {
        region: string;
        method: string;
        pathname: string;
        params: Record<string, string>;
        headers: Record<string, string>;
        body?: unknown;
      },
      s: string,
      o?: { bodySha256?: string },
    ) => {
      addAuthorization(c: { accessKeyId: string; secretKey: string }): void;
      request: { headers: Record<string, string> };
    };
    const Signer = (require('@volcengine/openapi/lib/base/sign.js') as { default: Official }).default;
    const boundary = randomBytes(8).toString('hex');
    const file = randomBytes(300);
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="ImageFile"; filename="x.jpg"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      file,
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="Request"\r\n\r\n${JSON.stringify({ TaskID: 't', Image: { Name: 'x.jpg', Source: 'file' } })}\r\n--${boundary}--\r\n`,
      ),
    ]);
    const host = new URL(gw.url).host;
    const params = { Action: 'AddAsyncTaskImageData', Version: '2022-05-13' };
    const signer = new Signer(
      { region: 'cn-north-1', method: 'POST', pathname: '/', params, headers: { Host: host }, body: 'x' },
      'iva',
      { bodySha256: sha(body) },
    );
    signer.addAuthorization({ accessKeyId: KEY.accessKeyId, secretKey: KEY.secretAccessKey });
    const { Host: _host, ...headers } = signer.request.headers;
    if (tamper) body.writeUInt8(body.readUInt8(body.length - 10) ^ 1, body.length - 10);
    return fetch(`${gw.url}/?Action=AddAsyncTaskImageData&Version=2022-05-13`, {
      method: 'POST',
      headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
  }

  it('accepts a request the official signer signed, and refuses it with one body byte changed', async () => {
    const ok = await officialRequest(false);
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(((await ok.json()) as { Result: { ImageID: string } }).Result.ImageID).toMatch(/^img-/);
    const bad = await officialRequest(true);
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code).toBe(
      'SignatureDoesNotMatch',
    );
  });
});

describe('iva-bridge submit (the CLI) against the independent gateway', () => {
  let gw: IndependentGateway;
  let media: Awaited<ReturnType<typeof startMediaServer>>;
  let dir: string;
  const image = randomBytes(70_000);
  const video = randomBytes(120_000);
  const remoteImage = randomBytes(33_333);
  const remoteVideo = randomBytes(44_444);
  const env = (): Record<string, string> => ({
    VOLC_ACCESSKEY: KEY.accessKeyId,
    VOLC_SECRETKEY: KEY.secretAccessKey,
    IVA_ENDPOINT: gw.url,
  });
  const DESC = 'a "desc" with ü, 猫 and\ttab';
  const ALGO = { threshold: 0.5, labels: ['cat', 'dog'], nested: { on: true } };

  beforeAll(async () => {
    gw = await startIndependentGateway({ keys: [KEY, STS_KEY] });
    media = await startMediaServer({ '/media/remote cat.jpg': remoteImage, '/media/clip.mp4': remoteVideo });
    dir = await mkdtemp(join(tmpdir(), 'iva-acceptance-'));
    await writeFile(join(dir, 'my cat.jpg'), image);
    await writeFile(join(dir, 'clip.mp4'), video);
  });
  afterAll(async () => {
    await gw?.close();
    await media?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('all four input forms: official signature, IVA parts and JSON, identical bytes, Desc and AlgoParamConf', async () => {
    const id = task('cli');
    const common = ['--task-id', id, '--desc', DESC, '--algo-param-conf', JSON.stringify(ALGO)];
    const cases = [
      {
        args: ['--image', join(dir, 'my cat.jpg')],
        kind: 'image',
        source: 'file',
        name: 'my cat.jpg',
        bytes: image,
        url: undefined,
      },
      {
        args: ['--image-url', `${media.url}/media/remote%20cat.jpg`],
        kind: 'image',
        source: 'url',
        name: 'remote cat.jpg',
        bytes: remoteImage,
        url: `${media.url}/media/remote%20cat.jpg`,
      },
      {
        args: ['--video', join(dir, 'clip.mp4')],
        kind: 'video',
        source: 'file',
        name: 'clip.mp4',
        bytes: video,
        url: undefined,
      },
      {
        args: ['--video-url', `${media.url}/media/clip.mp4`, '--name', 'named clip'],
        kind: 'video',
        source: 'url',
        name: 'named clip',
        bytes: remoteVideo,
        url: `${media.url}/media/clip.mp4`,
      },
    ] as const;
    const runs = await Promise.all(cases.map((c) => runCli([...common, ...c.args], env())));

    for (const [i, c] of cases.entries()) {
      const run = runs[i]!;
      expect(run.code, `${c.args[0]}: ${run.stderr}`).toBe(0);
      const idKey = c.kind === 'image' ? 'ImageID' : 'VideoID';
      const out = JSON.parse(run.stdout) as Record<string, string>;
      const sub = gw.submissions.find((s) => s.dataId === out[idKey]) as AcceptedSubmission;
      expect(sub, c.args[0]).toBeDefined();
      expect(out.RequestId).toBe(sub.requestId);
      expect(sub.action).toBe(c.kind === 'image' ? 'AddAsyncTaskImageData' : 'AddAsyncTaskVideoData');
      expect(sub.accessKeyId).toBe(KEY.accessKeyId);
      expect(sub.signedHeaders).toEqual(expect.arrayContaining(['host', 'x-content-sha256', 'x-date']));
      // The exact Request document of the vendor page: nothing missing, nothing extra.
      const mediaKey = c.kind === 'image' ? 'Image' : 'Video';
      expect(JSON.parse(sub.requestJson)).toEqual({
        TaskID: id,
        [mediaKey]: { Name: c.name, Source: c.source, ...(c.url ? { Url: c.url } : {}), Desc: DESC },
        AlgoParamConf: ALGO,
      });
      expect(sub.sha256).toBe(sha(c.bytes));
      expect(sub.bytes.length).toBe(c.bytes.length);
      const filePart = c.kind === 'image' ? 'ImageFile' : 'VideoFile';
      if (c.source === 'file') {
        // The vendor's Go demo order: the file part, then the Request field.
        expect(sub.parts.map((p) => [p.name, p.isFile])).toEqual([
          [filePart, true],
          ['Request', false],
        ]);
        expect(sub.fileName).toBe(c.name);
      } else {
        expect(sub.parts.map((p) => [p.name, p.isFile])).toEqual([['Request', false]]);
        expect(sub.downloadStatus).toBe(200);
      }
      expect(run.stdout + run.stderr).not.toContain(KEY.secretAccessKey);
    }
    expect(gw.requests.filter((r) => r.status !== 200)).toEqual([]);
  });

  it('retries two FlowLimitExceeded answers and succeeds on the third request', async () => {
    const before = gw.requests.length;
    gw.failNext(2, 'FlowLimitExceeded', 429);
    const run = await runCli(['--task-id', task('flow'), '--image', join(dir, 'my cat.jpg')], env());
    expect(run.code, run.stderr).toBe(0);
    const seen = gw.requests.slice(before);
    expect(seen.map((r) => [r.status, r.code ?? null])).toEqual([
      [429, 'FlowLimitExceeded'],
      [429, 'FlowLimitExceeded'],
      [200, null],
    ]);
    const out = JSON.parse(run.stdout) as { ImageID: string };
    expect(gw.submissions.find((s) => s.dataId === out.ImageID)?.sha256).toBe(sha(image));
  });

  it('stops at once on SignatureDoesNotMatch: one request, the code on stderr, exit 1', async () => {
    const before = gw.requests.length;
    gw.failNext(1, 'SignatureDoesNotMatch', 401);
    const run = await runCli(['--task-id', task('sig'), '--image', join(dir, 'my cat.jpg')], env());
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('SignatureDoesNotMatch');
    expect(run.stdout).toBe('');
    expect(gw.requests.length - before).toBe(1);
  });

  it('a wrong secret is refused by the official verifier itself (not an injected fault)', async () => {
    const before = gw.requests.length;
    const wrong = randomBytes(20).toString('base64');
    const run = await runCli(['--task-id', task('wrong'), '--image-url', `${media.url}/media/clip.mp4`], {
      ...env(),
      VOLC_SECRETKEY: wrong,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('SignatureDoesNotMatch');
    expect(run.stderr).not.toContain(wrong);
    expect(gw.requests.slice(before).map((r) => [r.injected, r.code])).toEqual([[false, 'SignatureDoesNotMatch']]);
  });

  it('signs and sends VOLC_SESSION_TOKEN as X-Security-Token for temporary credentials', async () => {
    const stsEnv = {
      VOLC_ACCESSKEY: STS_KEY.accessKeyId,
      VOLC_SECRETKEY: STS_KEY.secretAccessKey,
      VOLC_SESSION_TOKEN: STS_KEY.sessionToken,
      IVA_ENDPOINT: gw.url,
    };
    const run = await runCli(['--task-id', task('sts'), '--video', join(dir, 'clip.mp4')], stsEnv);
    expect(run.code, run.stderr).toBe(0);
    const sub = gw.submissions.find((s) => s.dataId === (JSON.parse(run.stdout) as { VideoID: string }).VideoID)!;
    expect(sub.sessionToken).toBe(STS_KEY.sessionToken);
    expect(sub.signedHeaders).toContain('x-security-token');
    expect(sub.sha256).toBe(sha(video));

    // Without the token, the same temporary key is refused.
    const { VOLC_SESSION_TOKEN: _token, ...noToken } = stsEnv;
    const refused = await runCli(['--task-id', task('sts'), '--video', join(dir, 'clip.mp4')], noToken);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('MissingAuthenticationToken');
  });
});

describe('the local stack with the independent gateway as the real IVA', () => {
  let gw: IndependentGateway;
  let stack: LocalStack;
  let s3: S3Client;
  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    signingFetch({ accessKeyId: stack.clientAccessKeyId, secretAccessKey: stack.clientSecretAccessKey })(
      `${stack.apiUrl}${path.replace(/^\//, '')}`,
      init,
    );

  interface View {
    SubmissionId: string;
    Status: string;
    ImageID?: string;
    VideoID?: string;
    Result?: { Location: string };
  }
  const submission = async (id: string): Promise<View> => {
    const res = await api(`/v1/submissions/${encodeURIComponent(id)}`);
    expect(res.status).toBe(200);
    return (await res.json()) as View;
  };
  const completed = (id: string): Promise<View> =>
    until(
      `submission ${id} completed`,
      async () => {
        const view = await submission(id);
        return view.Status === 'completed' ? view : undefined;
      },
      QUICK,
    );

  beforeAll(async () => {
    gw = await startIndependentGateway({ keys: [KEY], callbackDelayMs: 20 });
    stack = await startLocalStack({
      iva: { endpoint: gw.url, credentials: KEY },
      sqs: { visibilityTimeoutMs: 500, batchingWindowMs: 20 },
      functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR' },
      log: () => undefined,
    });
    gw.callbackUrl = stack.callbackUrl;
    s3 = new S3Client({
      endpoint: stack.s3Endpoint,
      region: stack.s3Region,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3AccessKeyId, secretAccessKey: stack.s3SecretAccessKey },
    });
  });
  afterAll(async () => {
    s3?.destroy();
    await stack?.close();
    await gw?.close();
  });

  it('runs in real-IVA mode: no sandbox, our endpoint', () => {
    expect(stack.ivaMode).toBe('remote');
    expect(stack.sandbox).toBeUndefined();
    expect(stack.ivaEndpoint).toBe(gw.url);
  });

  it("an S3 upload reaches the gateway as Source=url with the rules' TaskID and Name, the URL gives the same bytes, the callback completes it", async () => {
    const id = task('s3');
    const name = 'my cat+1 ü %.jpg';
    const bytes = randomBytes(60_000);
    await s3.send(
      new PutObjectCommand({
        Bucket: stack.bucket,
        Key: `incoming/${id}/${name}`,
        Body: bytes,
        ContentType: 'image/jpeg',
      }),
    );

    const sub = await until('the gateway submission', () => gw.submissions.find((s) => s.taskId === id), QUICK);
    expect(sub.source).toBe('url');
    expect(sub.kind).toBe('image');
    expect(sub.name).toBe(name);
    expect(sub.sha256).toBe(sha(bytes));
    expect(JSON.parse(sub.requestJson)).toEqual({ TaskID: id, Image: { Name: name, Source: 'url', Url: sub.url } });

    const listed = await until(
      'the completed listing',
      async () => {
        const res = await api(`/v1/tasks/${encodeURIComponent(id)}/submissions`);
        const page = (await res.json()) as { Items: View[] };
        return page.Items.find((v) => v.Status === 'completed');
      },
      QUICK,
    );
    const view = await submission(listed.SubmissionId);
    expect(view.Status).toBe('completed');
    expect(view.ImageID).toBe(sub.dataId);
    expect(view.Result?.Location).toMatch(new RegExp(`^s3://${stack.bucket}/results/`));
    // The stack answered our callback 2xx (its answer can land just after the ledger write).
    const answered = await until(
      'the callback answer',
      () => gw.callbacks.find((c) => c.body.ImageID === sub.dataId && c.status !== undefined),
      QUICK,
    );
    expect(answered.status).toBeGreaterThanOrEqual(200);
    expect(answered.status).toBeLessThan(300);
    expect(gw.submissions.filter((s) => s.taskId === id)).toHaveLength(1);
  });

  it('a curl -F style direct submission reaches the gateway byte-identical, then completes', async () => {
    const id = task('direct');
    const bytes = randomBytes(25_000);
    const form = new FormData();
    form.set(
      'Request',
      JSON.stringify({
        TaskID: id,
        Image: { Name: 'cat.jpg', Source: 'file', Desc: 'from curl' },
        AlgoParamConf: { k: 'v' },
      }),
    );
    form.set('ImageFile', new Blob([bytes], { type: 'image/jpeg' }), 'cat.jpg');
    const res = await api('/v1/images', { method: 'POST', body: form });
    const body = (await res.json()) as { Result?: { ImageID: string; SubmissionId: string } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    const sub = gw.submissions.find((s) => s.taskId === id)!;
    expect(sub).toMatchObject({
      source: 'file',
      name: 'cat.jpg',
      desc: 'from curl',
      algoParamConf: { k: 'v' },
      sha256: sha(bytes),
      dataId: body.Result!.ImageID,
    });
    expect(sub.parts.find((p) => p.isFile)?.name).toBe('ImageFile');
    const view = await completed(body.Result!.SubmissionId);
    expect(view.Result?.Location).toMatch(/^s3:\/\//);

    // The vendor-compatible route with a video.
    const clip = randomBytes(9_000);
    const vform = new FormData();
    vform.set('Request', JSON.stringify({ TaskID: id, Video: { Name: 'clip.mp4', Source: 'file' } }));
    vform.set('VideoFile', new Blob([clip], { type: 'video/mp4' }), 'clip.mp4');
    const vres = await api('/?Action=AddAsyncTaskVideoData&Version=2022-05-13', { method: 'POST', body: vform });
    const vbody = (await vres.json()) as { Result?: { VideoID: string } };
    expect(vres.status, JSON.stringify(vbody)).toBe(200);
    expect(gw.submissions.find((s) => s.dataId === vbody.Result!.VideoID)).toMatchObject({
      kind: 'video',
      sha256: sha(clip),
      parts: expect.arrayContaining([expect.objectContaining({ name: 'VideoFile', isFile: true })]),
    });
  });

  it('malformed direct requests get a 4xx with a stable code and never reach the gateway', async () => {
    const id = task('bad');
    const file = (): Blob => new Blob([randomBytes(100)], { type: 'image/jpeg' });
    const form = (fields: [string, string | Blob][]): FormData => {
      const f = new FormData();
      for (const [name, value] of fields) {
        if (typeof value === 'string') f.append(name, value);
        else f.append(name, value, 'cat.jpg');
      }
      return f;
    };
    const ok = JSON.stringify({ TaskID: id, Image: { Name: 'cat.jpg', Source: 'file' } });
    const cases: { label: string; init: RequestInit; codes: string[] }[] = [
      {
        label: 'not multipart',
        init: { body: JSON.stringify({ TaskID: id }), headers: { 'content-type': 'application/json' } },
        codes: ['UnsupportedMediaType', 'InvalidContentType'],
      },
      { label: 'no Request', init: { body: form([['ImageFile', file()]]) }, codes: ['MissingRequest'] },
      {
        label: 'bad JSON',
        init: {
          body: form([
            ['Request', '{"TaskID": '],
            ['ImageFile', file()],
          ]),
        },
        codes: ['InvalidRequestJson'],
      },
      {
        label: 'missing TaskID',
        init: {
          body: form([
            ['Request', JSON.stringify({ Image: { Name: 'a.jpg', Source: 'file' } })],
            ['ImageFile', file()],
          ]),
        },
        codes: ['MissingTaskID'],
      },
      {
        label: 'wrong part name',
        init: {
          body: form([
            ['Request', ok],
            ['VideoFile', file()],
          ]),
        },
        codes: ['WrongFilePart', 'UnknownFilePart'],
      },
      {
        label: 'Source=url with a file',
        init: {
          body: form([
            [
              'Request',
              JSON.stringify({ TaskID: id, Image: { Name: 'a.jpg', Source: 'url', Url: 'https://example.com/a.jpg' } }),
            ],
            ['ImageFile', file()],
          ]),
        },
        codes: ['UnexpectedFile'],
      },
      {
        label: 'missing Name',
        init: {
          body: form([
            ['Request', JSON.stringify({ TaskID: id, Image: { Source: 'file' } })],
            ['ImageFile', file()],
          ]),
        },
        codes: ['MissingName'],
      },
      {
        label: 'bad Source',
        init: {
          body: form([
            ['Request', JSON.stringify({ TaskID: id, Image: { Name: 'a.jpg', Source: 'ftp' } })],
            ['ImageFile', file()],
          ]),
        },
        codes: ['InvalidSource'],
      },
      { label: 'file missing', init: { body: form([['Request', ok]]) }, codes: ['MissingFile'] },
    ];
    const before = gw.requests.length;
    for (const c of cases) {
      const res = await api('/v1/images', {
        method: 'POST',
        ...c.init,
        headers: { ...(c.init.headers as Record<string, string> | undefined) },
      });
      const doc = (await res.json()) as { ResponseMetadata?: { Error?: { Code: string; Message: string } } };
      expect(res.status, `${c.label}: ${JSON.stringify(doc)}`).toBeGreaterThanOrEqual(400);
      expect(res.status, c.label).toBeLessThan(500);
      expect(c.codes, `${c.label}: ${JSON.stringify(doc)}`).toContain(doc.ResponseMetadata?.Error?.Code);
      expect(doc.ResponseMetadata?.Error?.Message, c.label).toBeTruthy();
    }
    expect(gw.requests.length).toBe(before);
  });
});
