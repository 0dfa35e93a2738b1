/**
 * End to end through the local stack with the REAL functions, driven only from outside:
 * the S3 API (@aws-sdk/client-s3 against the stack's endpoint) and HTTP (fetch against
 * the API, the sandbox's /__sandbox control routes, /__local/events). Runs on the
 * embedded s3rver always, and on the Ceph RGW when one is configured (local/servers/ceph.ts;
 * required in CI).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lib/storage/s3-client';
import { startIvaSandbox } from '../../local/iva-sandbox/index';
import { uniqueBucketName } from '../../local/servers/ceph';
import { stackBackends, until } from '../support/e2e';
import { signedApi } from '../support/openapi';
import { startLocalStack, type LocalStack, type StackInfo } from '../../local/stack/index';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERBOSE = process.env.E2E_VERBOSE === '1';

interface SandboxSubmission {
  taskId: string;
  name: string;
  source: 'url' | 'file';
  url?: string;
  sha256: string;
  size: number;
  dataId: string;
}

interface SubmissionView {
  SubmissionId: string;
  Status: string;
  Source: string;
  TaskID?: string;
  ImageID?: string;
  VideoID?: string;
  Error?: { Code: string; Message: string };
  Result?: { Status: string; Location: string };
  Object?: { Bucket: string; Key: string };
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const taskId = (label: string): string => `e2e-${label}-${randomBytes(4).toString('hex')}`;

/** HTTP helpers against one running stack's printed endpoints. */
function client(info: StackInfo) {
  const api = signedApi(info);
  return {
    api,
    async sandboxSubmissions(): Promise<SandboxSubmission[]> {
      return (await (await fetch(`${info.ivaEndpoint}/__sandbox/submissions`)).json()) as SandboxSubmission[];
    },
    async injectFaults(faults: unknown[]): Promise<void> {
      const res = await fetch(`${info.ivaEndpoint}/__sandbox/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(faults),
      });
      expect(res.status).toBe(200);
    },
    async listTask(task: string): Promise<SubmissionView[]> {
      const items: SubmissionView[] = [];
      let cursor: string | undefined;
      do {
        const res = await api(
          `/v1/tasks/${encodeURIComponent(task)}/submissions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        expect(res.status).toBe(200);
        const page = (await res.json()) as { Items: SubmissionView[]; NextCursor?: string };
        items.push(...page.Items);
        cursor = page.NextCursor;
      } while (cursor);
      return items;
    },
    async submission(id: string): Promise<SubmissionView> {
      const res = await api(`/v1/submissions/${encodeURIComponent(id)}`);
      expect(res.status).toBe(200);
      return (await res.json()) as SubmissionView;
    },
    s3(): S3Client {
      return createS3Client({
        endpoint: info.s3Endpoint,
        region: info.s3Region,
        forcePathStyle: true,
        credentials: { accessKeyId: info.s3AccessKeyId, secretAccessKey: info.s3SecretAccessKey },
      });
    },
  };
}

function imageForm(request: unknown, bytes: Buffer, fileName = 'cat.jpg'): FormData {
  const form = new FormData();
  // IVA's format: Request is a plain text field holding JSON, like `curl -F 'Request={…}'`.
  form.set('Request', JSON.stringify(request));
  form.set('ImageFile', new Blob([bytes], { type: 'image/jpeg' }), fileName);
  return form;
}

const backends = stackBackends();

