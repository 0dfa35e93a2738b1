/**
 * Results over HTTPS (GET /v1/submissions/{id}/result, /results, /results/{ResultId})
 * through the local stack with the real functions: the stored callback body comes back
 * byte for byte with the content type it arrived with, inline when small UTF-8 text and
 * by a 303 to a presigned S3 GET otherwise. Runs on s3rver, and on Ceph RGW when one is
 * configured (Ceph verifies the presigned URL's signature).
 */
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INLINE_RESULT_MAX_BYTES, RESULT_ID_HEADER } from '../../lib/api/index';
import type { ResultItem } from '../../lib/api/wire';
import { createS3Client } from '../../lib/storage/s3-client';
import { uniqueBucketName } from '../../local/servers/ceph';
import { stackBackends, until } from '../support/e2e';
import { startLocalStack, type LocalStack } from '../../local/stack/index';
import { checkedFetch, signedApi } from '../support/openapi';

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const taskId = (label: string): string => `res-${label}-${randomBytes(4).toString('hex')}`;

interface ErrorBody {
  ResponseMetadata: { Error: { Code: string; Message: string } };
}
interface ListBody {
  SubmissionId: string;
  Status: string;
  ResultStatus?: string;
  Items: ResultItem[];
}

const backends = stackBackends();

