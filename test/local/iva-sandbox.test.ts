import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  canonicalQuery,
  canonicalRequest,
  formatXDate,
  sha256Hex,
  signatureFor,
  type VolcCredentials,
} from '../../lib/signer/index';
import { startIvaSandbox, type IvaSandbox, type Submission } from '../../local/iva-sandbox/index';
import {
  imageFile,
  multipart,
  requestField,
  send,
  signedSubmit,
  startTestServer,
  type FormPart,
  type TestServer,
} from './sandbox-helpers';

const creds: VolcCredentials = { accessKeyId: 'AKTEST', secretAccessKey: 'test-secret-do-not-print' };
const IMAGE_LIMIT = 64 * 1024;

const fileRequest = (over: Record<string, unknown> = {}): unknown => ({
  TaskID: 'task-1',
  Image: { Name: 'a.jpg', Source: 'file', ...over },
});

describe('IVA sandbox', () => {
  let sandbox: IvaSandbox;
  let media: TestServer;
  const mediaBytes = randomBytes(3000);

  beforeAll(async () => {
    sandbox = await startIvaSandbox({ credentials: [creds], imageMaxBytes: IMAGE_LIMIT, callbackBackoffMs: 10 });
    media = await startTestServer((req) => {
      if (req.url?.startsWith('/ok.jpg'))
        return { status: 200, body: mediaBytes, headers: { 'content-type': 'image/jpeg' } };
      return { status: 403, body: 'AccessDenied' };
    });
  });
  afterAll(async () => {
    await sandbox.close();
    await media.close();
  });
  afterEach(() => {
    sandbox.reset();
    sandbox.setCallbackUrl(undefined);
    sandbox.setCallbackStatus('success');
  });

  const submit = (parts: FormPart[], extra: Partial<Parameters<typeof signedSubmit>[2]> = {}) =>
    signedSubmit(sandbox.url, parts, { credentials: creds, ...extra });

  describe('accepted submissions', () => {
    it('accepts a signed Source=file image (file part first, like the vendor demo) and records it', async () => {
      const bytes = randomBytes(5000);
      const seen: Submission[] = [];
      sandbox.once('submission', (s) => seen.push(s));
      const res = await submit([
        imageFile(bytes),
        requestField({
          TaskID: 'task-1',
          Image: { Name: 'a.jpg', Source: 'file', Desc: 'd' },
          AlgoParamConf: { k: 'v' },
        }),
      ]);
      expect(res.status).toBe(200);
      expect(res.json.ResponseMetadata.Error).toBeUndefined();
      expect(res.json.ResponseMetadata).toMatchObject({
        Action: 'AddAsyncTaskImageData',
        Version: '2022-05-13',
        Service: 'iva',
        Region: 'cn-north-1',
      });
      expect(res.json.ResponseMetadata.RequestId).toMatch(/^\d{14}[0-9A-F]{20}$/);
      const imageId = res.json.Result?.ImageID;
      expect(imageId).toMatch(/^img-/);

      expect(sandbox.submissions).toHaveLength(1);
      const s = sandbox.submissions[0]!;
      expect(seen).toEqual([s]);
      expect(s).toMatchObject({
        action: 'AddAsyncTaskImageData',
        kind: 'image',
        taskId: 'task-1',
        name: 'a.jpg',
        desc: 'd',
        algoParamConf: { k: 'v' },
        source: 'file',
        fileName: 'photo.jpg',
        fileContentType: 'application/octet-stream',
        dataId: imageId,
        requestId: res.json.ResponseMetadata.RequestId,
        accessKeyId: 'AKTEST',
        size: 5000,
      });
      expect(s.file!.equals(bytes)).toBe(true);
      expect(s.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    });

    it('accepts a video with the Request field first, and no size limit of its own', async () => {
      const bytes = randomBytes(IMAGE_LIMIT + 10);
      const res = await submit(
        [
          requestField({ TaskID: 't', Video: { Name: 'v.mp4', Source: 'file' } }),
          { name: 'VideoFile', value: bytes, filename: 'v.mp4', contentType: 'video/mp4' },
        ],
        { action: 'AddAsyncTaskVideoData' },
      );
      expect(res.status).toBe(200);
      expect(res.json.Result?.VideoID).toMatch(/^vid-/);
      expect(sandbox.submissions[0]).toMatchObject({
        kind: 'video',
        action: 'AddAsyncTaskVideoData',
        size: bytes.length,
        fileContentType: 'video/mp4',
      });
    });

    it('accepts an image exactly at the limit', async () => {
      const res = await submit([requestField(fileRequest()), imageFile(randomBytes(IMAGE_LIMIT))]);
      expect(res.status).toBe(200);
    });

    it("accepts signatures that also sign content-type (the Go SDK choice): SignedHeaders are the client's", async () => {
      const { body, contentType } = multipart([requestField(fileRequest()), imageFile(randomBytes(100))]);
      const host = new URL(sandbox.url).host;
      const xDate = formatXDate(new Date());
      const bodySha = sha256Hex(body);
      const headers = { 'content-type': contentType, host, 'x-content-sha256': bodySha, 'x-date': xDate };
      const signedHeaders = Object.keys(headers).sort();
      const queryString = canonicalQuery({ Action: 'AddAsyncTaskImageData', Version: '2022-05-13' });
      const canonical = canonicalRequest({
        method: 'POST',
        path: '/',
        queryString,
        headers,
        signedHeaders,
        bodySha256: bodySha,
      });
      const signature = signatureFor(canonical, xDate, creds.secretAccessKey, 'cn-north-1', 'iva');
      const authorization = `HMAC-SHA256 Credential=${creds.accessKeyId}/${xDate.slice(0, 8)}/cn-north-1/iva/request, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
      const res = await send(sandbox.url, 'POST', `/?${queryString}`, { ...headers, authorization }, body);
      expect(res.json.ResponseMetadata.Error).toBeUndefined();
      expect(res.status).toBe(200);
    });
  });

  describe('validation (like the vendor page)', () => {
    const cases: [string, FormPart[], string, string?][] = [
      ['no Request field', [imageFile(randomBytes(10))], 'MissingParameter', 'Request'],
      ['Request not JSON', [requestField('{nope'), imageFile(randomBytes(10))], 'InvalidParameter', 'JSON'],
      ['Request a JSON array', [requestField('[1]'), imageFile(randomBytes(10))], 'InvalidParameter', 'object'],
      [
        'empty TaskID',
        [requestField({ TaskID: '', Image: { Name: 'a', Source: 'file' } }), imageFile(randomBytes(10))],
        'MissingParameter',
        'TaskID',
      ],
      ['no Image object', [requestField({ TaskID: 't' }), imageFile(randomBytes(10))], 'MissingParameter', 'Image'],
      [
        'Image not an object',
        [requestField({ TaskID: 't', Image: 'x' }), imageFile(randomBytes(10))],
        'InvalidParameter',
        'Image',
      ],
      ['empty Name', [requestField(fileRequest({ Name: '' })), imageFile(randomBytes(10))], 'MissingParameter', 'Name'],
      [
        'unknown Source',
        [requestField(fileRequest({ Source: 'ftp' })), imageFile(randomBytes(10))],
        'InvalidParameter',
        'Source',
      ],
      ['url without Url', [requestField(fileRequest({ Source: 'url' }))], 'MissingParameter', 'Url'],
      [
        'Url not http(s)',
        [requestField(fileRequest({ Source: 'url', Url: 'ftp://x/y.jpg' }))],
        'InvalidParameter',
        'http',
      ],
      ['Source=file without file part', [requestField(fileRequest())], 'MissingParameter', 'ImageFile'],
      [
        'wrong file part name',
        [requestField(fileRequest()), imageFile(randomBytes(10), 'File')],
        'InvalidParameter',
        'ImageFile',
      ],
      [
        'file part with Source=url',
        [requestField(fileRequest({ Source: 'url', Url: 'http://127.0.0.1:1/x' })), imageFile(randomBytes(10))],
        'InvalidParameter',
        'must not',
      ],
      [
        'image over the limit',
        [requestField(fileRequest()), imageFile(randomBytes(IMAGE_LIMIT + 1))],
        'InvalidParameter',
        'limit',
      ],
      [
        'AlgoParamConf not an object',
        [requestField({ ...(fileRequest() as object), AlgoParamConf: 'x' }), imageFile(randomBytes(10))],
        'InvalidParameter',
        'AlgoParamConf',
      ],
    ];
    it.each(cases)('%s → %s', async (_label, parts, code, inMessage) => {
      const res = await submit(parts);
      expect(res.status).toBe(400);
      expect(res.json.ResponseMetadata.Error?.Code).toBe(code);
      expect(res.json.ResponseMetadata.Error?.Message).toContain(inMessage);
      expect(res.json.Result).toBeUndefined();
      expect(sandbox.submissions).toHaveLength(0);
    });

    it('rejects an ImageFile part on the video action', async () => {
      const res = await submit(
        [requestField({ TaskID: 't', Video: { Name: 'v', Source: 'file' } }), imageFile(randomBytes(10))],
        { action: 'AddAsyncTaskVideoData' },
      );
      expect(res.json.ResponseMetadata.Error).toMatchObject({ Code: 'InvalidParameter' });
      expect(res.json.ResponseMetadata.Error?.Message).toContain('VideoFile');
    });

    it('rejects a body that is not multipart', async () => {
      const res = await signedSubmit(sandbox.url, [requestField(fileRequest())], {
        credentials: creds,
        tamper: (r) => {
          r.headers['Content-Type'] = 'application/json';
        },
      });
      expect(res.status).toBe(400);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('InvalidParameter');
      expect(res.json.ResponseMetadata.Error?.Message).toContain('multipart/form-data');
    });
  });

  describe('routing', () => {
    it("unknown action or version → InvalidActionOrVersion 404, in IVA's shape", async () => {
      const a = await submit([requestField(fileRequest())], { action: 'DeleteEverything' });
      expect(a.status).toBe(404);
      expect(a.json.ResponseMetadata).toMatchObject({
        Action: 'DeleteEverything',
        Service: 'iva',
        Error: { Code: 'InvalidActionOrVersion' },
      });
      const v = await submit([requestField(fileRequest())], { version: '2020-01-01' });
      expect(v.status).toBe(404);
      expect(v.json.ResponseMetadata.Error?.Code).toBe('InvalidActionOrVersion');
    });

    it('GET → MethodNotAllowed 405', async () => {
      const res = await submit([], { method: 'GET' });
      expect(res.status).toBe(405);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('MethodNotAllowed');
    });

    it('counts every IVA request, with its outcome', async () => {
      await submit([requestField(fileRequest()), imageFile(randomBytes(10))]);
      await submit([], { method: 'GET' });
      expect(sandbox.requests.map((r) => [r.method, r.httpStatus, r.code])).toEqual([
        ['POST', 200, undefined],
        ['GET', 405, 'MethodNotAllowed'],
      ]);
    });
  });

  describe('flow limit (token bucket)', () => {
    afterEach(() => sandbox.setRateLimit(undefined));

    it('admits a burst, then answers 429 FlowLimitExceeded until tokens come back at the set rate', async () => {
      // The sandbox's own clock, moved by the test: a loaded machine's slow requests must
      // not refill the bucket between them (no timed assertion).
      const clock = { t: Date.now() };
      const limited = await startIvaSandbox({ credentials: [creds], now: () => clock.t });
      try {
        limited.setRateLimit({ perSecond: 5, burst: 3 });
        const send = () =>
          signedSubmit(limited.url, [requestField(fileRequest()), imageFile(randomBytes(10))], { credentials: creds });
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) statuses.push((await send()).status);
        expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
        expect(statuses.slice(3)).toEqual([429, 429]);
        const refused = limited.requests.filter((r) => r.httpStatus === 429);
        expect(refused.map((r) => r.code)).toEqual(['FlowLimitExceeded', 'FlowLimitExceeded']);
        expect(limited.submissions).toHaveLength(3);
        clock.t += 150; // 5/s: not yet a whole token
        expect((await send()).status).toBe(429);
        clock.t += 300; // two tokens back by now
        const later = await send();
        expect(later.status).toBe(200);
        expect(later.json.ResponseMetadata).not.toHaveProperty('Error');
      } finally {
        await limited.close();
      }
    });

    it('is set and lifted over the control API', async () => {
      const set = await fetch(`${sandbox.url}/__sandbox/config`, {
        method: 'POST',
        body: JSON.stringify({ rateLimit: { perSecond: 1, burst: 1 } }),
      });
      expect(((await set.json()) as { rateLimit: unknown }).rateLimit).toEqual({ perSecond: 1, burst: 1 });
      expect((await submit([requestField(fileRequest()), imageFile(randomBytes(10))])).status).toBe(200);
      expect((await submit([requestField(fileRequest()), imageFile(randomBytes(10))])).status).toBe(429);
      await fetch(`${sandbox.url}/__sandbox/config`, { method: 'POST', body: JSON.stringify({ rateLimit: null }) });
      expect((await submit([requestField(fileRequest()), imageFile(randomBytes(10))])).status).toBe(200);
      const bad = await fetch(`${sandbox.url}/__sandbox/config`, {
        method: 'POST',
        body: '{"rateLimit":{"perSecond":0}}',
      });
      expect(bad.status).toBe(400);
    });
  });

  describe('signature verification', () => {
    const parts = (): FormPart[] => [requestField(fileRequest()), imageFile(randomBytes(100))];

    it('no Authorization → MissingAuthenticationToken 401', async () => {
      const res = await submit(parts(), { tamper: (r) => delete r.headers.Authorization });
      expect(res.status).toBe(401);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('MissingAuthenticationToken');
    });

    it('malformed Authorization → InvalidAuthorization 400', async () => {
      const res = await submit(parts(), { tamper: (r) => (r.headers.Authorization = 'Bearer abc') });
      expect(res.status).toBe(400);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('InvalidAuthorization');
    });

    it('unknown access key → InvalidAccessKey 401', async () => {
      const res = await submit(parts(), {
        credentials: { accessKeyId: 'AKOTHER', secretAccessKey: creds.secretAccessKey },
      });
      expect(res.status).toBe(401);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('InvalidAccessKey');
    });

    it('wrong secret → SignatureDoesNotMatch 401, and the secret is not echoed', async () => {
      const res = await submit(parts(), { credentials: { accessKeyId: 'AKTEST', secretAccessKey: 'wrong' } });
      expect(res.status).toBe(401);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('SignatureDoesNotMatch');
      expect(JSON.stringify(res.json)).not.toContain(creds.secretAccessKey);
    });

    it('a body changed after signing is rejected (hash header kept or recomputed)', async () => {
      const flip = (r: { body: Buffer }): void => {
        r.body = Buffer.from(r.body);
        const i = r.body.length - 60;
        r.body.writeUInt8(r.body.readUInt8(i) ^ 0xff, i);
      };
      const kept = await submit(parts(), { tamper: flip });
      expect(kept.json.ResponseMetadata.Error?.Code).toBe('SignatureDoesNotMatch');
      expect(kept.json.ResponseMetadata.Error?.Message).toContain('X-Content-Sha256');
      const recomputed = await submit(parts(), {
        tamper: (r) => {
          flip(r);
          r.headers['X-Content-Sha256'] = sha256Hex(r.body);
        },
      });
      expect(recomputed.status).toBe(401);
      expect(recomputed.json.ResponseMetadata.Error?.Code).toBe('SignatureDoesNotMatch');
      expect(sandbox.submissions).toHaveLength(0);
    });

    it('a query or signed header changed after signing is rejected', async () => {
      const query = await submit(parts(), { tamper: (r) => (r.query += '&Extra=1') });
      expect(query.json.ResponseMetadata.Error?.Code).toBe('SignatureDoesNotMatch');
      const host = await submit(parts(), { tamper: (r) => (r.headers.Host = 'evil.example:443') });
      expect(host.json.ResponseMetadata.Error?.Code).toBe('SignatureDoesNotMatch');
    });

    it('stale or missing X-Date → InvalidTimestamp 400', async () => {
      const stale = await submit(parts(), { date: new Date(Date.now() - 20 * 60 * 1000) });
      expect(stale.status).toBe(400);
      expect(stale.json.ResponseMetadata.Error?.Code).toBe('InvalidTimestamp');
      const future = await submit(parts(), { date: new Date(Date.now() + 20 * 60 * 1000) });
      expect(future.json.ResponseMetadata.Error?.Code).toBe('InvalidTimestamp');
      const missing = await submit(parts(), { tamper: (r) => delete r.headers['X-Date'] });
      expect(missing.json.ResponseMetadata.Error?.Code).toBe('InvalidTimestamp');
      // Within the allowed skew is fine.
      const recent = await submit(parts(), { date: new Date(Date.now() - 5 * 60 * 1000) });
      expect(recent.status).toBe(200);
    });

    it('a credential scope for another region or service → InvalidCredential', async () => {
      const region = await submit(parts(), { region: 'ap-singapore-1' });
      expect(region.status).toBe(400);
      expect(region.json.ResponseMetadata.Error?.Code).toBe('InvalidCredential');
      const service = await submit(parts(), { service: 'ecs' });
      expect(service.json.ResponseMetadata.Error?.Code).toBe('InvalidCredential');
    });
  });

  describe('Source=url', () => {
    it('downloads the URL with a plain GET before accepting, and keeps the bytes', async () => {
      const url = `${media.url}/ok.jpg?X-Amz-Signature=abc&X-Amz-Expires=600`;
      const res = await submit([requestField(fileRequest({ Source: 'url', Url: url }))]);
      expect(res.status).toBe(200);
      const hit = media.hits.find((h) => h.path.startsWith('/ok.jpg'));
      expect(hit).toMatchObject({ method: 'GET', path: '/ok.jpg?X-Amz-Signature=abc&X-Amz-Expires=600' });
      expect(hit!.headers.authorization).toBeUndefined();
      const s = sandbox.submissions[0]!;
      expect(s).toMatchObject({ source: 'url', url, fileContentType: 'image/jpeg', size: mediaBytes.length });
      expect(s.file!.equals(mediaBytes)).toBe(true);
    });

    it('a non-2xx download → InvalidParameter naming the status', async () => {
      const res = await submit([requestField(fileRequest({ Source: 'url', Url: `${media.url}/denied.jpg` }))]);
      expect(res.status).toBe(400);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('InvalidParameter');
      expect(res.json.ResponseMetadata.Error?.Message).toContain('403');
      expect(sandbox.submissions).toHaveLength(0);
    });

    it('an unreachable URL → InvalidParameter', async () => {
      const res = await submit([requestField(fileRequest({ Source: 'url', Url: 'http://127.0.0.1:1/x.jpg' }))]);
      expect(res.status).toBe(400);
      expect(res.json.ResponseMetadata.Error?.Code).toBe('InvalidParameter');
      expect(res.json.ResponseMetadata.Error?.Message).toMatch(/could not be downloaded/);
    });
  });

  describe('callbacks', () => {
    let receiver: TestServer;
    let answers: number[] = [];
    beforeAll(async () => {
      receiver = await startTestServer(() => ({ status: answers.shift() ?? 200 }));
    });
    afterAll(async () => {
      await receiver.close();
    });
    afterEach(() => {
      receiver.hits.length = 0;
      answers = [];
    });

    it('posts the result to the callback URL after accepting', async () => {
      sandbox.setCallbackUrl(`${receiver.url}/callback/secret-123?x=1`);
      const res = await submit([requestField(fileRequest()), imageFile(randomBytes(50))]);
      const [delivery] = await once(sandbox, 'callback');
      expect(delivery).toMatchObject({ ok: true, httpStatus: 200, attempt: 1, taskId: 'task-1' });
      expect(receiver.hits).toHaveLength(1);
      const hit = receiver.hits[0]!;
      expect(hit.method).toBe('POST');
      expect(hit.path).toBe('/callback/secret-123?x=1');
      expect(hit.headers['content-type']).toBe('application/json');
      const body = JSON.parse(hit.body.toString()) as Record<string, unknown>;
      expect(body).toMatchObject({
        TaskID: 'task-1',
        ImageID: res.json.Result!.ImageID,
        Status: 'success',
        RequestId: res.json.ResponseMetadata.RequestId,
        Result: { Size: 50 },
      });
      expect((body.Result as { Labels: unknown[] }).Labels.length).toBeGreaterThan(0);
    });

    it('retries with backoff while the receiver answers non-2xx', async () => {
      answers = [500, 503];
      sandbox.setCallbackUrl(`${receiver.url}/cb`);
      await submit([requestField(fileRequest()), imageFile(randomBytes(50))]);
      await sandbox.callbacksSettled();
      expect(sandbox.callbacks.map((c) => [c.attempt, c.httpStatus, c.ok])).toEqual([
        [1, 500, false],
        [2, 503, false],
        [3, 200, true],
      ]);
      expect(receiver.hits).toHaveLength(3);
      expect(new Set(receiver.hits.map((h) => h.body.toString())).size).toBe(1);
    });

    it('gives up after the attempts when the receiver is down', async () => {
      sandbox.setCallbackUrl('http://127.0.0.1:1/cb');
      await submit([requestField(fileRequest()), imageFile(randomBytes(50))]);
      await sandbox.callbacksSettled();
      expect(sandbox.callbacks).toHaveLength(4);
      expect(sandbox.callbacks.every((c) => !c.ok && c.httpStatus === undefined && c.error)).toBe(true);
    });

    it('can report a failed analysis', async () => {
      sandbox.setCallbackUrl(`${receiver.url}/cb`);
      sandbox.setCallbackStatus('failed');
      await submit(
        [
          requestField({ TaskID: 'tv', Video: { Name: 'v', Source: 'file' } }),
          { name: 'VideoFile', value: randomBytes(20), filename: 'v.mp4' },
        ],
        {
          action: 'AddAsyncTaskVideoData',
        },
      );
      await sandbox.callbacksSettled();
      const body = JSON.parse(receiver.hits[0]!.body.toString()) as Record<string, unknown>;
      expect(body).toMatchObject({ TaskID: 'tv', Status: 'failed', Error: { Code: 'AnalysisFailed' } });
      expect(body.VideoID).toBe(sandbox.submissions[0]!.dataId);
    });
  });

  describe('faults', () => {
    const ok = (): FormPart[] => [requestField(fileRequest()), imageFile(randomBytes(10))];

    it('error faults answer the given code for `count` requests, then normal service resumes', async () => {
      sandbox.injectFaults({ count: 2, code: 'FlowLimitExceeded', httpStatus: 429, message: 'slow down' });
      const a = await submit(ok());
      const b = await submit(ok());
      const c = await submit(ok());
      expect([a.status, b.status, c.status]).toEqual([429, 429, 200]);
      expect(a.json.ResponseMetadata.Error).toEqual({ Code: 'FlowLimitExceeded', Message: 'slow down' });
      expect(sandbox.submissions).toHaveLength(1);
      expect(sandbox.requests.map((r) => r.fault)).toEqual(['error', 'error', undefined]);
    });

    it('delay faults hold the answer', async () => {
      sandbox.injectFaults({ delayMs: 300 });
      const slow = await submit(ok());
      expect(slow.status).toBe(200);
      expect(slow.ms).toBeGreaterThanOrEqual(280);
      const fast = await submit(ok());
      expect(fast.ms).toBeLessThan(280);
    });

    it('drop faults destroy the socket without an answer (before or after accepting)', async () => {
      sandbox.injectFaults({ drop: true });
      await expect(submit(ok())).rejects.toThrow(/socket hang up|ECONNRESET/);
      expect(sandbox.submissions).toHaveLength(0);
      sandbox.injectFaults({ drop: true, afterAccept: true });
      await expect(submit(ok())).rejects.toThrow(/socket hang up|ECONNRESET/);
      expect(sandbox.submissions).toHaveLength(1);
      expect((await submit(ok())).status).toBe(200);
    });

    it('the HTTP control endpoint queues faults, lists submissions without bytes, and resets', async () => {
      const post = (path: string, body: unknown) =>
        fetch(`${sandbox.url}${path}`, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        });
      const queued = await post('/__sandbox/faults', [{ code: 'InternalError', httpStatus: 500 }]);
      expect(queued.status).toBe(200);
      expect(((await queued.json()) as { queued: number }).queued).toBe(1);
      const bad = await post('/__sandbox/faults', { count: 0, delayMs: 5 });
      expect(bad.status).toBe(400);

      expect((await submit(ok())).json.ResponseMetadata.Error?.Code).toBe('InternalError');
      const bytes = randomBytes(1234);
      expect((await submit([requestField(fileRequest()), imageFile(bytes)])).status).toBe(200);

      const list = (await (await fetch(`${sandbox.url}/__sandbox/submissions`)).json()) as Record<string, unknown>[];
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        taskId: 'task-1',
        size: 1234,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
      expect(list[0]).not.toHaveProperty('file');

      expect((await post('/__sandbox/reset', {})).status).toBe(200);
      expect(sandbox.submissions).toHaveLength(0);
      expect((await fetch(`${sandbox.url}/__sandbox/nope`)).status).toBe(404);
    });
  });
});

describe('IVA sandbox with session credentials', () => {
  const sts: VolcCredentials = { accessKeyId: 'AKSTS', secretAccessKey: 'sts-secret', sessionToken: 'token-abc' };
  let sandbox: IvaSandbox;
  beforeAll(async () => {
    sandbox = await startIvaSandbox({ credentials: sts });
  });
  afterAll(async () => {
    await sandbox.close();
  });
  const parts = (): FormPart[] => [requestField(fileRequest()), imageFile(randomBytes(10))];

  it('accepts the signed session token', async () => {
    const res = await signedSubmit(sandbox.url, parts(), { credentials: sts });
    expect(res.status).toBe(200);
  });

  it('a missing or wrong X-Security-Token → InvalidSecretToken 401', async () => {
    const missing = await signedSubmit(sandbox.url, parts(), {
      credentials: { accessKeyId: 'AKSTS', secretAccessKey: 'sts-secret' },
    });
    expect(missing.status).toBe(401);
    expect(missing.json.ResponseMetadata.Error?.Code).toBe('InvalidSecretToken');
    const wrong = await signedSubmit(sandbox.url, parts(), { credentials: { ...sts, sessionToken: 'token-xyz' } });
    expect(wrong.json.ResponseMetadata.Error?.Code).toBe('InvalidSecretToken');
  });
});

describe('IVA sandbox close()', () => {
  it('cancels pending callbacks and stops answering', async () => {
    const receiver = await startTestServer(() => ({ status: 200 }));
    const sandbox = await startIvaSandbox({
      credentials: creds,
      callbackUrl: `${receiver.url}/cb`,
      callbackDelayMs: 500,
    });
    const res = await signedSubmit(sandbox.url, [requestField(fileRequest()), imageFile(randomBytes(10))], {
      credentials: creds,
    });
    expect(res.status).toBe(200);
    const started = Date.now();
    await sandbox.close();
    expect(Date.now() - started).toBeLessThan(400);
    await new Promise((r) => setTimeout(r, 600));
    expect(receiver.hits).toHaveLength(0);
    await expect(fetch(`${sandbox.url}/__sandbox/submissions`)).rejects.toThrow();
    await receiver.close();
  });
});
