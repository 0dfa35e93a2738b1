/**
 * SubmissionToResult, the dashboard's "time from submission to result": recorded once per
 * submission, by the callback whose final result is applied, from the ledger's submittedAt
 * to the callback's receipt (dynalite and s3rver).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC, type MetricsPort } from '../../lib/observability';
import { type Servers, startServers, world } from './world';

let servers: Servers;
beforeAll(async () => {
  servers = await startServers();
});
afterAll(async () => {
  await servers?.close();
});

function recorder() {
  const seen: Array<{ name: string; unit: string; value: number }> = [];
  const metrics: MetricsPort = { addMetric: (name, unit, value) => seen.push({ name, unit, value }) };
  return { seen, metrics, timings: () => seen.filter((m) => m.name === METRIC.submissionToResult) };
}

describe('SubmissionToResult metric', () => {
  it('is the time from IVA accepting the submission to its final callback, once; progress and replays add none', async () => {
    const clock = { t: Date.parse('2026-12-01T10:00:00Z') };
    const m = recorder();
    const w = await world(servers, { now: () => new Date(clock.t), metrics: m.metrics });
    await w.ledger.begin({ id: 's', source: 'api', taskId: 't', kind: 'image' });
    await w.ledger.markSubmitted('s', { dataId: 'i', requestId: 'r', kind: 'image' });
    const submittedAt = Date.parse((await w.ledger.get('s'))?.submittedAt ?? '');
    expect(Number.isNaN(submittedAt)).toBe(false);

    clock.t = submittedAt + 5_000;
    await w.call({ body: JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'running', Progress: 50 }) });
    expect(m.timings()).toEqual([]);

    clock.t = submittedAt + 42_000;
    const final = JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'Success' });
    expect((await w.call({ body: final })).status).toBe(200);
    expect(m.timings()).toEqual([{ name: METRIC.submissionToResult, unit: 'Milliseconds', value: 42_000 }]);

    // A replay of the same body, and a second (outranked) final, are not a second result.
    clock.t += 1_000;
    await w.call({ body: final });
    await w.call({ body: JSON.stringify({ TaskID: 't', ImageID: 'i', Status: 'Failed' }) });
    expect(m.timings()).toHaveLength(1);
  });

  it('is not recorded for a callback whose submission is not known yet', async () => {
    const m = recorder();
    const w = await world(servers, { metrics: m.metrics });
    await w.call({ body: JSON.stringify({ TaskID: 't', ImageID: 'unknown', Status: 'Success' }) });
    expect(m.seen.map((x) => x.name)).toContain(METRIC.resultsStored);
    expect(m.timings()).toEqual([]);
  });
});
