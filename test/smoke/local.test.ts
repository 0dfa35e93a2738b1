/**
 * `npm run smoke` against `npm start`: the same runner a deployed stack gets, with only
 * the discovery swapped (the local stack's facts instead of CloudFormation outputs), so
 * the runner cannot rot. Every row must pass; the table is what the README shows.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentCallbackSecret, ivaModeOf, stackOutputs } from '../../lib/smoke/aws';
import { localTargetFromFile } from '../../lib/smoke/local';
import { formatTable, runSmoke, type SmokeRow } from '../../lib/smoke/run';
import { startLocalStack, type LocalStack } from '../../local/stack/index';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    log: () => undefined,
    sandbox: { callbackDelayMs: 50 },
    sqs: { batchingWindowMs: 50 },
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

describe('npm run smoke against the local stack', () => {
  it('passes every row: uploads, direct submissions, sizes around the limits, keys, callbacks, events', async () => {
    // Discovery as `npm run smoke -- --local FILE` does it: the facts file npm start writes.
    const dir = await mkdtemp(join(tmpdir(), 'smoke-'));
    const file = join(dir, 'stack.json');
    await writeFile(file, JSON.stringify(stack.info));
    let rows: SmokeRow[];
    try {
      rows = await runSmoke(await localTargetFromFile(file), { waitMs: 30_000 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const table = formatTable(rows);
    expect(
      rows.filter((r) => !r.ok),
      table,
    ).toEqual([]);
    expect(rows.length).toBeGreaterThanOrEqual(15);
    // The callback secret never reaches the table.
    expect(table).not.toContain(stack.callbackUrl.split('/').pop());
    if (process.env.SMOKE_PRINT === '1') console.log(table);
  }, 120_000);
});

describe('deployed-stack discovery', () => {
  it('takes the current callback secret, also while a rotation keeps both', () => {
    expect(currentCallbackSecret('abc123\n')).toBe('abc123');
    expect(currentCallbackSecret('{"current":"new","previous":"old"}')).toBe('new');
  });

  it('finds a sandbox-mode stack by its outputs, and treats any other as calling Volcengine', async () => {
    const outputs: Record<string, string> = {
      ApiUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/prod/',
      ApiKeyId: 'k1',
      BucketName: 'b',
      CallbackSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:cb',
      EventBusName: 'default',
      ClientKeyPrefix: 'iva-bridge/IvaBridge/client-keys/',
      IvaMode: 'sandbox',
      IvaSandboxUrl: 'https://xyz.lambda-url.eu-west-1.on.aws/',
    };
    const cfn = (values: Record<string, string>) => ({
      send: async () => ({
        Stacks: [{ Outputs: Object.entries(values).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })) }],
      }),
    });
    const found = await stackOutputs('IvaBridge', cfn(outputs) as never);
    expect(ivaModeOf(found)).toBe('sandbox');
    expect(found.IvaSandboxUrl).toBe(outputs.IvaSandboxUrl);
    expect(ivaModeOf({ ...outputs, IvaMode: 'vendor' })).toBe('vendor');
    expect(ivaModeOf({ ApiUrl: 'x' })).toBe('vendor');
    const { ApiKeyId: _gone, ...incomplete } = outputs;
    await expect(stackOutputs('IvaBridge', cfn(incomplete) as never)).rejects.toThrow(/no output ApiKeyId/);
  });
});
