import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createIvaClient,
  IvaAbortedError,
  IvaAmbiguousError,
  IvaBudgetExceededError,
  IvaError,
  IvaInputError,
  type FileData,
  type IvaClient,
  type IvaClientConfig,
  type RetryInfo,
  type SubmitInput,
} from '../../lib/iva/index';
import { ivaError, startFakeGateway, type FakeGateway } from '../support/fake-gateway';

const AK = 'AKLTtestkey';
const SK = 'c2VjcmV0LXRlc3Qta2V5LW5ldmVyLXByaW50';
let secrets: Record<string, string> = { [AK]: SK };
let gw: FakeGateway;
const clients: IvaClient[] = [];

beforeAll(async () => {
  gw = await startFakeGateway({ secrets: (ak) => secrets[ak] });
});
afterAll(async () => {
  await gw.close();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close?.();
  gw.reset();
  secrets = { [AK]: SK };
});

function client(overrides: Partial<IvaClientConfig> = {}): IvaClient {
  const c = createIvaClient({
    credentials: { accessKeyId: AK, secretAccessKey: SK },
    endpoint: gw.url,
    timeoutMs: 2_000,
    baseDelayMs: 5,
    maxDelayMs: 20,
    // Budgets here are a few hundred ms: let retries start until near their end.
    minAttemptMs: 20,
    ...overrides,
  });
  clients.push(c);
  return c;
}

/** Random bytes plus things a naive multipart writer would choke on. */
function fileBytes(size: number): Buffer {
  const tricky = Buffer.from('\r\n--not-the-boundary\r\nContent-Disposition: form-data; name="Request"\r\n\r\n{}');
  return Buffer.concat([tricky, randomBytes(size)]);
}

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function streamOf(data: Buffer, chunk = 7919): FileData {
  return {
    size: data.length,
    open: () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
        })(),
      ),
  };
}