describe.each(backends)('local stack on $name', ({ name, s3, enabled }) => {
  describe.skipIf(!enabled)(`${name}`, () => {
    let stack: LocalStack;
    let http: ReturnType<typeof client>;
    let s3c: S3Client;
    const lines: string[] = [];

    beforeAll(async () => {
      stack = await startLocalStack({
        ...(s3 ? { s3: s3(), bucket: uniqueBucketName('e2e') } : {}),
        sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
        sqs: { visibilityTimeoutMs: 500, maxReceiveCount: 5, maxConcurrency: 4, batchingWindowMs: 20 },
        functionEnv: { POWERTOOLS_LOG_LEVEL: VERBOSE ? 'INFO' : 'ERROR' },
        log: (line) => {
          lines.push(line);
          if (VERBOSE) console.log(`[${name}] ${line}`);
        },
      });
      http = client(stack.info);
      s3c = http.s3();
    });

    afterAll(async () => {
      s3c?.destroy();
      await stack?.close();
    });

    it('an S3 upload becomes a Source=url submission of the same bytes, then a completed result', async () => {
      const task = taskId('upload');
      const key = `incoming/${task}/my cat+1 ü.jpg`;
      const bytes = randomBytes(50_000);
      await s3c.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: bytes, ContentType: 'image/jpeg' }));

      const submitted = await until('the sandbox submission', async () =>
        (await http.sandboxSubmissions()).find((s) => s.taskId === task),
      );
      expect(submitted.source).toBe('url');
      expect(submitted.name).toBe('my cat+1 ü.jpg');
      expect(submitted.sha256).toBe(sha(bytes));
      expect(new URL(submitted.url!).origin).toBe(new URL(stack.s3Endpoint).origin);

      const done = await until('the completed status', async () =>
        (await http.listTask(task)).find((s) => s.Status === 'completed'),
      );
      expect(done.Object?.Key).toBe(key);
      expect(done.ImageID).toBe(submitted.dataId);
      const view = await http.submission(done.SubmissionId);
      expect(view.Status).toBe('completed');
      expect(view.Result?.Location).toMatch(new RegExp(`^s3://${stack.bucket}/results/`));

      // The stored result is the callback body, and an event names it.
      const location = new URL(view.Result!.Location.replace(/^s3:/, 'http:'));
      const stored = await s3c.send(
        new GetObjectCommand({ Bucket: stack.bucket, Key: decodeURIComponent(location.pathname.slice(1)) }),
      );
      expect(JSON.parse(await stored.Body!.transformToString())).toMatchObject({
        TaskID: task,
        ImageID: submitted.dataId,
      });
      // The ledger shows the result first and the event follows (so a consumer reacting to
      // the event finds the status already there): wait for it rather than race it.
      await until('the result event', async () => {
        const events = (await (await fetch(`${stack.apiUrl}__local/events`)).json()) as {
          source: string;
          detail: Record<string, unknown>;
        }[];
        return events.some((e) => e.source === 'iva-bridge' && JSON.stringify(e.detail).includes(submitted.dataId))
          ? true
          : undefined;
      });
      expect(lines.some((l) => l.startsWith('s3: upload seen') && l.includes(task))).toBe(true);
    });

    it('a direct multipart submission (and the vendor-compatible form) becomes a completed result', async () => {
      const task = taskId('direct');
      const bytes = randomBytes(30_000);
      const res = await http.api('/v1/images', {
        method: 'POST',
        body: imageForm({ TaskID: task, Image: { Name: 'cat.jpg', Source: 'file' } }, bytes),
      });
      const body = (await res.json()) as { Result?: { ImageID: string; SubmissionId: string } };
      expect(res.status, JSON.stringify(body)).toBe(200);
      const sandbox = (await http.sandboxSubmissions()).find((s) => s.taskId === task)!;
      expect(sandbox).toMatchObject({ source: 'file', sha256: sha(bytes), dataId: body.Result!.ImageID });
      const view = await until('completed', async () => {
        const v = await http.submission(body.Result!.SubmissionId);
        return v.Status === 'completed' ? v : undefined;
      });
      expect(view.Result?.Location).toMatch(/^s3:\/\//);

      const vendor = await http.api('/?Action=AddAsyncTaskImageData&Version=2022-05-13', {
        method: 'POST',
        body: imageForm({ TaskID: task, Image: { Name: 'dog.jpg', Source: 'file' } }, randomBytes(1000), 'dog.jpg'),
      });
      expect(vendor.status).toBe(200);
      expect(((await vendor.json()) as { Result: { ImageID: string } }).Result.ImageID).toMatch(/^img-/);
    });

    it('a direct submission whose answer is lost: 202 SubmissionUncertain, an event, then the owner resolves it and the result links', async () => {
      const task = taskId('uncertain');
      await http.injectFaults([{ drop: true, afterAccept: true }]);
      const res = await http.api('/v1/images', {
        method: 'POST',
        body: imageForm({ TaskID: task, Image: { Name: 'lost.jpg', Source: 'file' } }, randomBytes(2_000)),
      });
      expect(res.status).toBe(202);
      const body = (await res.json()) as { SubmissionId: string; ResponseMetadata: { Error: { Code: string } } };
      expect(body.ResponseMetadata.Error.Code).toBe('SubmissionUncertain');
      const id = body.SubmissionId;
      expect((await http.submission(id)).Status).toBe('uncertain');
      const events = (await (await fetch(`${stack.apiUrl}__local/events`)).json()) as {
        source: string;
        'detail-type': string;
        detail: Record<string, unknown>;
      }[];
      expect(
        events.filter((e) => e['detail-type'] === 'IVA Submission Uncertain' && e.detail.submissionId === id),
      ).toEqual([expect.objectContaining({ source: 'iva-bridge', detail: expect.objectContaining({ taskId: task }) })]);
      // IVA did accept it (the sandbox knows): one submission, whose callback arrives unmatched.
      const atIva = (await http.sandboxSubmissions()).filter((s) => s.taskId === task);
      expect(atIva).toHaveLength(1);
      const dataId = atIva[0]?.dataId ?? '';
      await until('the callback delivered', async () => {
        const callbacks = (await (await fetch(`${stack.ivaEndpoint}/__sandbox/callbacks`)).json()) as {
          dataId: string;
          ok: boolean;
        }[];
        return callbacks.some((c) => c.dataId === dataId && c.ok) ? true : undefined;
      });
      // Delivered = in the inbox; filed (recorded on its data id, announced) a moment later.
      await until('the callback filed', async () => {
        const events = (await (await fetch(`${stack.apiUrl}__local/events`)).json()) as {
          'detail-type': string;
          detail: Record<string, unknown>;
        }[];
        return events.some((e) => e['detail-type'] === 'IVA Result Stored' && e.detail.dataId === dataId)
          ? true
          : undefined;
      });

      const resolve = (payload: unknown, contentType = 'application/json') =>
        http.api(`/v1/submissions/${encodeURIComponent(id)}/resolve`, {
          method: 'POST',
          headers: { 'content-type': contentType },
          body: typeof payload === 'string' ? payload : JSON.stringify(payload),
        });
      for (const [bad, code] of [
        [{ Status: 'done' }, 'InvalidResolution'],
        [{ Status: 'failed', ImageID: dataId }, 'InvalidResolution'],
        [{ Status: 'submitted', ImageID: dataId, Extra: 1 }, 'InvalidResolution'],
        ['{not json', 'InvalidJson'],
      ] as const) {
        const refused = await resolve(bad);
        expect(refused.status, JSON.stringify(bad)).toBe(400);
        expect(
          ((await refused.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
        ).toBe(code);
      }
      expect((await http.submission(id)).Status).toBe('uncertain');

      const resolved = await resolve({ Status: 'submitted', ImageID: dataId, Note: 'found in IVA' });
      expect(resolved.status).toBe(200);
      expect(await resolved.json()).toMatchObject({
        SubmissionId: id,
        Status: 'completed',
        ImageID: dataId,
        Resolution: { Action: 'submitted', Note: 'found in IVA' },
        Uncertain: { Code: 'ConnectionLostAfterSend' },
      });
      const again = await resolve({ Status: 'failed' });
      expect(again.status).toBe(409);
      expect(
        ((await again.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
      ).toBe('SubmissionNotUncertain');
      const missing = await http.api('/v1/submissions/api_nope/resolve', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"Status":"failed"}',
      });
      expect(missing.status).toBe(404);
    });

    it('the upload route takes a file larger than the direct limit', async () => {
      const task = taskId('uploads');
      const bytes = randomBytes(6 * 1024 * 1024);
      const res = await http.api('/v1/uploads', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          TaskID: task,
          Kind: 'image',
          Name: 'big.jpg',
          ContentType: 'image/jpeg',
          Size: bytes.length,
        }),
      });
      const ticket = (await res.json()) as {
        SubmissionId: string;
        Url: string;
        Method: string;
        Headers: Record<string, string>;
      };
      expect(res.status, JSON.stringify(ticket)).toBe(200);
      const put = await fetch(ticket.Url, { method: ticket.Method, headers: ticket.Headers, body: bytes });
      expect(put.status, await put.text()).toBe(200);

      const view = await until('completed', async () => {
        const v = await http.submission(ticket.SubmissionId);
        return v.Status === 'completed' ? v : undefined;
      });
      const sandbox = (await http.sandboxSubmissions()).filter((s) => s.taskId === task);
      expect(sandbox).toHaveLength(1);
      expect(sandbox[0]).toMatchObject({ source: 'url', size: bytes.length, sha256: sha(bytes), dataId: view.ImageID });
    });

    it('a multipart upload (3 parts, through the API gateway) reaches IVA once with the exact bytes, by its CompleteMultipartUpload event', async () => {
      const task = taskId('multipart');
      const MiB = 1024 * 1024;
      const bytes = randomBytes(11 * MiB + 777);
      const res = await http.api('/v1/uploads', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          TaskID: task,
          Kind: 'video',
          Name: 'long.mp4',
          ContentType: 'video/mp4',
          Size: bytes.length,
          Multipart: true,
          PartSize: 5 * MiB,
        }),
      });
      const ticket = (await res.json()) as {
        SubmissionId: string;
        PartCount: number;
        Parts: { PartNumber: number; Url: string; Size: number }[];
      };
      expect(res.status, JSON.stringify(ticket)).toBe(200);
      expect(ticket.PartCount).toBe(3);
      const id = ticket.SubmissionId;
      const post = (route: string, body?: unknown, headers: Record<string, string> = {}) =>
        http.api(`/v1/uploads/${id}/${route}`, {
          method: 'POST',
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const code = async (r: Response) =>
        ((await r.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code;

      // Fresh URLs for parts 3 and 1 (in the order asked); part 3 goes up with its fresh one.
      const fresh = await post('parts', { PartNumbers: [3, 1] });
      const urls = (await fresh.json()) as { SubmissionId: string; Parts: { PartNumber: number; Url: string }[] };
      expect(fresh.status, JSON.stringify(urls)).toBe(200);
      expect(urls.SubmissionId).toBe(id);
      expect(urls.Parts.map((p) => p.PartNumber)).toEqual([3, 1]);
      const outside = await post('parts', { PartNumbers: [4] });
      expect(outside.status).toBe(400);
      expect(await code(outside)).toBe('InvalidPartNumbers');
      const urlOf = (n: number) => (n === 3 ? urls.Parts[0]!.Url : ticket.Parts.find((p) => p.PartNumber === n)!.Url);

      const etags = await Promise.all(
        ticket.Parts.map(async (part) => {
          const from = (part.PartNumber - 1) * 5 * MiB;
          const put = await fetch(urlOf(part.PartNumber), {
            method: 'PUT',
            body: bytes.subarray(from, from + part.Size),
          });
          expect(put.status, await put.text()).toBe(200);
          return { PartNumber: part.PartNumber, ETag: put.headers.get('etag') };
        }),
      );
      const partial = await post('complete', { Parts: etags.slice(0, 2) });
      expect(partial.status).toBe(400);
      expect(await code(partial)).toBe('InvalidParts');
      const key = { 'idempotency-key': randomBytes(16).toString('hex') };
      const done = await post('complete', { Parts: etags }, key);
      const completed = (await done.json()) as { SubmissionId: string; Size: number; ETag?: string };
      expect(done.status, JSON.stringify(completed)).toBe(200);
      expect(completed).toMatchObject({ SubmissionId: id, Size: bytes.length });
      expect(completed.ETag).toBeTruthy();
      const again = await post('complete', { Parts: etags }, key);
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await again.json()).toEqual(completed);

      const view = await until('completed', async () => {
        const v = await http.submission(id);
        return v.Status === 'completed' ? v : undefined;
      });
      expect(view.Source).toBe('upload');
      const sandbox = (await http.sandboxSubmissions()).filter((s) => s.taskId === task);
      expect(sandbox).toHaveLength(1);
      expect(sandbox[0]).toMatchObject({ source: 'url', size: bytes.length, sha256: sha(bytes), dataId: view.VideoID });
      expect(lines.some((l) => l.includes('ObjectCreated:CompleteMultipartUpload') && l.includes(task))).toBe(true);
      // Its object arrived: no more URLs, no abort.
      for (const [route, body] of [
        ['parts', { PartNumbers: [1] }],
        ['abort', undefined],
      ] as const) {
        const closed = await post(route, body);
        expect(closed.status, route).toBe(409);
        expect(await code(closed), route).toBe('UploadClosed');
      }
    });

    it("aborting a multipart upload ends it failed UploadAborted; the multipart routes' refusals are the documented ones", async () => {
      const task = taskId('mp-abort');
      const MiB = 1024 * 1024;
      const post = (path: string, body?: unknown) =>
        http.api(path, {
          method: 'POST',
          ...(body === undefined
            ? {}
            : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        });
      const code = async (r: Response) =>
        ((await r.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code;
      const upload = (extra: Record<string, unknown>) =>
        post('/v1/uploads', { TaskID: task, Kind: 'video', Name: 'a.mp4', Size: 6 * MiB, ...extra });

      for (const [extra, want] of [
        [{ Multipart: 'yes' }, 'InvalidMultipart'],
        [{ Multipart: false, PartSize: 5 * MiB }, 'InvalidMultipart'],
        [{ PartSize: MiB }, 'InvalidPartSize'],
      ] as const) {
        const refused = await upload(extra);
        expect(refused.status, JSON.stringify(extra)).toBe(400);
        expect(await code(refused)).toBe(want);
      }

      const res = await upload({ Multipart: true });
      const ticket = (await res.json()) as { SubmissionId: string; Method: string; PartCount: number };
      expect(res.status, JSON.stringify(ticket)).toBe(200);
      expect(ticket).toMatchObject({ Method: 'MULTIPART', PartCount: 1 });
      const id = ticket.SubmissionId;
      // No part was PUT: S3 refuses the completion.
      const missing = await post(`/v1/uploads/${id}/complete`, {
        Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }],
      });
      expect(missing.status).toBe(400);
      expect(await code(missing)).toBe('InvalidPart');

      const aborted = await post(`/v1/uploads/${id}/abort`);
      const view = (await aborted.json()) as SubmissionView;
      expect(aborted.status, JSON.stringify(view)).toBe(200);
      expect(view).toMatchObject({ SubmissionId: id, Status: 'failed', Error: { Code: 'UploadAborted' } });
      expect((await post(`/v1/uploads/${id}/abort`)).status).toBe(200);
      const late = await post(`/v1/uploads/${id}/complete`, {
        Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }],
      });
      expect(late.status).toBe(409);
      expect(await code(late)).toBe('UploadClosed');
      expect((await http.submission(id)).Status).toBe('failed');

      // A single-PUT upload has no parts; an unknown id is not found.
      const single = await upload({});
      const put = (await single.json()) as { SubmissionId: string; Method: string };
      expect(put.Method).toBe('PUT');
      const notMultipart = await post(`/v1/uploads/${put.SubmissionId}/parts`, { PartNumbers: [1] });
      expect(notMultipart.status).toBe(409);
      expect(await code(notMultipart)).toBe('UploadNotMultipart');
      const unknown = await post('/v1/uploads/upl_nothing_here/abort');
      expect(unknown.status).toBe(404);
      expect(await code(unknown)).toBe('SubmissionNotFound');
    });

    it('a direct submission over the limit gets PayloadTooLarge naming POST /v1/uploads', async () => {
      const task = taskId('big');
      // A signed body has a Content-Length: the authorizer's size guard refuses both (403)
      // before any function runs.
      for (const size of [4_600_000, 5_500_000]) {
        const res = await http.api('/v1/images', {
          method: 'POST',
          body: imageForm({ TaskID: task, Image: { Name: 'big.jpg', Source: 'file' } }, randomBytes(size)),
        });
        const body = (await res.json()) as { ResponseMetadata: { Error: { Code: string; Message: string } } };
        expect(res.status, JSON.stringify(body)).toBe(403);
        expect(body.ResponseMetadata.Error.Code).toBe('PayloadTooLarge');
        expect(body.ResponseMetadata.Error.Message).toContain('/v1/uploads');
      }
      expect((await http.sandboxSubmissions()).some((s) => s.taskId === task)).toBe(false);
    });

    it('a burst of 50 uploads under IVA faults ends with each object in exactly one final state, none lost or doubled, the dropped ones uncertain', async () => {
      const task = taskId('burst');
      // Earlier tests on this stack inject faults of their own: count this test's only.
      const faultedBefore = (
        (await (await fetch(`${stack.ivaEndpoint}/__sandbox/requests`)).json()) as { fault?: string }[]
      ).filter((r) => r.fault).length;
      await http.injectFaults([
        { count: 4, code: 'FlowLimitExceeded', httpStatus: 429 },
        { count: 3, code: 'ServiceUnavailable', httpStatus: 503 },
        { count: 2, drop: true },
      ]);
      const names = Array.from({ length: 50 }, (_, i) => `obj-${i}.jpg`);
      await Promise.all(
        names.map((n, i) =>
          s3c.send(
            new PutObjectCommand({
              Bucket: stack.bucket,
              Key: `incoming/${task}/${n}`,
              Body: Buffer.from(`image ${i}`),
              ContentType: 'image/jpeg',
            }),
          ),
        ),
      );

      const final = await until(
        'every object settled',
        async () => {
          const items = await http.listTask(task);
          return items.length === 50 &&
            items.every((s) => s.Status === 'completed' || s.Status === 'failed' || s.Status === 'uncertain')
            ? items
            : undefined;
        },
        { timeoutMs: 60_000, everyMs: 250 },
      );
      const submissions = (await http.sandboxSubmissions()).filter((s) => s.taskId === task);
      for (const name of names) {
        const views = final.filter((v) => v.Object?.Key === `incoming/${task}/${name}`);
        expect(views, name).toHaveLength(1);
        const count = submissions.filter((s) => s.name === name).length;
        if (views[0]!.Status === 'completed') expect(count, name).toBe(1);
        else expect(count, name).toBe(0);
      }
      // IVA's own 429/503 answers are retried and end completed; the two connections dropped
      // after the body was sent are ambiguous to the client: uncertain, never sent again
      // (the sandbox dropped them before accepting, so IVA has none of them: count 0 above).
      expect(final.filter((v) => v.Status !== 'completed').map((v) => `${v.Status}: ${v.Error?.Code}`)).toEqual([
        'uncertain: ConnectionLostAfterSend',
        'uncertain: ConnectionLostAfterSend',
      ]);
      expect(await (await fetch(`${stack.ivaEndpoint}/__sandbox/faults`)).json()).toEqual([]);
      const requests = (await (await fetch(`${stack.ivaEndpoint}/__sandbox/requests`)).json()) as { fault?: string }[];
      expect(requests.filter((r) => r.fault).length - faultedBefore).toBe(9);
      expect(stack.deadLetters).toEqual([]);

      // Their owner knows IVA has neither (its console shows nothing): resubmit both. Each
      // goes back through the intake queue and reaches IVA exactly once.
      const uncertain = final.filter((v) => v.Status === 'uncertain');
      for (const v of uncertain) {
        const res = await http.api(`/v1/submissions/${encodeURIComponent(v.SubmissionId)}/resubmit`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ Note: 'not in the IVA console' }),
        });
        expect(res.status, await res.clone().text()).toBe(202);
        expect(((await res.json()) as { Status: string }).Status).toBe('pending');
        const again = await http.api(`/v1/submissions/${encodeURIComponent(v.SubmissionId)}/resubmit`, {
          method: 'POST',
        });
        expect(again.status).toBe(409);
      }
      for (const v of uncertain) {
        const done = await until(
          `${v.SubmissionId} completed after its resubmission`,
          async () => {
            const view = await http.submission(v.SubmissionId);
            return view.Status === 'completed' ? view : undefined;
          },
          { timeoutMs: 30_000, everyMs: 250 },
        );
        expect(done.Object?.Key).toBe(v.Object?.Key);
        const name = v.Object?.Key.split('/').pop();
        expect((await http.sandboxSubmissions()).filter((s) => s.taskId === task && s.name === name)).toHaveLength(1);
      }
    }, 120_000);
  });
});