describe.each(backends)('results over HTTPS on $name', ({ name, s3, enabled }) => {
  describe.skipIf(!enabled)(name, () => {
    let stack: LocalStack;
    let s3c: S3Client;
    const api = (path: string, init: RequestInit = {}): Promise<Response> =>
      signedApi(stack.info)(path, { redirect: 'manual', ...init });
    /** Posts a callback and, once it is in the inbox (200), waits until result-callback filed it. */
    const callback = async (body: Uint8Array | string, contentType: string): Promise<Response> => {
      const res = await checkedFetch(stack.apiUrl)(stack.callbackUrl.slice(stack.apiUrl.length), {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      if (res.status !== 200) return res;
      const { inbox } = (await res.clone().json()) as { inbox: string };
      await until(
        'the callback filed',
        () =>
          s3c.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: `callbacks-inbox/${inbox}` })).then(
            () => undefined,
            () => true,
          ),
        { timeoutMs: 30_000 },
      );
      return res;
    };
    const errorCode = async (res: Response): Promise<string> =>
      ((await res.json()) as ErrorBody).ResponseMetadata.Error.Code;

    /** A direct image submission; the sandbox's own callback only when `autoCallback`. */
    async function submit(task: string): Promise<{ submissionId: string; imageId: string }> {
      const form = new FormData();
      form.set('Request', JSON.stringify({ TaskID: task, Image: { Name: 'cat.jpg', Source: 'file' } }));
      form.set('ImageFile', new Blob([randomBytes(2000)], { type: 'image/jpeg' }), 'cat.jpg');
      const res = await api('/v1/images', { method: 'POST', body: form });
      const body = (await res.json()) as { Result: { ImageID: string; SubmissionId: string } };
      expect(res.status, JSON.stringify(body)).toBe(200);
      return { submissionId: body.Result.SubmissionId, imageId: body.Result.ImageID };
    }

    beforeAll(async () => {
      stack = await startLocalStack({
        ...(s3 ? { s3: s3(), bucket: uniqueBucketName('results') } : {}),
        sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
        functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR' },
        log: () => undefined,
      });
      s3c = createS3Client({
        endpoint: stack.s3Endpoint,
        region: stack.s3Region,
        forcePathStyle: true,
        credentials: { accessKeyId: stack.s3AccessKeyId, secretAccessKey: stack.s3SecretAccessKey },
      });
    });

    afterAll(async () => {
      s3c?.destroy();
      await stack?.close();
    });

    it('GET …/result returns the final callback body byte for byte with its content type', async () => {
      const task = taskId('final');
      const { submissionId, imageId } = await submit(task);
      await until('completed', async () => {
        const v = (await (await api(`/v1/submissions/${submissionId}`)).json()) as { Status: string };
        return v.Status === 'completed' ? v : undefined;
      });
      const delivered = await until('the delivery record', async () =>
        stack.sandbox?.callbacks.find((c) => c.ok && c.body.includes(imageId)),
      );

      const res = await api(`/v1/submissions/${submissionId}/result`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(Buffer.from(bytes).toString('utf8')).toBe(delivered.body);
      expect(res.headers.get(RESULT_ID_HEADER)).toBe(`${sha(bytes)}.json`);
    });

    it('answers 404 ResultNotReady while there is no final result, and 404 SubmissionNotFound for an unknown id', async () => {
      stack.sandbox!.setCallbackUrl(undefined);
      try {
        const { submissionId } = await submit(taskId('pending'));
        const res = await api(`/v1/submissions/${submissionId}/result`);
        expect(res.status).toBe(404);
        expect(await errorCode(res)).toBe('ResultNotReady');
        const list = await api(`/v1/submissions/${submissionId}/results`);
        expect(list.status).toBe(200);
        expect(((await list.json()) as ListBody).Items).toEqual([]);
      } finally {
        stack.sandbox!.setCallbackUrl(stack.callbackUrl);
      }
      for (const path of ['/result', '/results', `/results/${'a'.repeat(64)}.json`]) {
        const res = await api(`/v1/submissions/api_nope${path}`);
        expect(res.status, path).toBe(404);
        expect(await errorCode(res), path).toBe('SubmissionNotFound');
      }
    });

    it('lists every callback body (progress and final), each fetchable; a large final body redirects to a presigned GET', async () => {
      stack.sandbox!.setCallbackUrl(undefined);
      let ids: { submissionId: string; imageId: string };
      const task = taskId('history');
      try {
        ids = await submit(task);
      } finally {
        stack.sandbox!.setCallbackUrl(stack.callbackUrl);
      }
      const { submissionId, imageId } = ids;

      // A progress callback: no final result yet.
      const progress = JSON.stringify({ TaskID: task, ImageID: imageId, Status: 'running', Progress: 40 });
      expect((await callback(progress, 'application/json')).status).toBe(200);
      const early = await api(`/v1/submissions/${submissionId}/result`);
      expect(early.status).toBe(404);
      expect(await errorCode(early)).toBe('ResultNotReady');

      // A final body past the inline limit.
      const labels = Array.from({ length: 3000 }, (_, i) => ({ Name: `label-${i}-${'x'.repeat(960)}`, Score: i }));
      const big = Buffer.from(
        JSON.stringify({ TaskID: task, ImageID: imageId, Status: 'success', Result: { Labels: labels } }),
      );
      expect(big.length).toBeGreaterThan(2 * 1024 * 1024);
      expect((await callback(big, 'application/json; charset=utf-8')).status).toBe(200);

      const res = await api(`/v1/submissions/${submissionId}/result`);
      expect(res.status).toBe(303);
      const location = res.headers.get('location')!;
      expect(new URL(location).origin).toBe(new URL(stack.s3Endpoint).origin);
      expect(res.headers.get(RESULT_ID_HEADER)).toBe(`${sha(big)}.json`);
      const fetched = await fetch(location);
      expect(fetched.status).toBe(200);
      expect(fetched.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(sha(new Uint8Array(await fetched.arrayBuffer()))).toBe(sha(big));

      // A tampered URL is refused by a real S3 (Ceph verifies signatures; s3rver does not).
      if (name === 'ceph') {
        const tampered = location.replace(
          /X-Amz-Signature=([0-9a-f])/,
          (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`,
        );
        expect((await fetch(tampered)).status).toBe(403);
      }

      const list = await api(`/v1/submissions/${submissionId}/results`);
      expect(list.status).toBe(200);
      const body = (await list.json()) as ListBody;
      expect(body).toMatchObject({ SubmissionId: submissionId, Status: 'completed', ResultStatus: 'completed' });
      expect(body.Items.map((i) => i.ResultId).sort()).toEqual(
        [`${sha(Buffer.from(progress))}.json`, `${sha(big)}.json`].sort(),
      );
      expect(body.Items.filter((i) => i.Current).map((i) => i.ResultId)).toEqual([`${sha(big)}.json`]);
      expect(body.Items.find((i) => i.ResultId === `${sha(big)}.json`)?.Size).toBe(big.length);

      const progressItem = body.Items.find((i) => !i.Current)!;
      const one = await api(progressItem.Url);
      expect(one.status).toBe(200);
      expect(one.headers.get('content-type')).toBe('application/json');
      expect(await one.text()).toBe(progress);

      // A replay of the progress body is stored once: the listing does not grow.
      expect((await callback(progress, 'application/json')).status).toBe(200);
      expect(((await (await api(`/v1/submissions/${submissionId}/results`)).json()) as ListBody).Items).toHaveLength(2);
    }, 60_000);

    it('a body that is not UTF-8 text redirects (byte-exact), one at the inline limit is inline, bad ids are 400/404', async () => {
      stack.sandbox!.setCallbackUrl(undefined);
      const task = taskId('bytes');
      let ids: { submissionId: string; imageId: string };
      try {
        ids = await submit(task);
      } finally {
        stack.sandbox!.setCallbackUrl(stack.callbackUrl);
      }
      const { submissionId, imageId } = ids;
      // Exactly INLINE_RESULT_MAX_BYTES of UTF-8 JSON (with multi-byte characters): still inline.
      const base = JSON.stringify({ TaskID: task, ImageID: imageId, Status: 'running', Pad: 'ü' });
      const pad = 'ü'.repeat(Math.floor((INLINE_RESULT_MAX_BYTES - Buffer.byteLength(base)) / 2));
      let text = base.replace('"Pad":"ü"', `"Pad":"ü${pad}"`);
      text = text.replace('"Pad":"', `"Pad":"${'a'.repeat(INLINE_RESULT_MAX_BYTES - Buffer.byteLength(text))}`);
      const atLimit = Buffer.from(text);
      expect(atLimit.length).toBe(INLINE_RESULT_MAX_BYTES);
      expect((await callback(atLimit, 'application/json')).status).toBe(200);
      // Bytes API Gateway could not carry as text: written straight to the submission's folder.
      const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80]), randomBytes(1000)]);
      const key = `results/${task}/${imageId}/${sha(binary)}.txt`;
      await s3c.send(
        new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: binary, ContentType: 'application/octet-stream' }),
      );

      const body = (await (await api(`/v1/submissions/${submissionId}/results`)).json()) as ListBody;
      expect(body.Items.map((i) => i.ResultId).sort()).toEqual([`${sha(atLimit)}.json`, `${sha(binary)}.txt`].sort());
      const inline = await api(`/v1/submissions/${submissionId}/results/${sha(atLimit)}.json`);
      expect(inline.status).toBe(200);
      expect(inline.headers.get('content-type')).toBe('application/json');
      expect(sha(new Uint8Array(await inline.arrayBuffer()))).toBe(sha(atLimit));

      const redirected = await api(`/v1/submissions/${submissionId}/results/${sha(binary)}.txt`);
      expect(redirected.status).toBe(303);
      const fetched = await fetch(redirected.headers.get('location')!);
      expect(fetched.headers.get('content-type')).toBe('application/octet-stream');
      expect(sha(new Uint8Array(await fetched.arrayBuffer()))).toBe(sha(binary));

      const bad = await api(`/v1/submissions/${submissionId}/results/..%2F..%2Fincoming`);
      expect(bad.status).toBe(400);
      expect(await errorCode(bad)).toBe('InvalidResultId');
      const missing = await api(`/v1/submissions/${submissionId}/results/${'0'.repeat(64)}.json`);
      expect(missing.status).toBe(404);
      expect(await errorCode(missing)).toBe('ResultNotFound');
      const post = await api(`/v1/submissions/${submissionId}/result`, { method: 'POST' });
      expect(post.status).toBe(404);
    }, 60_000);
  });
});