describe('IVA client: bodies arrive intact and signed', () => {
  const algo = { threshold: 0.7, labels: ['person', 'car'], nested: { on: true } };
  const file = fileBytes(300_000);
  const cases: Array<{ label: string; kind: 'image' | 'video'; data: () => FileData }> = [
    { label: 'image, one buffer', kind: 'image', data: () => file },
    { label: 'video, one buffer', kind: 'video', data: () => file },
    {
      label: 'image, buffer pieces',
      kind: 'image',
      data: () => [file.subarray(0, 5), file.subarray(5, 100_000), file.subarray(100_000)],
    },
    { label: 'video, buffer pieces', kind: 'video', data: () => [file.subarray(0, 150_000), file.subarray(150_000)] },
    { label: 'image, stream', kind: 'image', data: () => streamOf(file) },
    {
      label: 'video, stream with its sha256',
      kind: 'video',
      data: () => ({ ...(streamOf(file) as object as { size: number; open: () => Readable }), sha256: sha(file) }),
    },
  ];

  for (const c of cases) {
    it(`Source=file: ${c.label}`, async () => {
      const result = await client().submit({
        kind: c.kind,
        taskId: 'task-1',
        name: 'café photo "1".bin',
        desc: 'line one\nline two',
        algoParamConf: algo,
        source: { type: 'file', data: c.data() },
      });
      const key = c.kind === 'image' ? 'Image' : 'Video';
      expect(result).toEqual({
        kind: c.kind,
        dataId: `${c.kind}-${gw.calls[0]!.n}`,
        requestId: `req-${gw.calls[0]!.n}`,
        attempts: 1,
      });
      expect(gw.calls).toHaveLength(1);
      const call = gw.calls[0]!;
      expect(call.signature).toMatchObject({ ok: true, bodyHashOk: true });
      expect(call.signature.signedHeaders).toEqual(['host', 'x-content-sha256', 'x-date']);
      expect(call.query).toEqual({ Action: `AddAsyncTask${key}Data`, Version: '2022-05-13' });
      expect(call.multipartError).toBeUndefined();
      expect(Number(call.headers['content-length'])).toBe(call.body.length);
      expect(call.headers['content-type']).toMatch(/^multipart\/form-data; boundary=[0-9a-f]{60}$/);
      // File part first, then Request, as in the vendor's Go demo.
      expect(call.parts.map((p) => p.name)).toEqual([`${key}File`, 'Request']);
      const filePart = call.parts[0]!;
      expect(filePart.filename).toBe('café photo "1".bin');
      expect(filePart.contentType).toBe('application/octet-stream');
      expect(sha(filePart.data)).toBe(sha(file));
      expect(call.request).toEqual({
        TaskID: 'task-1',
        [key]: { Name: 'café photo "1".bin', Source: 'file', Desc: 'line one\nline two' },
        AlgoParamConf: algo,
      });
    });
  }

  for (const kind of ['image', 'video'] as const) {
    it(`Source=url (${kind}) sends only the Request field`, async () => {
      const url = 'https://bucket.s3.amazonaws.com/incoming/t/a%20b.jpg?X-Amz-Signature=abc&X-Amz-Expires=3600';
      const result = await client().submit({ kind, taskId: 'task-2', name: 'a b.jpg', source: { type: 'url', url } });
      const key = kind === 'image' ? 'Image' : 'Video';
      expect(result.dataId).toBe(`${kind}-${gw.calls[0]!.n}`);
      const call = gw.calls[0]!;
      expect(call.signature.ok).toBe(true);
      expect(call.parts.map((p) => [p.name, p.filename])).toEqual([['Request', undefined]]);
      expect(call.request).toEqual({ TaskID: 'task-2', [key]: { Name: 'a b.jpg', Source: 'url', Url: url } });
    });
  }

  it('uses the given filename and content type', async () => {
    await client().submit({
      kind: 'image',
      taskId: 't',
      name: 'n',
      source: { type: 'file', data: Buffer.from('x'), filename: 'f.png', contentType: 'image/png' },
    });
    expect(gw.calls[0]!.parts[0]).toMatchObject({ name: 'ImageFile', filename: 'f.png', contentType: 'image/png' });
  });

  it('signs and sends a session token as X-Security-Token', async () => {
    await client({ credentials: { accessKeyId: AK, secretAccessKey: SK, sessionToken: 'sts-token-123' } }).submit({
      kind: 'image',
      taskId: 't',
      name: 'n',
      source: { type: 'url', url: 'https://x/y' },
    });
    const call = gw.calls[0]!;
    expect(call.headers['x-security-token']).toBe('sts-token-123');
    expect(call.signature.signedHeaders).toContain('x-security-token');
    expect(call.signature.ok).toBe(true);
  });

  it('rejects bad input locally without calling IVA', async () => {
    const c = client();
    await expect(
      c.submit({ kind: 'image', taskId: ' ', name: 'n', source: { type: 'url', url: 'u' } }),
    ).rejects.toBeInstanceOf(IvaInputError);
    await expect(
      c.submit({ kind: 'image', taskId: 't', name: '', source: { type: 'url', url: 'u' } }),
    ).rejects.toMatchObject({ code: 'MissingName' });
    const short: FileData = { size: 10, open: () => Readable.from([Buffer.from('abc')]) };
    await expect(
      c.submit({ kind: 'image', taskId: 't', name: 'n', source: { type: 'file', data: short } }),
    ).rejects.toMatchObject({ code: 'FileSizeMismatch', retryable: false });
    const wrongHash: FileData = {
      size: 3,
      open: () => Readable.from([Buffer.from('abc')]),
      sha256: sha(Buffer.from('abd')),
    };
    await expect(
      c.submit({ kind: 'image', taskId: 't', name: 'n', source: { type: 'file', data: wrongHash } }),
    ).rejects.toMatchObject({ code: 'FileChecksumMismatch' });
    expect(gw.calls).toHaveLength(0);
  });
});

