/**
 * The IVA client against the real sandbox (and real sockets) under the faults where
 * "retry" and "never twice" collide: a failure after the request was sent is ambiguous
 * and never retried; a failure before anything was sent is retried; a failure no retry
 * can fix (a host that does not exist, a certificate that does not verify) ends at once.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createIvaClient,
  IvaAmbiguousError,
  IvaBudgetExceededError,
  type IvaClient,
  type IvaClientConfig,
  type RetryInfo,
  type SubmitInput,
} from '../../lib/iva/index';
import { DEFAULT_SANDBOX_CREDENTIALS, startIvaSandbox, type IvaSandbox } from '../../local/iva-sandbox/server';

let sandbox: IvaSandbox;
const clients: IvaClient[] = [];

beforeAll(async () => {
  sandbox = await startIvaSandbox();
});
afterAll(async () => {
  await sandbox.close();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close?.();
  sandbox.reset();
});

function client(overrides: Partial<IvaClientConfig> = {}): IvaClient {
  const c = createIvaClient({
    credentials: DEFAULT_SANDBOX_CREDENTIALS,
    endpoint: sandbox.url,
    timeoutMs: 2_000,
    baseDelayMs: 5,
    maxDelayMs: 20,
    minAttemptMs: 20,
    ...overrides,
  });
  clients.push(c);
  return c;
}

const file = randomBytes(64 * 1024);
const input: SubmitInput = {
  kind: 'image',
  taskId: 'task-ambiguous',
  name: 'cat.jpg',
  source: { type: 'file', data: file, contentType: 'image/jpeg' },
};

/** Until the sandbox has settled what it will do with the requests it got. */
async function settled(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

describe('ambiguous failures are never retried', () => {
  it('drop after accept: one request, one submission at IVA, IvaAmbiguousError ConnectionLostAfterSend', async () => {
    sandbox.injectFaults({ drop: true, afterAccept: true });
    const retries: RetryInfo[] = [];
    const before = Date.now();
    const error = await client()
      .submit(input, { onRetry: (r) => retries.push(r) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IvaAmbiguousError);
    expect(error).toMatchObject({ code: 'ConnectionLostAfterSend', ambiguous: true, retryable: false, attempts: 1 });
    const { sentAt, failedAt } = error as IvaAmbiguousError;
    expect(sentAt).toBeGreaterThanOrEqual(before);
    expect(failedAt).toBeGreaterThanOrEqual(sentAt);
    expect(retries).toEqual([]);
    await settled(100);
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.submissionSummaries()).toHaveLength(1);
  });

  it('drop before accept is just as ambiguous from the client side (IVA got the bytes), and not retried', async () => {
    sandbox.injectFaults({ drop: true });
    await expect(client().submit(input)).rejects.toMatchObject({ code: 'ConnectionLostAfterSend', ambiguous: true });
    await settled(100);
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.submissionSummaries()).toHaveLength(0);
  });

  it('an answer slower than the per-attempt timeout: TimeoutAfterSend, one request, IVA has it once', async () => {
    sandbox.injectFaults({ delayMs: 800 });
    const retries: RetryInfo[] = [];
    const error = await client({ timeoutMs: 300, minThroughputBytesPerSecond: 1e12 })
      .submit(input, { budgetMs: 5_000, onRetry: (r) => retries.push(r) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IvaAmbiguousError);
    expect(error).toMatchObject({ code: 'TimeoutAfterSend', ambiguous: true, retryable: false });
    expect(retries).toEqual([]);
    await settled(900);
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.submissionSummaries()).toHaveLength(1);
  });

  it('a budget that ends while IVA is working is ambiguous too (never "retry later")', async () => {
    sandbox.injectFaults({ delayMs: 800 });
    const error = await client({ timeoutMs: 5_000 })
      .submit(input, { budgetMs: 300 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TimeoutAfterSend', ambiguous: true, retryable: false });
    await settled(900);
    expect(sandbox.submissionSummaries()).toHaveLength(1);
  });

  it('the per-attempt timeout grows with the body: a large body on a slow IVA is waited for, not cut off', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const slow = { ...input, source: { type: 'file' as const, data: big } };
    // Base 300 ms, +2 s for 2 MiB at 1 MiB/s: the 800 ms answer arrives within the attempt.
    sandbox.injectFaults({ delayMs: 800 });
    const result = await client({ timeoutMs: 300, minThroughputBytesPerSecond: 1024 * 1024 }).submit(slow, {
      budgetMs: 10_000,
    });
    expect(result.attempts).toBe(1);
    expect(sandbox.submissionSummaries()).toHaveLength(1);
    // The same body without that allowance would have been cut off after 300 ms.
    sandbox.reset();
    sandbox.injectFaults({ delayMs: 800 });
    await expect(
      client({ timeoutMs: 300, minThroughputBytesPerSecond: 1e12 }).submit(slow, { budgetMs: 10_000 }),
    ).rejects.toMatchObject({ code: 'TimeoutAfterSend' });
  });

  it("IVA's own error body (429, 5xx) proves it did not take the request: retried, one submission in the end", async () => {
    sandbox.injectFaults(
      { code: 'FlowLimitExceeded', httpStatus: 429 },
      { code: 'InternalServiceError', httpStatus: 500 },
    );
    const retries: RetryInfo[] = [];
    const result = await client().submit(input, { onRetry: (r) => retries.push(r) });
    expect(result.attempts).toBe(3);
    expect(retries.map((r) => r.error.code)).toEqual(['FlowLimitExceeded', 'InternalServiceError']);
    expect(sandbox.requests).toHaveLength(3);
    expect(sandbox.submissionSummaries()).toHaveLength(1);
  });
});

describe('failures before anything was sent', () => {
  it('connection refused is retried (nothing reached IVA), each retry told through onRetry', async () => {
    const port = await closedPort();
    const retries: RetryInfo[] = [];
    const error = await client({ endpoint: `http://127.0.0.1:${port}` })
      .submit(input, { budgetMs: 1_500, onRetry: (r) => retries.push(r) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IvaBudgetExceededError);
    expect(error).toMatchObject({ code: 'NetworkError', ambiguous: false });
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries.every((r) => r.error.code === 'NetworkError')).toBe(true);
  });

  it('a host name that does not exist ends at once with its cause (HostNotFound, one attempt, no retry)', async () => {
    const retries: RetryInfo[] = [];
    const error = await client({ endpoint: 'http://iva-bridge-no-such-host.invalid' })
      .submit(input, { budgetMs: 30_000, onRetry: (r) => retries.push(r) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HostNotFound', retryable: false, ambiguous: false });
    expect((error as Error).message).toMatch(/ENOTFOUND|EAI_NONAME/);
    expect(retries).toEqual([]);
  });

  it('a certificate that does not verify ends at once (CertificateRejected), and IVA got nothing', async () => {
    const server = await selfSignedServer();
    try {
      const retries: RetryInfo[] = [];
      const error = await client({ endpoint: server.url })
        .submit(input, { budgetMs: 30_000, onRetry: (r) => retries.push(r) })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CertificateRejected', retryable: false, ambiguous: false });
      expect((error as Error).message).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(retries).toEqual([]);
      expect(server.requests()).toBe(0);
    } finally {
      await server.close();
    }
  });
});

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An HTTPS server with a self-signed certificate (test/fixtures, a test-only key). */
async function selfSignedServer(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server: HttpsServer = createHttpsServer(
    {
      key: readFileSync(new URL('../fixtures/self-signed.key', import.meta.url)),
      cert: readFileSync(new URL('../fixtures/self-signed.crt', import.meta.url)),
    },
    (_req, res) => {
      count += 1;
      res.end('{}');
    },
  );
  // The client's TLS alert shows up here; it is expected.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    requests: () => count,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
