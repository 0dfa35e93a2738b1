/**
 * One function's processes, as Lambda runs execution environments: module state lives as
 * long as the process and belongs to one function; an invocation past the timeout is
 * ended (the process killed) and counted, and the next one starts a fresh process; no
 * more processes than the concurrency limit; a handler's error is the invocation's error.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFunctions } from '../../../local/stack/bundle';
import { FunctionError, FunctionHost, LambdaTimeoutError } from '../../../local/stack/function-host';
import { REPO_ROOT } from '../../../local/stack/template';

let dir: string;
let runner: string;
const hosts: FunctionHost[] = [];

const HANDLER = `
let count = 0;
export const handler = async (event, context) => {
  count += 1;
  if (event.sleepMs) await new Promise((r) => setTimeout(r, event.sleepMs));
  if (event.fail) throw new TypeError('asked to fail');
  return { count, pid: process.pid, name: context.functionName, env: process.env.ONLY_MINE ?? null,
           remaining: context.getRemainingTimeInMillis() };
};
`;

function host(name: string, options: { timeoutMs?: number; maxConcurrency?: number } = {}): FunctionHost {
  const h = new FunctionHost({
    name,
    entry: join(dir, 'handler.mjs'),
    runner,
    timeoutMs: options.timeoutMs ?? 5_000,
    memoryMb: 128,
    env: { PATH: process.env.PATH ?? '', ONLY_MINE: name },
    maxConcurrency: options.maxConcurrency ?? 2,
    node: process.execPath,
    region: 'us-east-1',
    output: () => undefined,
  });
  hosts.push(h);
  return h;
}

interface Answer {
  count: number;
  pid: number;
  name: string;
  env: string | null;
  remaining: number;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'function-host-'));
  await writeFile(join(dir, 'handler.mjs'), HANDLER);
  runner = (await bundleFunctions({}, join(REPO_ROOT, '.local/cache'))).runner;
}, 60_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('FunctionHost', () => {
  it('keeps module state in one process per function, with that function environment alone', async () => {
    const a = host('fn-a');
    const b = host('fn-b');
    const a1 = (await a.invoke({})) as Answer;
    const a2 = (await a.invoke({})) as Answer;
    const b1 = (await b.invoke({})) as Answer;
    expect([a1.count, a2.count, b1.count]).toEqual([1, 2, 1]);
    expect(a2.pid).toBe(a1.pid);
    expect(b1.pid).not.toBe(a1.pid);
    expect([a1.env, b1.env, a1.name]).toEqual(['fn-a', 'fn-b', 'fn-a']);
    expect(a1.remaining).toBeGreaterThan(0);
    expect(a1.remaining).toBeLessThanOrEqual(5_000);
    expect(a.stats).toMatchObject({ invocations: 2, errors: 0, coldStarts: 1 });
  });

  it('ends an invocation past its timeout, counts it, and starts the next in a fresh process', async () => {
    const h = host('fn-timeout', { timeoutMs: 300 });
    const first = (await h.invoke({})) as Answer;
    await expect(h.invoke({ sleepMs: 5_000 })).rejects.toBeInstanceOf(LambdaTimeoutError);
    const next = (await h.invoke({})) as Answer;
    expect(next.pid).not.toBe(first.pid);
    expect(next.count).toBe(1);
    expect(h.stats).toMatchObject({ invocations: 3, timeouts: 1, coldStarts: 2 });
  });

  it('runs at most its concurrency limit of processes; the rest wait', async () => {
    const h = host('fn-concurrency', { maxConcurrency: 2 });
    const answers = (await Promise.all(Array.from({ length: 5 }, () => h.invoke({ sleepMs: 100 })))) as Answer[];
    expect(new Set(answers.map((a) => a.pid)).size).toBe(2);
    expect(h.stats.coldStarts).toBe(2);
  });

  it("turns a handler's error into the invocation's error and keeps the process", async () => {
    const h = host('fn-error');
    const before = (await h.invoke({})) as Answer;
    const error = await h.invoke({ fail: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FunctionError);
    expect(error).toMatchObject({ errorType: 'TypeError', message: 'asked to fail' });
    expect(((await h.invoke({})) as Answer).pid).toBe(before.pid);
    expect(h.stats.errors).toBe(1);
  });
});