describe('IVA client: answers and retries', () => {
  const input: SubmitInput = {
    kind: 'image',
    taskId: 't',
    name: 'n.jpg',
    source: { type: 'file', data: fileBytes(50_000) },
  };

  it('an Error inside a 200 answer is an error, with code, message and RequestId', async () => {
    gw.queue(ivaError('InvalidParameter', 'TaskID not found', 200, 'rid-200'));
    const error = await client()
      .submit(input)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IvaError);
    expect(error).toMatchObject({ code: 'InvalidParameter', requestId: 'rid-200', httpStatus: 200, retryable: false });
    expect((error as Error).message).toContain('TaskID not found');
    expect(gw.calls).toHaveLength(1);
  });

  it('retries FlowLimitExceeded twice then succeeds, calling onRetry before each wait', async () => {
    gw.queue(ivaError('FlowLimitExceeded', 'slow down', 429), ivaError('FlowLimitExceeded', 'slow down', 429));
    const retries: RetryInfo[] = [];
    const result = await client().submit(input, { onRetry: (info) => retries.push(info) });
    expect(result.attempts).toBe(3);
    expect(gw.calls).toHaveLength(3);
    expect(retries.map((r) => [r.attempt, r.error.code])).toEqual([
      [1, 'FlowLimitExceeded'],
      [2, 'FlowLimitExceeded'],
    ]);
    for (const r of retries) expect(r.delayMs).toBeLessThanOrEqual(20);
    // Each attempt sent the whole body again.
    for (const call of gw.calls) expect(call.signature.bodyHashOk).toBe(true);
  });

  it('a wrong secret fails at once with SignatureDoesNotMatch (one attempt)', async () => {
    const error = await client({ credentials: { accessKeyId: AK, secretAccessKey: 'wrong-secret' } })
      .submit(input)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SignatureDoesNotMatch', httpStatus: 401, retryable: false });
    expect(gw.calls).toHaveLength(1);
  });

  it('SignatureDoesNotMatch is never retried, even with a 5xx status', async () => {
    gw.queue(ivaError('SignatureDoesNotMatch', 'no', 500));
    await expect(client().submit(input)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(gw.calls).toHaveLength(1);
  });

  it('InvalidTimestamp: re-signed once with a fresh X-Date, then success', async () => {
    gw.queue({ ...ivaError('InvalidTimestamp', 'expired', 403), delayMs: 1_100 });
    const result = await client().submit(input);
    expect(result.attempts).toBe(2);
    expect(gw.calls[0]!.signature.xDate).not.toBe(gw.calls[1]!.signature.xDate);
    expect(gw.calls[1]!.signature.ok).toBe(true);
  });

  it('InvalidTimestamp twice fails (no blind retries)', async () => {
    gw.queue(ivaError('InvalidTimestamp', 'expired', 403), ivaError('InvalidTimestamp', 'expired', 403));
    await expect(client().submit(input)).rejects.toMatchObject({ code: 'InvalidTimestamp', retryable: false });
    expect(gw.calls).toHaveLength(2);
  });

  it('a skewed clock is corrected from the gateway Date header after InvalidTimestamp', async () => {
    const skewed = await startFakeGateway({ secrets: { [AK]: SK }, maxSkewMs: 60_000 });
    try {
      const c = createIvaClient({
        credentials: { accessKeyId: AK, secretAccessKey: SK },
        endpoint: skewed.url,
        clock: () => Date.now() - 30 * 60_000,
      });
      clients.push(c);
      const first = await c.submit(input);
      expect(first.attempts).toBe(2);
      expect(skewed.calls.map((call) => call.signature.ok)).toEqual([true, true]);
      // The correction is kept: the next call succeeds first time.
      expect((await c.submit(input)).attempts).toBe(1);
    } finally {
      await skewed.close();
    }
  });

  it('a connection dropped after the request was sent is ambiguous and never retried (after the body, and before reading it)', async () => {
    gw.queue({ drop: 'after-body' }, { drop: 'before-body' });
    const retries: string[] = [];
    const big = { ...input, source: { type: 'file' as const, data: fileBytes(2_000_000) } };
    for (const _ of [1, 2]) {
      const error = await client()
        .submit(big, { onRetry: (r) => retries.push(r.error.code) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IvaAmbiguousError);
      expect(error).toMatchObject({ code: 'ConnectionLostAfterSend', retryable: false, ambiguous: true, attempts: 1 });
    }
    expect(retries).toEqual([]);
    expect(gw.calls).toHaveLength(2);
  });

  it('a slow answer hits the per-attempt timeout: ambiguous (TimeoutAfterSend), never sent twice', async () => {
    gw.queue({ delayMs: 1_500 });
    const retries: string[] = [];
    const started = Date.now();
    const error = await client({ timeoutMs: 300, minThroughputBytesPerSecond: 1e12 })
      .submit(input, { onRetry: (r) => retries.push(r.error.code) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TimeoutAfterSend', ambiguous: true, retryable: false });
    expect(retries).toEqual([]);
    expect(gw.calls).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_400);
  });

  it('keeps retrying within the budget, then throws IvaBudgetExceededError', async () => {
    gw.respond = () => ivaError('ServiceUnavailableTemp', 'busy', 503, 'rid-busy');
    const started = Date.now();
    // An attempt starts only with 250 ms of budget left, so a loaded machine cannot make the
    // budget's end cut a sent attempt (which is ambiguous, by design) instead of ending the retries.
    const error = await client({ baseDelayMs: 20, maxDelayMs: 80, minAttemptMs: 250 })
      .submit(input, { budgetMs: 700 })
      .catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(IvaBudgetExceededError);
    const budget = error as IvaBudgetExceededError;
    expect(budget.attempts).toBeGreaterThan(1);
    expect(budget.attempts).toBe(gw.calls.length);
    expect(budget).toMatchObject({ code: 'ServiceUnavailableTemp', requestId: 'rid-busy', retryable: true });
    expect(budget.lastError.code).toBe('ServiceUnavailableTemp');
    expect(elapsed).toBeLessThan(700 + 150);
  });

  it('when the budget ends during an attempt that was sent, it is ambiguous, after the earlier clean retries', async () => {
    // A fast 503 (retried: IVA said no), then an attempt that hangs: cut by the budget, not by timeoutMs.
    gw.queue(ivaError('ServiceUnavailableTemp', 'busy', 503, 'rid-busy'));
    gw.respond = () => (gw.calls.length > 1 ? { delayMs: 3_000 } : undefined);
    const error = await client({ timeoutMs: 10_000, baseDelayMs: 10, maxDelayMs: 10 })
      .submit(input, { budgetMs: 400 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IvaAmbiguousError);
    expect(error).toMatchObject({ code: 'TimeoutAfterSend', attempts: 2, retryable: false });
  });

  it('a per-attempt timeout never outlives the budget', async () => {
    gw.respond = () => ({ delayMs: 3_000 });
    const started = Date.now();
    const error = await client({ timeoutMs: 10_000 })
      .submit(input, { budgetMs: 400 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TimeoutAfterSend', ambiguous: true });
    expect(Date.now() - started).toBeLessThan(400 + 150);
  });

  it("an answer that is not IVA's (not JSON, whatever the status) is ambiguous, never retried", async () => {
    for (const reply of [
      { status: 502, raw: '<html>Bad Gateway</html>' },
      { status: 200, raw: 'OK' },
      { status: 503, json: { message: 'no error code' } },
    ]) {
      gw.queue(reply);
      const retries: string[] = [];
      const error = await client()
        .submit(input, { onRetry: (r) => retries.push(r.error.code) })
        .catch((e: unknown) => e);
      expect(retries).toEqual([]);
      expect(error).toBeInstanceOf(IvaAmbiguousError);
      expect(error).toMatchObject({ code: 'UnreadableResponse', httpStatus: reply.status, retryable: false });
    }
    expect(gw.calls).toHaveLength(3);
  });

  it('a success without the data id is ambiguous (IVA may have it)', async () => {
    gw.queue({ status: 200, json: { ResponseMetadata: { RequestId: 'r' }, Result: {} } });
    await expect(client().submit(input)).rejects.toMatchObject({ code: 'UnreadableResponse', ambiguous: true });
  });

  it('calls the credentials provider per attempt, so a rotated secret is used', async () => {
    let calls = 0;
    const provider = async () => {
      calls += 1;
      return { accessKeyId: AK, secretAccessKey: calls === 1 ? SK : 'rotated-secret' };
    };
    gw.queue(ivaError('InternalError', 'oops', 500));
    const c = client({ credentials: provider });
    secrets = { [AK]: 'rotated-secret' };
    const result = await c.submit(input);
    expect(calls).toBe(2);
    expect(result.attempts).toBe(2);
    expect(gw.calls[0]!.signature.ok).toBe(false);
    expect(gw.calls[1]!.signature.ok).toBe(true);
  });

  it('a hung credentials provider times out like an attempt; a failing one fails at once', async () => {
    const started = Date.now();
    const hung = await client({ credentials: () => new Promise(() => undefined), timeoutMs: 150 })
      .submit(input, { budgetMs: 500 })
      .catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(IvaBudgetExceededError);
    expect((hung as IvaBudgetExceededError).lastError.code).toBe('Timeout');
    expect(Date.now() - started).toBeLessThan(700);
    const failing = client({ credentials: () => Promise.reject(new Error('secrets manager says no')) });
    await expect(failing.submit(input)).rejects.toMatchObject({ code: 'CredentialsUnavailable', retryable: false });
    expect(gw.calls).toHaveLength(0);
  });

  it('respects an AbortSignal during a backoff wait and during an attempt', async () => {
    gw.respond = () => ivaError('FlowLimitExceeded', 'slow', 429);
    const controller = new AbortController();
    const waiting = client({ baseDelayMs: 5_000, maxDelayMs: 5_000 }).submit(input, {
      signal: controller.signal,
      onRetry: () => setTimeout(() => controller.abort(), 20),
    });
    await expect(waiting).rejects.toBeInstanceOf(IvaAbortedError);

    gw.respond = () => ({ delayMs: 2_000 });
    const second = new AbortController();
    setTimeout(() => second.abort(), 100);
    const started = Date.now();
    await expect(client({ timeoutMs: 5_000 }).submit(input, { signal: second.signal })).rejects.toMatchObject({
      code: 'Aborted',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('reuses the keep-alive connection between calls', async () => {
    // However slow this machine is between the two calls, the connection counts as fresh.
    const c = client({ maxIdleReuseMs: 600_000 });
    await c.submit(input);
    await c.submit(input);
    expect(gw.calls).toHaveLength(2);
    expect(gw.calls[1]!.remotePort).toBe(gw.calls[0]!.remotePort);
  });

  it('closes a kept-alive connection idle longer than maxIdleReuseMs instead of reusing it', async () => {
    const c = client({ maxIdleReuseMs: 0 });
    await c.submit(input);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await c.submit(input);
    expect(gw.calls).toHaveLength(2);
    expect(gw.calls[1]!.remotePort).not.toBe(gw.calls[0]!.remotePort);
  });
});
