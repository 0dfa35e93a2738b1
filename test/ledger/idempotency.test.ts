import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoIdempotencyStore, IDEMPOTENCY_TTL_SECONDS } from '../../lib/ledger/idempotency';
import { createLedgerTable } from '../../lib/ledger/index';
import { startDynalite } from '../../local/servers/dynalite';
import { documentClient } from '../support/servers';

let stop: () => Promise<void>;
let doc: DynamoDBDocumentClient;

beforeAll(async () => {
  const dynalite = await startDynalite();
  stop = dynalite.close;
  doc = documentClient(dynalite);
  await createLedgerTable(doc, 'idem');
});
afterAll(async () => {
  await stop?.();
});

const answer = { status: 200, headers: { 'x-iva-bridge-submission-id': 'api_1' }, body: '{"Result":{}}' };

describe('Idempotency-Key records', () => {
  it('first claim proceeds; a repeat while running is in flight; after completion it replays; another request mismatches', async () => {
    const clock = { t: Date.parse('2026-12-01T00:00:00Z') };
    const store = createDynamoIdempotencyStore({ tableName: 'idem', client: doc, now: () => new Date(clock.t) });
    expect(await store.claim('k1', 'fp-a', { lockMs: 10_000, submissionId: 'api_1' })).toEqual({ action: 'proceed' });
    expect(await store.claim('k1', 'fp-a', { lockMs: 10_000 })).toEqual({
      action: 'inFlight',
      retryAfterSeconds: 10,
      stale: false,
      submissionId: 'api_1',
    });
    clock.t += 11_000;
    expect(await store.claim('k1', 'fp-a', { lockMs: 10_000 })).toMatchObject({ action: 'inFlight', stale: true });
    await store.complete('k1', answer);
    expect(await store.claim('k1', 'fp-a', { lockMs: 10_000 })).toEqual({ action: 'replay', response: answer });
    expect(await store.claim('k1', 'fp-b', { lockMs: 10_000 })).toEqual({ action: 'mismatch' });
  });

  it(`expires after ${IDEMPOTENCY_TTL_SECONDS} s even where no TTL deletes it; released keys run again`, async () => {
    const clock = { t: Date.parse('2026-12-01T00:00:00Z') };
    const store = createDynamoIdempotencyStore({ tableName: 'idem', client: doc, now: () => new Date(clock.t) });
    await store.claim('k2', 'fp-a', { lockMs: 1_000 });
    await store.complete('k2', answer);
    clock.t += IDEMPOTENCY_TTL_SECONDS * 1000 - 1_000;
    expect((await store.claim('k2', 'fp-b', { lockMs: 1_000 })).action).toBe('mismatch');
    clock.t += 2_000;
    expect(await store.claim('k2', 'fp-b', { lockMs: 1_000 })).toEqual({ action: 'proceed' });
    await store.release('k2');
    expect(await store.claim('k2', 'fp-c', { lockMs: 1_000 })).toEqual({ action: 'proceed' });
  });

  it('exactly one of concurrent first claims proceeds', async () => {
    const store = createDynamoIdempotencyStore({ tableName: 'idem', client: doc });
    const claims = await Promise.all(Array.from({ length: 6 }, () => store.claim('k3', 'fp', { lockMs: 5_000 })));
    expect(claims.filter((c) => c.action === 'proceed')).toHaveLength(1);
    expect(claims.filter((c) => c.action === 'inFlight')).toHaveLength(5);
  });
});
