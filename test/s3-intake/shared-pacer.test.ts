/** The shared schedule of IVA send slots, on dynalite, with a clock the test moves. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerTable } from '../../lib/ledger/index';
import { createSharedPacer } from '../../lib/s3-intake/shared-pacer';
import { startDynalite, type LocalDynalite } from '../../local/servers/dynalite';
import { virtualClock } from '../support/clock';
import { documentClient } from '../support/servers';

let dynalite: LocalDynalite;
let doc: DynamoDBDocumentClient;
let n = 0;

beforeAll(async () => {
  dynalite = await startDynalite();
  doc = documentClient(dynalite);
});
afterAll(async () => {
  doc?.destroy();
  await dynalite?.close();
});

const clock = virtualClock;

async function table(): Promise<string> {
  const name = `pace-${++n}`;
  await createLedgerTable(doc, name);
  return name;
}

describe('createSharedPacer', () => {
  it('spaces the calls of several containers 1/R apart in one schedule', async () => {
    const c = clock();
    const tableName = await table();
    // Three containers, as three object-created invocations would be, on one clock.
    const pacers = [1, 2, 3].map(() => createSharedPacer({ doc, tableName, rate: 4, now: c.now, sleep: c.sleep }));
    const start = c.now();
    const slots: number[] = [];
    for (let i = 0; i < 12; i++) {
      expect(await pacers[i % 3]!.acquire(60_000)).toBe(true);
      slots.push(c.now() - start);
    }
    // 12 calls at 4/s, whoever makes them: the first at once, one every 250 ms.
    expect(slots).toEqual(Array.from({ length: 12 }, (_, i) => i * 250));
  });

  it('declines without booking a slot further away than the caller may wait', async () => {
    const c = clock();
    const tableName = await table();
    const a = createSharedPacer({ doc, tableName, rate: 1, now: c.now, sleep: async () => undefined });
    expect(await a.acquire(0)).toBe(true); // slot now; the next is 1 s away
    expect(await a.acquire(500)).toBe(false);
    expect(await a.acquire(500)).toBe(false);
    // Declining booked nothing: the next free slot is still 1 s after the first.
    expect(a.waitMs()).toBe(1_000);
    c.advance(1_000);
    expect(await a.acquire(0)).toBe(true);
  });

  it('starts again from now after the schedule was idle, instead of owing old slots', async () => {
    const c = clock();
    const tableName = await table();
    const a = createSharedPacer({ doc, tableName, rate: 2, now: c.now, sleep: c.sleep });
    await a.acquire(10_000);
    await a.acquire(10_000);
    c.advance(60_000);
    const before = c.now();
    expect(await a.acquire(0)).toBe(true);
    expect(c.now()).toBe(before);
  });

  it('moves everyone’s next slot back one interval at a throttle', async () => {
    const c = clock();
    const tableName = await table();
    const [a, b] = [1, 2].map(() => createSharedPacer({ doc, tableName, rate: 2, now: c.now, sleep: c.sleep }));
    await a!.acquire(10_000); // t0; next slot t0 + 500
    a!.onThrottle();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the push is not awaited by onThrottle
    const start = c.now();
    expect(await b!.acquire(10_000)).toBe(true);
    expect(c.now() - start).toBe(1_000);
  });

  it('paces this container alone at its fallback share when DynamoDB cannot be reached', async () => {
    const c = clock();
    const unreachable = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        maxAttempts: 1,
      }),
    );
    const a = createSharedPacer({
      doc: unreachable,
      tableName: 'none',
      rate: 8,
      fallbackRate: 2,
      now: c.now,
      sleep: c.sleep,
    });
    const start = c.now();
    for (let i = 0; i < 5; i++) expect(await a.acquire(60_000)).toBe(true);
    expect(c.now() - start).toBe(2_000);
    unreachable.destroy();
  });
});