describe('pointed at another IVA endpoint (the real-IVA mode)', () => {
  it('runs no sandbox and signs submissions with the given keys towards the given endpoint', async () => {
    // A sandbox started on its own stands in for the remote IVA: it only accepts these keys.
    const credentials = { accessKeyId: 'AKLTREMOTEE2E', secretAccessKey: randomBytes(16).toString('hex') };
    const remote = await startIvaSandbox({ credentials });
    const callerEndpoint = process.env.IVA_ENDPOINT;
    const stack = await startLocalStack({
      iva: { endpoint: remote.url, credentials },
      log: () => undefined,
      functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR' },
    });
    try {
      expect(stack.sandbox).toBeUndefined();
      expect(stack.ivaMode).toBe('remote');
      expect(stack.ivaEndpoint).toBe(remote.url);
      const task = taskId('remote');
      const res = await client(stack.info).api('/v1/images', {
        method: 'POST',
        body: imageForm({ TaskID: task, Image: { Name: 'cat.jpg', Source: 'file' } }, randomBytes(500)),
      });
      expect(res.status, await res.text()).toBe(200);
      expect(remote.submissions.map((s) => [s.taskId, s.accessKeyId])).toEqual([[task, credentials.accessKeyId]]);
    } finally {
      await stack.close();
      await remote.close();
    }
    // The functions' environment is the caller's again.
    expect(process.env.IVA_ENDPOINT).toBe(callerEndpoint);
  });
});

