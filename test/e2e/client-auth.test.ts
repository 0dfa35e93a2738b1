/**
 * Client authentication against the local stack (npm start's, built from the template):
 * a client written for IVA — here the official @volcengine/openapi signer with the SDK's
 * own form-data body — submits an image through the vendor-compatible route with only
 * the host and the keys changed, using a key issued by `iva-bridge keys issue`. A
 * tampered body, a wrong secret, an unknown or revoked key, a stale X-Date, a replayed
 * signature and an unsigned request are refused with IVA's codes (on the multipart upload
 * routes too); a rotated client's two keys both work. Every answer is checked against
 * docs/openapi.json.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../lib/api/routes';
import { runKeys } from '../../lib/cli/keys';
import { signRequest } from '../../lib/client/signing';
import { startLocalStack, type LocalStack } from '../../local/stack/index';
import { sharedChecker } from '../support/openapi';
import { OracleFormData as FormData, Signer } from '../support/oracle-signer';

const CAT = join(import.meta.dirname, '../../docs/samples/cat.jpg');

let stack: LocalStack;
let dir: string;
let factsFile: string;

beforeAll(async () => {
  stack = await startLocalStack({ log: () => undefined, sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 } });
  dir = await mkdtemp(join(tmpdir(), 'iva-bridge-auth-'));
  factsFile = join(dir, 'stack.json');
  await writeFile(factsFile, JSON.stringify(stack.info));
}, 120_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `iva-bridge keys …` against the local stack; its stdout lines as JSON. */
async function keys(...args: string[]): Promise<{ code: number; out: Record<string, string>[]; err: string }> {
  let out = '';
  let err = '';
  const code = await runKeys(args, {
    stdout: { write: (t: string | Uint8Array) => (out += String(t)) },
    stderr: { write: (t: string) => (err += t) },
    env: { IVA_BRIDGE_STACK_JSON: factsFile },
  });
  return {
    code,
    out: out.trim()
      ? out
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
      : [],
    err,
  };
}

interface Key {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What a vendor client does: the SDK's form body, the SDK's signer, POST /?Action=…&Version=…. */
async function vendorRequest(
  key: Key,
  options: { date?: Date; taskId?: string } = {},
): Promise<{ url: string; init: RequestInit & { headers: Record<string, string>; body: Buffer } }> {
  const form = new FormData();
  form.append(
    'Request',
    JSON.stringify({ TaskID: options.taskId ?? 'auth-task', Image: { Name: 'cat.jpg', Source: 'file' } }),
  );
  form.append('ImageFile', await readFile(CAT), { filename: 'cat.jpg', contentType: 'image/jpeg' });
  const params = { Action: 'AddAsyncTaskImageData', Version: '2022-05-13' };
  const request = {
    region: 'cn-north-1',
    method: 'POST',
    pathname: '/',
    params,
    headers: form.getHeaders(),
    body: form,
  };
  new Signer(request, 'iva').addAuthorization(
    { accessKeyId: key.accessKeyId, secretKey: key.secretAccessKey },
    options.date,
  );
  return {
    url: `${stack.apiUrl}?${new URLSearchParams(params)}`,
    init: { method: 'POST', headers: request.headers, body: form.getBuffer() },
  };
}

async function send(req: { url: string; init: RequestInit }): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(req.url, req.init);
  const text = await res.text();
  sharedChecker().check(
    req.init.method ?? 'GET',
    new URL(req.url).pathname,
    res.status,
    res.headers.get('content-type'),
    text,
  );
  return { status: res.status, body: JSON.parse(text) };
}
const codeOf = (r: { body: Record<string, any> }) => r.body.ResponseMetadata?.Error?.Code;

