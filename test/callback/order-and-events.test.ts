/**
 * Results apply in a defined order and each stored body is announced once, against
 * dynalite and s3rver (s3rver ignores If-None-Match, so concurrent deliveries all
 * "store" the body: only the ledger's claim can keep the event single).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPublisher, ResultStoredDetail } from '../../lib/callback/events';
import { sha256Hex } from '../../lib/signer/index';
import { type Servers, startServers, world } from './world';

let servers: Servers;
beforeAll(async () => {
  servers = await startServers();
});
afterAll(async () => {
  await servers?.close();
});

/** A clock the test moves: distinct, ordered receipt times without sleeping. */
function clock(start = Date.parse('2026-12-01T10:00:00Z')) {
  const c = { t: start, now: () => new Date(c.t), tick: (ms = 1000) => (c.t += ms) };
  return c;
}

describe('order', () => {
  it('a late non-final callback never undoes a final one; both are stored, listed and announced', async () => {
    const c = clock();
    const w = await world(servers, { now: c.now });
    await w.ledger.begin({ id: 's', source: 'api', taskId: 't', kind: 'video' });
    await w.ledger.markSubmitted('s', { dataId: 'v', requestId: 'r', kind: 'video' });
    const final = JSON.stringify({ TaskID: 't', VideoID: 'v', Status: 'completed', Frames: [] });
    const running = JSON.stringify({ TaskID: 't', VideoID: 'v', Status: 'running', Progress: 90 });
    expect((await w.call({ body: final })).status).toBe(200);
    c.tick();
    expect((await w.call({ body: running })).status).toBe(200);
    const record = await w.ledger.get('s');
    expect(record?.status).toBe('completed');
    expect(record?.result?.location).toContain(sha256Hex(final));
    const history = await w.ledger.resultHistory('v');
    expect(history.map((r) => r.status)).toEqual(['completed', 'progress']);
    expect(w.events.events.map((e) => [e.status, e.applied])).toEqual([
      ['completed', true],
      ['progress', false],
    ]);
  });

  it('two different finals: the first received wins the status, both are kept and announced', async () => {
    const c = clock();
    const w = await world(servers, { now: c.now });
    await w.ledger.begin({ id: 's', source: 'api', taskId: 't', kind: 'image' });
    await w.ledger.markSubmitted('s', { dataId: 'i', requestId: 'r', kind: 'image' });
    const ok = JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'Success', Labels: ['cat'] });
    const failed = JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'Failed', Reason: 'late' });
    await w.call({ body: ok });
    c.tick();
    await w.call({ body: failed });
    expect(await w.ledger.get('s')).toMatchObject({ status: 'completed', result: { rawStatus: 'Success' } });
    expect((await w.ledger.resultHistory('i')).map((r) => r.rawStatus)).toEqual(['Success', 'Failed']);
    expect(w.events.events.map((e) => [e.rawStatus, e.applied])).toEqual([
      ['Success', true],
      ['Failed', false],
    ]);
  });

  it('a callback before the submission is recorded: stored, announced, and applied when it is', async () => {
    const c = clock();
    const w = await world(servers, { now: c.now });
    await w.ledger.begin({ id: 's', source: 'api', taskId: 't', kind: 'image' });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'i-early', Status: 'Success' });
    expect((await w.call({ body })).status).toBe(200);
    expect(w.events.events).toHaveLength(1);
    expect(w.events.events[0]?.submissionId).toBeUndefined();
    const record = await w.ledger.markSubmitted('s', { dataId: 'i-early', requestId: 'r', kind: 'image' });
    expect(record).toMatchObject({ status: 'completed', result: { rawStatus: 'Success' } });
  });
});

describe('one event per stored body', () => {
  it('20 concurrent deliveries of one body publish exactly one event; none is answered 200 before it is out', async () => {
    const w = await world(servers);
    const body = JSON.stringify({ TaskID: 't', ImageID: 'burst', Status: 'Success' });
    const answers = await Promise.all(Array.from({ length: 20 }, () => w.call({ body })));
    expect(w.events.events).toHaveLength(1);
    // A delivery that waited longer than claimWaitMs for the holder (a loaded machine)
    // is told to retry, never 200: the holder might still crash before publishing.
    for (const a of answers) expect(a.status === 200 || a.body.code === 'EventInProgress').toBe(true);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    const retried = await Promise.all(answers.filter((a) => a.status !== 200).map(() => w.call({ body })));
    expect(retried.every((a) => a.status === 200)).toBe(true);
    expect(w.events.events).toHaveLength(1);
    // And later replays publish nothing more.
    await w.call({ body });
    expect(w.events.events).toHaveLength(1);
  });

  it('a failed publish is retried by the next delivery, and only once it succeeded is the body announced', async () => {
    const published: ResultStoredDetail[] = [];
    let fail = true;
    const publisher: EventPublisher = {
      async publishResultStored(detail) {
        if (fail) throw new Error('bus down');
        published.push(detail);
      },
    };
    const w = await world(servers, { publisher });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'retry', Status: 'Success' });
    expect((await w.call({ body })).status).toBe(503);
    fail = false;
    // The failed attempt released its claim: the retry publishes at once (no lease wait).
    expect((await w.call({ body })).status).toBe(200);
    expect((await w.call({ body })).status).toBe(200);
    expect(published).toHaveLength(1);
  });

  it('a delivery whose claim holder crashed takes over once the claim lease has run out', async () => {
    const c = clock();
    const w = await world(servers, { now: c.now, eventClaimMs: 30_000, claimWaitMs: 0 });
    const body = JSON.stringify({ TaskID: 't', ImageID: 'crash', Status: 'Success' });
    // A holder that claimed and died before publishing.
    await w.call({ body: JSON.stringify({ warm: true }) });
    await w.ledger.recordResult({
      dataId: 'crash',
      resultId: sha256Hex(body),
      status: 'completed',
      location: 'x',
      receivedAt: c.now().toISOString(),
    });
    expect(await w.ledger.claimResultEvent('crash', sha256Hex(body), { leaseMs: 30_000 })).toBe('claimed');
    // While its lease runs, a delivery answers 503 (retry later) rather than a 200 that could lose the event.
    expect((await w.call({ body })).body).toEqual({ code: 'EventInProgress' });
    expect(w.events.events).toHaveLength(0);
    c.tick(30_001);
    expect((await w.call({ body })).status).toBe(200);
    expect(w.events.events).toHaveLength(1);
  });
});