describe('npm start', () => {
  it('starts the stack on free ports, serves an upload and a request, and stops cleanly on SIGINT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iva-bridge-npm-start-'));
    const jsonPath = join(dir, 'stack.json');
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Only what the child is told here: no real IVA, no external S3 from the caller's shell.
    for (const name of Object.keys(env))
      if (/^(IVA_|VOLC_|AWS_|CEPH_|LEDGER_TABLE|BUCKET_NAME|CALLBACK_)/.test(name)) delete env[name];
    Object.assign(env, {
      IVA_BRIDGE_API_PORT: '0',
      IVA_BRIDGE_S3_PORT: '0',
      IVA_BRIDGE_IVA_PORT: '0',
      IVA_BRIDGE_DDB_PORT: '0',
      IVA_BRIDGE_EVENTS_PORT: '0',
      IVA_BRIDGE_STACK_JSON: jsonPath,
      IVA_BRIDGE_STATE_DIR: join(dir, 'state'),
      IVA_BRIDGE_AWS_PORT: '0',
      IVA_BRIDGE_SANDBOX_CALLBACK_DELAY_MS: '20',
      POWERTOOLS_LOG_LEVEL: 'WARN',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    const child = spawn('npm', ['start', '--silent'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const info = await until(
        'stack.json',
        async () => (existsSync(jsonPath) ? (JSON.parse(await readFile(jsonPath, 'utf8')) as StackInfo) : undefined),
        { timeoutMs: 30_000 },
      );
      for (const k of [
        's3Endpoint',
        's3AccessKeyId',
        's3SecretAccessKey',
        'bucket',
        'apiUrl',
        'apiKey',
        'callbackUrl',
        'ivaEndpoint',
      ] as const)
        expect(info[k], k).toBeTruthy();
      expect(output).toContain(`s3://${info.bucket}/incoming/`);

      const http = client(info);
      const s3c = http.s3();
      const task = taskId('npm');
      await s3c.send(
        new PutObjectCommand({
          Bucket: info.bucket,
          Key: `incoming/${task}/cat.jpg`,
          Body: randomBytes(2000),
          ContentType: 'image/jpeg',
        }),
      );
      s3c.destroy();
      const done = await until('the upload completed', async () =>
        (await http.listTask(task)).find((s) => s.Status === 'completed'),
      );
      expect(done.Source).toBe('s3');
      const missing = await http.api('/v1/submissions/does-not-exist');
      expect(missing.status).toBe(404);

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(existsSync(jsonPath)).toBe(false);
      expect(output).toContain('stopped.');
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- npm start output ---\n${output.slice(-4000)}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