describe('client authentication (IVA HMAC-SHA256, per-client keys)', () => {
  let vendor: Key;

  it('issues a key with iva-bridge keys, and the official signer submits through the vendor route unchanged', async () => {
    const issued = await keys('issue', '--client', 'vendor-app');
    expect(issued.code, issued.err).toBe(0);
    vendor = issued.out[0] as unknown as Key;
    expect(vendor.accessKeyId).toMatch(/^AKIB/);
    const listed = await keys('list');
    expect(listed.out.map((k) => k.client)).toEqual(expect.arrayContaining(['local', 'vendor-app']));
    expect(JSON.stringify(listed.out)).not.toContain(vendor.secretAccessKey);

    const ok = await send(await vendorRequest(vendor));
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.Result.ImageID).toMatch(/^img-/);
    expect(ok.body.Result.SubmissionId).toMatch(/^api_/);
    const received = (await (await fetch(`${stack.ivaEndpoint}/__sandbox/submissions`)).json()) as { taskId: string }[];
    expect(received.some((s) => s.taskId === 'auth-task')).toBe(true);
  });

  it('refuses a tampered body (the signature covers X-Content-Sha256; the function checks the body against it)', async () => {
    const req = await vendorRequest(vendor, { taskId: 'tampered' });
    const body = Buffer.from(req.init.body);
    const at = body.indexOf('tampered');
    body.write('TAMPERED', at);
    const refused = await send({ url: req.url, init: { ...req.init, body } });
    expect(refused.status).toBe(403);
    expect(codeOf(refused)).toBe('SignatureDoesNotMatch');
    const received = (await (await fetch(`${stack.ivaEndpoint}/__sandbox/submissions`)).json()) as { taskId: string }[];
    expect(received.some((s) => s.taskId.toLowerCase() === 'tampered')).toBe(false);
  });

  it('refuses a wrong secret, an unknown key, a stale X-Date and an unsigned request with IVA codes', async () => {
    const wrong = await send(await vendorRequest({ ...vendor, secretAccessKey: 'not-the-secret' }));
    expect([wrong.status, codeOf(wrong)]).toEqual([403, 'SignatureDoesNotMatch']);
    const unknown = await send(await vendorRequest({ accessKeyId: 'AKIBNOSUCHKEY0000000', secretAccessKey: 'x' }));
    expect([unknown.status, codeOf(unknown)]).toEqual([403, 'InvalidAccessKey']);
    const stale = await send(await vendorRequest(vendor, { date: new Date(Date.now() - 16 * 60 * 1000) }));
    expect([stale.status, codeOf(stale)]).toEqual([403, 'InvalidTimestamp']);
    const future = await send(await vendorRequest(vendor, { date: new Date(Date.now() + 16 * 60 * 1000) }));
    expect([future.status, codeOf(future)]).toEqual([403, 'InvalidTimestamp']);
    const req = await vendorRequest(vendor);
    const { Authorization: _a, ...unsigned } = req.init.headers;
    const anonymous = await send({
      url: req.url,
      init: { ...req.init, headers: { ...unsigned, 'x-api-key': stack.apiKey } },
    });
    expect([anonymous.status, codeOf(anonymous)]).toEqual([403, 'MissingSignature']);
  });

  it('accepts a signature once: the replay is refused', async () => {
    const req = await vendorRequest(vendor, { taskId: 'replayed' });
    expect((await send(req)).status).toBe(200);
    const replay = await send(req);
    expect([replay.status, codeOf(replay)]).toEqual([403, 'InvalidTimestamp']);
    expect(replay.body.ResponseMetadata.Error.Message).toContain('already used');
    const received = (await (await fetch(`${stack.ivaEndpoint}/__sandbox/submissions`)).json()) as { taskId: string }[];
    expect(received.filter((s) => s.taskId === 'replayed')).toHaveLength(1);
  });

  it('rotates (two keys work), refuses a third, and a revoked key stops working', async () => {
    const rotated = await keys('rotate', '--client', 'vendor-app');
    expect(rotated.code, rotated.err).toBe(0);
    const second = rotated.out[0] as unknown as Key;
    expect((await send(await vendorRequest(vendor))).status).toBe(200);
    expect((await send(await vendorRequest(second))).status).toBe(200);
    const third = await keys('rotate', '--client', 'vendor-app');
    expect(third.code).toBe(1);
    expect(third.err).toContain('RotationInProgress');
    // A key never used is not in any authorizer cache: revoked, it is refused at once
    // (a key in use is refused within the authorizer's 60 s cache).
    const fresh = (await keys('issue', '--client', 'short-lived')).out[0] as unknown as Key;
    expect((await keys('revoke', fresh.accessKeyId)).code).toBe(0);
    const revoked = await send(await vendorRequest(fresh));
    expect([revoked.status, codeOf(revoked)]).toEqual([403, 'InvalidAccessKey']);
    expect((await keys('revoke', fresh.accessKeyId)).code).toBe(1);
  });

  it('guards the multipart upload routes like every /v1 route: unsigned, a wrong secret and a replay are refused 403', async () => {
    const own: Key = { accessKeyId: stack.clientAccessKeyId, secretAccessKey: stack.clientSecretAccessKey };
    const routes = ROUTES.filter((r) => r.resource.startsWith('/v1/uploads/'));
    expect(routes.map((r) => r.name).sort()).toEqual(['abortUpload', 'completeUpload', 'uploadParts']);
    for (const route of routes) {
      const url = `${stack.apiUrl}${route.resource.slice(1).replace('{id}', 'upl_no_such_upload')}`;
      const body = route.name === 'abortUpload' ? undefined : JSON.stringify({ PartNumbers: [1] });
      const init: RequestInit = {
        method: route.method,
        ...(body ? { headers: { 'content-type': 'application/json' }, body } : {}),
      };
      const signed = (key: Key) => signRequest(url, init, key);
      // Past the authorizer, the function answers: no such submission.
      const ok = await send(await signed(own));
      expect([ok.status, codeOf(ok)], route.name).toEqual([404, 'SubmissionNotFound']);
      const wrong = await send(await signed({ ...own, secretAccessKey: 'not-the-secret' }));
      expect([wrong.status, codeOf(wrong)], route.name).toEqual([403, 'SignatureDoesNotMatch']);
      const twice = await signed(own);
      expect((await send(twice)).status, route.name).toBe(404);
      const replay = await send(twice);
      expect([replay.status, codeOf(replay)], route.name).toEqual([403, 'InvalidTimestamp']);
      const anonymous = await send({
        url,
        init: {
          ...init,
          headers: { ...(body ? { 'content-type': 'application/json' } : {}), 'x-api-key': stack.apiKey },
        },
      });
      expect([anonymous.status, codeOf(anonymous)], route.name).toEqual([403, 'MissingSignature']);
    }
  });
});
