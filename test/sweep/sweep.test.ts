/**
 * The sweep against dynalite with short settings and a clock the test moves: overdue
 * submissions and expired uploads are marked once, announced once, shown by the ledger,
 * and undone by what they were waiting for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoLedger, createLedgerTable } from '../../lib/ledger/index';
import { runSweep, type SweepPublisher } from '../../lib/sweep/index';
import { type Servers, startServers } from '../callback/world';

let servers: Servers;
beforeAll(async () => {
  servers = await startServers();
});
afterAll(async () => {
  await servers?.close();
});

let n = 0;
async function setup() {
  const clock = { t: Date.parse('2026-12-01T00:00:00Z') };
  const tableName = `sweep-${++n}`;
  await createLedgerTable(servers.doc, tableName);
  const ledger = createDynamoLedger({ tableName, client: servers.doc, now: () => new Date(clock.t) });
  const events: { type: string; detail: Record<string, unknown> }[] = [];
  let failing = false;
  const publisher: SweepPublisher = {
    async publish(type, detail) {
      if (failing) throw new Error('bus down');
      events.push({ type, detail });
    },
  };
  const settings = { overdueAfterMs: 60_000, expireUploadsAfterMs: 10_000, abandonedAfterMs: 30_000 };
  const counted: string[] = [];
  const metrics = { addMetric: (name: string) => counted.push(name) };
  const sweep = () => runSweep({ ledger, publisher, settings, now: () => new Date(clock.t), metrics });
  return { clock, ledger, events, sweep, counted, fail: (v: boolean) => (failing = v) };
}

describe('sweep', () => {
  it('marks a submission with no final callback overdue after the set time, once; a later final completes it', async () => {
    const { clock, ledger, events, sweep, counted } = await setup();
    await ledger.begin({ id: 'late', source: 'api', taskId: 't', kind: 'video' });
    await ledger.markSubmitted('late', { dataId: 'v-late', requestId: 'r', kind: 'video' });
    await ledger.begin({ id: 'done', source: 'api', taskId: 't', kind: 'video' });
    await ledger.markSubmitted('done', { dataId: 'v-done', requestId: 'r', kind: 'video' });
    await ledger.recordResult({
      dataId: 'v-done',
      status: 'completed',
      location: 's3://b/d',
      receivedAt: new Date(clock.t).toISOString(),
    });
    await ledger.begin({ id: 'running', source: 'api', taskId: 't', kind: 'video' });
    await ledger.markSubmitted('running', { dataId: 'v-run', requestId: 'r', kind: 'video' });
    await ledger.recordResult({
      dataId: 'v-run',
      status: 'progress',
      location: 's3://b/p',
      receivedAt: new Date(clock.t).toISOString(),
    });

    clock.t += 59_000;
    expect((await sweep()).overdue).toEqual([]);
    clock.t += 2_000;
    const report = await sweep();
    expect(report.overdue.sort()).toEqual(['late', 'running']);
    expect((await ledger.get('late'))?.status).toBe('overdue');
    expect((await ledger.get('running'))?.status).toBe('overdue');
    expect((await ledger.get('done'))?.status).toBe('completed');
    expect(events.map((e) => [e.type, e.detail.submissionId, e.detail.status]).sort()).toEqual([
      ['IVA Result Overdue', 'late', 'overdue'],
      ['IVA Result Overdue', 'running', 'overdue'],
    ]);
    // Announced once: later runs, and overlapping runs, find nothing more.
    await Promise.all([sweep(), sweep()]);
    expect(events).toHaveLength(2);
    // The dashboard's overdue count: one per announced mark.
    expect(counted).toEqual(['Overdue', 'Overdue']);

    await ledger.recordResult({
      dataId: 'v-late',
      status: 'completed',
      location: 's3://b/l',
      receivedAt: new Date(clock.t).toISOString(),
    });
    expect(await ledger.get('late')).toMatchObject({ status: 'completed', overdueAt: expect.any(String) });
    // The status listing follows the marks and what undoes them.
    const ids = async (status: 'overdue' | 'completed') =>
      (await ledger.listByStatus(status)).items.map((r) => r.id).sort();
    expect(await ids('overdue')).toEqual(['running']);
    expect(await ids('completed')).toEqual(['done', 'late']);
  });

  it('marks a reserved upload never used expired after the set time; an upload that still arrives is processed', async () => {
    const { clock, ledger, events, sweep } = await setup();
    await ledger.reserve({ id: 'unused', source: 'upload', taskId: 't', kind: 'image' });
    await ledger.reserve({ id: 'used', source: 'upload', taskId: 't', kind: 'image' });
    await ledger.begin({ id: 'used', source: 'upload', taskId: 't', kind: 'image' });
    clock.t += 11_000;
    const report = await sweep();
    expect(report.expired).toEqual(['unused']);
    expect(await ledger.get('unused')).toMatchObject({ status: 'expired', expiredAt: expect.any(String) });
    expect((await ledger.get('used'))?.status).toBe('pending');
    expect((await ledger.listByStatus('expired')).items.map((r) => r.id)).toEqual(['unused']);
    expect(events).toEqual([
      { type: 'Upload Expired', detail: expect.objectContaining({ submissionId: 'unused', status: 'expired' }) },
    ]);
    await sweep();
    expect(events).toHaveLength(1);
    // Late but real: the upload arrives after all.
    const begun = await ledger.begin({ id: 'unused', source: 'upload', taskId: 't', kind: 'image' });
    expect(begun.action).toBe('proceed');
    expect((await ledger.get('unused'))?.status).toBe('pending');
    expect((await ledger.listByStatus('expired')).items).toEqual([]);
  });

  it('makes a direct submission left pending by a lost invocation uncertain (InvocationLost), once, and announces it', async () => {
    const { clock, ledger, events, sweep, counted } = await setup();
    // A direct submission whose function died between taking the record and IVA's answer,
    // one that finished, and a reserved upload (not a direct submission) of the same age.
    await ledger.begin({ id: 'lost', source: 'api', taskId: 't', kind: 'image', name: 'a.jpg' });
    await ledger.begin({ id: 'done', source: 'api', taskId: 't', kind: 'image', name: 'b.jpg' });
    await ledger.markSubmitted('done', { dataId: 'img-1', requestId: 'r1', kind: 'image' });
    clock.t += 29_000;
    expect((await sweep()).abandoned).toEqual([]);
    clock.t += 2_000;
    const report = await sweep();
    expect(report.abandoned).toEqual(['lost']);
    expect(await ledger.get('lost')).toMatchObject({
      status: 'uncertain',
      uncertain: { code: 'InvocationLost', failedAt: new Date(clock.t).toISOString() },
    });
    expect(await ledger.get('done')).toMatchObject({ status: 'submitted' });
    expect(events).toEqual([
      {
        type: 'IVA Submission Uncertain',
        detail: expect.objectContaining({ submissionId: 'lost', source: 'api', code: 'InvocationLost', name: 'a.jpg' }),
      },
    ]);
    expect(counted).toContain('Uncertain');
    // Once: a second run finds nothing; the owner resolves it like any uncertain one.
    clock.t += 60_000;
    expect((await sweep()).abandoned).toEqual([]);
    expect(events.filter((e) => e.type === 'IVA Submission Uncertain')).toHaveLength(1);
    await ledger.resolveUncertain('lost', { status: 'failed' });
    expect((await ledger.get('lost'))?.status).toBe('failed');
  });

  it('leaves a direct submission alone when its invocation records the answer first', async () => {
    const { clock, ledger, sweep } = await setup();
    await ledger.begin({ id: 'late', source: 'api', taskId: 't', kind: 'image' });
    clock.t += 31_000;
    // The answer lands between the sweep's read and its mark: the conditional mark loses.
    await ledger.markSubmitted('late', { dataId: 'img-2', requestId: 'r2', kind: 'image' });
    expect(
      await ledger.markAbandoned('late', { code: 'InvocationLost', message: 'x', failedAt: 'now' }),
    ).toBeUndefined();
    expect((await sweep()).abandoned).toEqual([]);
    expect((await ledger.get('late'))?.status).toBe('submitted');
  });

  it('takes a mark back when its event cannot be published, and announces it on the next run', async () => {
    const { clock, ledger, events, sweep, fail } = await setup();
    await ledger.reserve({ id: 'u', source: 'upload', taskId: 't', kind: 'image' });
    clock.t += 11_000;
    fail(true);
    expect((await sweep()).failed).toEqual(['u']);
    expect((await ledger.get('u'))?.status).toBe('pending');
    fail(false);
    expect((await sweep()).expired).toEqual(['u']);
    expect(events).toHaveLength(1);
  });
});
