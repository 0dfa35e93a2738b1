import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynalite } from '../../local/servers/dynalite';
import {
  createDynamoLedger,
  InvalidCursorError,
  createLedgerTable,
  SubmissionNotFoundError,
  SubmissionNotUncertainError,
  type Ledger,
} from '../../lib/ledger/index';

let stop: () => Promise<void>;
let doc: DynamoDBDocumentClient;
let tableCount = 0;

beforeAll(async () => {
  const dynalite = await startDynalite();
  stop = dynalite.close;
  const client = new DynamoDBClient({
    endpoint: dynalite.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  await stop?.();
});

/** A fresh table per test, with a clock the test moves by hand. */
async function freshLedger(start = Date.parse('2026-11-30T12:00:00Z')) {
  const tableName = `ledger-${++tableCount}`;
  await createLedgerTable(doc, tableName);
  const clock = { t: start };
  const ledger = createDynamoLedger({ tableName, client: doc, now: () => new Date(clock.t), leaseMs: 60_000 });
  return { ledger, clock };
}

const base = { source: 's3' as const, taskId: 'task-1', kind: 'image' as const, name: 'cat.jpg' };

describe('begin: exactly one submitter per submission', () => {
  it('creates a pending record and hands out one lease', async () => {
    const { ledger } = await freshLedger();
    const first = await ledger.begin({ id: 'a', ...base, object: { bucket: 'b', key: 'incoming/x', versionId: 'v1' } });
    expect(first.action).toBe('proceed');
    expect(first.record).toMatchObject({
      id: 'a',
      status: 'pending',
      attempts: 1,
      object: { key: 'incoming/x', versionId: 'v1' },
    });
    expect((await ledger.begin({ id: 'a', ...base })).action).toBe('busy');
  });

  it('lets exactly one of many concurrent deliveries proceed', async () => {
    const { ledger } = await freshLedger();
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => ledger.begin({ id: 'same', ...base })));
    expect(outcomes.filter((o) => o.action === 'proceed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.action === 'busy')).toHaveLength(7);
  });

  it('treats deliveries after submission or failure as duplicates', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 's', ...base });
    await ledger.markSubmitted('s', { dataId: 'img-1', requestId: 'req-1', kind: 'image' });
    expect((await ledger.begin({ id: 's', ...base })).action).toBe('duplicate');
    await ledger.begin({ id: 'f', ...base });
    await ledger.markFailed('f', { code: 'UnsupportedMediaType', message: 'no' });
    const dup = await ledger.begin({ id: 'f', ...base });
    expect(dup).toMatchObject({
      action: 'duplicate',
      record: { status: 'failed', error: { code: 'UnsupportedMediaType' } },
    });
  });

  it('takes over an expired lease (a crashed container) and counts the attempt', async () => {
    const { ledger, clock } = await freshLedger();
    await ledger.begin({ id: 'c', ...base });
    clock.t += 59_000;
    expect((await ledger.begin({ id: 'c', ...base })).action).toBe('busy');
    clock.t += 2_000;
    const again = await ledger.begin({ id: 'c', ...base });
    expect(again).toMatchObject({ action: 'proceed', record: { attempts: 2, status: 'pending' } });
  });

  it('releases the lease on a retryable failure and keeps the error visible', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'r', ...base });
    const retrying = await ledger.markRetrying('r', {
      code: 'FlowLimitExceeded',
      message: 'slow down',
      requestId: 'rq',
    });
    expect(retrying).toMatchObject({ status: 'pending', error: { code: 'FlowLimitExceeded', requestId: 'rq' } });
    expect(retrying.leaseUntil).toBeUndefined();
    const next = await ledger.begin({ id: 'r', ...base });
    expect(next).toMatchObject({ action: 'proceed', record: { attempts: 2 } });
    const done = await ledger.markSubmitted('r', { dataId: 'img-r', requestId: 'rq2', kind: 'image' });
    expect(done.error).toBeUndefined();
    expect(done).toMatchObject({ status: 'submitted', dataId: 'img-r', requestId: 'rq2' });
  });

  it('turns a reserved upload into a lease on the first delivery, recording the object', async () => {
    const { ledger } = await freshLedger();
    const reserved = await ledger.reserve({ id: 'u', ...base, source: 'upload' });
    expect(reserved).toMatchObject({ status: 'pending', attempts: 0, source: 'upload' });
    const first = await ledger.begin({
      id: 'u',
      ...base,
      source: 'upload',
      object: { bucket: 'b', key: 'incoming/u/cat.jpg', eTag: '"e"' },
    });
    expect(first).toMatchObject({ action: 'proceed', record: { attempts: 1, object: { key: 'incoming/u/cat.jpg' } } });
  });

  it("records the lease holder's full object identity over a reserved one", async () => {
    const { ledger } = await freshLedger();
    await ledger.reserve({ id: 'u2', ...base, source: 'upload', object: { bucket: 'b', key: 'incoming/u2/a.jpg' } });
    const a = await ledger.begin({
      id: 'u2',
      ...base,
      source: 'upload',
      object: { bucket: 'b', key: 'incoming/u2/a.jpg', versionId: 'vA' },
    });
    expect(a).toMatchObject({ action: 'proceed', record: { object: { versionId: 'vA' } } });
    // A second upload through the same URL loses the race and sees whose lease it is.
    const b = await ledger.begin({
      id: 'u2',
      ...base,
      source: 'upload',
      object: { bucket: 'b', key: 'incoming/u2/a.jpg', versionId: 'vB' },
    });
    expect(b).toMatchObject({ action: 'busy', record: { object: { versionId: 'vA' } } });
  });

  it('refuses updates to a submission that does not exist', async () => {
    const { ledger } = await freshLedger();
    await expect(ledger.markFailed('nope', { code: 'X', message: 'y' })).rejects.toBeInstanceOf(
      SubmissionNotFoundError,
    );
  });
});

describe('uncertain: IVA may have it, nothing resubmits it until its owner decides', () => {
  const lost = {
    code: 'ConnectionLostAfterSend',
    message: 'the connection closed after the request was sent',
    sentAt: '2026-11-30T12:00:00.100Z',
    failedAt: '2026-11-30T12:00:03.000Z',
  };

  it('records the cause and timestamps, releases the lease, and a redelivery is a duplicate', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'u', ...base });
    const uncertain = await ledger.markUncertain('u', lost);
    expect(uncertain).toMatchObject({
      status: 'uncertain',
      submitStatus: 'uncertain',
      uncertain: lost,
      error: { code: 'ConnectionLostAfterSend' },
    });
    expect(uncertain.leaseUntil).toBeUndefined();
    expect(await ledger.get('u')).toMatchObject({ status: 'uncertain', uncertain: lost });
    const again = await ledger.begin({ id: 'u', ...base });
    expect(again).toMatchObject({ action: 'duplicate', record: { status: 'uncertain', attempts: 1 } });
    const listed = await ledger.listByTask('task-1');
    expect(listed.items.map((r) => [r.id, r.status])).toEqual([['u', 'uncertain']]);
  });

  it('resolve submitted: links the data id and picks up a callback that arrived before', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'u', ...base });
    await ledger.markUncertain('u', lost);
    await ledger.recordResult({
      dataId: 'img-u',
      taskId: 'task-1',
      status: 'completed',
      location: 's3://b/results/task-1/img-u/x.json',
      receivedAt: '2026-11-30T12:00:05Z',
    });
    const resolved = await ledger.resolveUncertain('u', { status: 'submitted', dataId: 'img-u', note: 'found it' });
    expect(resolved).toMatchObject({
      status: 'completed',
      submitStatus: 'submitted',
      dataId: 'img-u',
      resolution: { action: 'submitted', note: 'found it' },
      uncertain: lost,
    });
    expect(resolved.error).toBeUndefined();
    expect((await ledger.getByDataId('img-u'))?.id).toBe('u');
  });

  it('resolve failed ends it failed with the cause kept; a second resolution is refused', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'u', ...base });
    await ledger.markUncertain('u', lost);
    const failed = await ledger.resolveUncertain('u', { status: 'failed' });
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'ConnectionLostAfterSend' } });
    expect(failed.resolution).toMatchObject({ action: 'failed' });
    const second = ledger.resolveUncertain('u', { status: 'submitted' });
    await expect(second).rejects.toBeInstanceOf(SubmissionNotUncertainError);
    await expect(second).rejects.toMatchObject({ code: 'SubmissionNotUncertain', status: 'failed' });
    await expect(ledger.reopenUncertain('u')).rejects.toMatchObject({ code: 'SubmissionNotUncertain' });
    await expect(ledger.resolveUncertain('nope', { status: 'failed' })).rejects.toBeInstanceOf(SubmissionNotFoundError);
  });

  it('reopen: exactly one of concurrent resubmit requests gets the lease', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'u', ...base });
    await ledger.markUncertain('u', lost);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => ledger.reopenUncertain('u')));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect((won[0] as PromiseFulfilledResult<Awaited<ReturnType<Ledger['get']>>>).value).toMatchObject({
      status: 'pending',
      attempts: 2,
      resolution: { action: 'resubmitted' },
    });
    for (const o of outcomes.filter((o) => o.status === 'rejected'))
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(SubmissionNotUncertainError);
    expect((await ledger.get('u'))?.leaseUntil).toBeDefined();
  });
});

describe('results: the submission write and the callback write commute', () => {
  const result = {
    dataId: 'img-9',
    taskId: 'task-1',
    kind: 'image' as const,
    status: 'completed' as const,
    rawStatus: 'success',
    location: 's3://b/results/task-1/img-9/x.json',
    receivedAt: '2026-11-30T12:00:05.000Z',
  };

  async function scenario(order: 'submission-first' | 'callback-first') {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'sub', ...base });
    if (order === 'submission-first') {
      await ledger.markSubmitted('sub', { dataId: 'img-9', requestId: 'req-9', kind: 'image' });
      const outcome = await ledger.recordResult(result);
      expect(outcome.submission?.id).toBe('sub');
    } else {
      const outcome = await ledger.recordResult(result);
      expect(outcome).toEqual({ applied: true, shown: expect.objectContaining({ location: result.location }) });
      await ledger.markSubmitted('sub', { dataId: 'img-9', requestId: 'req-9', kind: 'image' });
    }
    return (await ledger.get('sub'))!;
  }

  it('ends in the same record whichever arrives first', async () => {
    const a = await scenario('submission-first');
    const b = await scenario('callback-first');
    expect(a).toEqual(b);
    expect(a).toMatchObject({
      status: 'completed',
      dataId: 'img-9',
      requestId: 'req-9',
      submitStatus: 'submitted',
      result: { location: result.location, rawStatus: 'success' },
    });
  });

  it('never loses the result when both writes race', async () => {
    for (let i = 0; i < 10; i++) {
      const { ledger } = await freshLedger();
      await ledger.begin({ id: `s${i}`, ...base });
      await Promise.all([
        ledger.recordResult({ ...result, dataId: `d${i}` }),
        ledger.markSubmitted(`s${i}`, { dataId: `d${i}`, requestId: 'rq', kind: 'image' }),
      ]);
      const record = await ledger.get(`s${i}`);
      expect(record).toMatchObject({
        status: 'completed',
        dataId: `d${i}`,
        requestId: 'rq',
        result: { location: result.location },
      });
      expect((await ledger.getByDataId(`d${i}`))?.id).toBe(`s${i}`);
      // The status index agrees, whichever write came last.
      expect((await ledger.listByStatus('completed')).items.map((r) => r.id)).toEqual([`s${i}`]);
      expect((await ledger.listByStatus('submitted')).items).toEqual([]);
    }
  });

  it('shows the latest callback and ignores an older one arriving late', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'p', ...base });
    await ledger.markSubmitted('p', { dataId: 'img-p', requestId: 'rq', kind: 'image' });
    const progress = await ledger.recordResult({
      ...result,
      dataId: 'img-p',
      status: 'progress',
      rawStatus: 'running',
      location: 's3://b/1',
      receivedAt: '2026-11-30T12:00:01.000Z',
    });
    expect(progress.submission).toMatchObject({ status: 'submitted', result: { status: 'progress' } });
    const final = await ledger.recordResult({
      ...result,
      dataId: 'img-p',
      location: 's3://b/2',
      receivedAt: '2026-11-30T12:00:03.000Z',
    });
    expect(final.submission).toMatchObject({ status: 'completed', result: { location: 's3://b/2' } });
    const late = await ledger.recordResult({
      ...result,
      dataId: 'img-p',
      status: 'progress',
      location: 's3://b/0',
      receivedAt: '2026-11-30T12:00:00.000Z',
    });
    expect(late.applied).toBe(false);
    expect(late.submission).toMatchObject({ status: 'completed', result: { location: 's3://b/2' } });
  });

  it('never lets a non-final callback undo a final one, whatever their receipt times', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'nf', ...base });
    await ledger.markSubmitted('nf', { dataId: 'img-nf', requestId: 'rq', kind: 'image' });
    await ledger.recordResult({ ...result, dataId: 'img-nf', location: 's3://b/final', resultId: 'final' });
    const late = await ledger.recordResult({
      ...result,
      dataId: 'img-nf',
      status: 'progress',
      rawStatus: 'running',
      location: 's3://b/running',
      resultId: 'running',
      receivedAt: '2099-01-01T00:00:00.000Z',
    });
    expect(late.applied).toBe(false);
    expect(late.submission).toMatchObject({ status: 'completed', result: { location: 's3://b/final' } });
    // Both bodies are in the history, oldest first.
    expect((await ledger.resultHistory('img-nf')).map((r) => r.location)).toEqual(['s3://b/final', 's3://b/running']);
  });

  it('two different finals: the first received wins the status, even when recorded second; both are history', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'ff', ...base });
    await ledger.markSubmitted('ff', { dataId: 'img-ff', requestId: 'rq', kind: 'image' });
    const second = await ledger.recordResult({
      ...result,
      dataId: 'img-ff',
      status: 'failed',
      location: 's3://b/second',
      resultId: 'second',
      receivedAt: '2026-11-30T12:00:05.000Z',
    });
    expect(second.applied).toBe(true);
    const first = await ledger.recordResult({
      ...result,
      dataId: 'img-ff',
      location: 's3://b/first',
      resultId: 'first',
      receivedAt: '2026-11-30T12:00:01.000Z',
    });
    expect(first.applied).toBe(true);
    expect(first.submission).toMatchObject({ status: 'completed', result: { location: 's3://b/first' } });
    const third = await ledger.recordResult({
      ...result,
      dataId: 'img-ff',
      status: 'failed',
      location: 's3://b/third',
      resultId: 'third',
      receivedAt: '2026-11-30T12:00:09.000Z',
    });
    expect(third.applied).toBe(false);
    expect((await ledger.get('ff'))?.result?.location).toBe('s3://b/first');
    expect((await ledger.resultHistory('img-ff')).map((r) => r.location)).toEqual([
      's3://b/first',
      's3://b/second',
      's3://b/third',
    ]);
  });

  it('applies the same ordering when the callbacks came before the submission was recorded', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'early', ...base });
    await ledger.recordResult({ ...result, dataId: 'img-e', location: 's3://b/final', resultId: 'f' });
    await ledger.recordResult({
      ...result,
      dataId: 'img-e',
      status: 'progress',
      location: 's3://b/progress',
      resultId: 'p',
      receivedAt: '2099-01-01T00:00:00.000Z',
    });
    const record = await ledger.markSubmitted('early', { dataId: 'img-e', requestId: 'rq', kind: 'image' });
    expect(record).toMatchObject({ status: 'completed', result: { location: 's3://b/final' } });
  });

  it('claims each stored result event once: concurrent claims, one winner; published is final', async () => {
    const { ledger } = await freshLedger();
    await ledger.recordResult({ ...result, dataId: 'img-c', location: 's3://b/c', resultId: 'c' });
    const claims = await Promise.all(
      Array.from({ length: 20 }, () => ledger.claimResultEvent('img-c', 'c', { leaseMs: 60_000 })),
    );
    expect(claims.filter((c) => c === 'claimed')).toHaveLength(1);
    expect(claims.filter((c) => c === 'busy')).toHaveLength(19);
    await ledger.markResultEventPublished('img-c', 'c');
    expect(await ledger.claimResultEvent('img-c', 'c', { leaseMs: 60_000 })).toBe('published');
  });

  it('lets a later delivery take over a claim whose lease has run out (the holder crashed)', async () => {
    const { ledger, clock } = await freshLedger();
    await ledger.recordResult({ ...result, dataId: 'img-l', location: 's3://b/l', resultId: 'l' });
    expect(await ledger.claimResultEvent('img-l', 'l', { leaseMs: 1000 })).toBe('claimed');
    expect(await ledger.claimResultEvent('img-l', 'l', { leaseMs: 1000 })).toBe('busy');
    clock.t += 1001;
    expect(await ledger.claimResultEvent('img-l', 'l', { leaseMs: 1000 })).toBe('claimed');
  });

  it('reports a failed analysis as failed', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'x', ...base });
    await ledger.markSubmitted('x', { dataId: 'img-x', requestId: 'rq', kind: 'image' });
    const out = await ledger.recordResult({ ...result, dataId: 'img-x', status: 'failed', rawStatus: 'error' });
    expect(out.submission?.status).toBe('failed');
  });
});

describe('listByTask', () => {
  it('lists newest first, page by page, and rejects foreign cursors', async () => {
    const { ledger, clock } = await freshLedger();
    for (let i = 0; i < 5; i++) {
      clock.t += 1000;
      await ledger.begin({ id: `t${i}`, ...base, taskId: 'T' });
    }
    await ledger.begin({ id: 'other', ...base, taskId: 'U' });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<Ledger['listByTask']>> = await ledger.listByTask('T', { limit: 2, cursor });
      seen.push(...page.items.map((r) => r.id));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(['t4', 't3', 't2', 't1', 't0']);
    const first = await ledger.listByTask('T', { limit: 2 });
    await expect(ledger.listByTask('U', { cursor: first.cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(ledger.listByTask('T', { cursor: 'garbage' })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it('rejects forged cursors with the right fields but wrong types as InvalidCursorError, never a DynamoDB error', async () => {
    const { ledger } = await freshLedger();
    await ledger.begin({ id: 'a', ...base, taskId: 'T' });
    const forge = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
    for (const key of [
      { gsi1pk: 'TASK#T', gsi1sk: 1, pk: 'SUB#a', sk: 'SUB' },
      { gsi1pk: 'TASK#T', gsi1sk: '2026#a', pk: { S: 'x' }, sk: 'SUB' },
      { gsi1pk: 'TASK#T', gsi1sk: '2026#a', pk: 'SUB#a', sk: null },
      { gsi1pk: 'TASK#T', gsi1sk: '2026#a', pk: '', sk: 'SUB' },
    ]) {
      await expect(ledger.listByTask('T', { cursor: forge(key) })).rejects.toBeInstanceOf(InvalidCursorError);
    }
    await expect(ledger.listByTask('T', { cursor: forge(null) })).rejects.toBeInstanceOf(InvalidCursorError);
  });
});

describe('listByStatus: every task, one status', () => {
  it('follows each record through its statuses (submitted, failed, completed, uncertain), newest first, with and without a TaskID', async () => {
    const { ledger, clock } = await freshLedger();
    const tick = () => {
      clock.t += 1000;
    };
    tick();
    await ledger.begin({ id: 'no-task', source: 's3', name: 'a.jpg' }); // no TaskID at all
    await ledger.markFailed('no-task', { code: 'MissingTaskId', message: 'no TaskID' });
    tick();
    await ledger.begin({ id: 'refused', ...base, taskId: 'A' });
    await ledger.markFailed('refused', { code: 'InvalidParameter', message: 'bad' });
    tick();
    await ledger.begin({ id: 'ok', ...base, taskId: 'B' });
    await ledger.markSubmitted('ok', { dataId: 'img-ok', requestId: 'r', kind: 'image' });
    tick();
    await ledger.begin({ id: 'done', ...base, taskId: 'B' });
    await ledger.markSubmitted('done', { dataId: 'img-done', requestId: 'r', kind: 'image' });
    await ledger.recordResult({
      dataId: 'img-done',
      status: 'completed',
      location: 's3://b/results/x.json',
      receivedAt: new Date(clock.t).toISOString(),
    });
    tick();
    // The callback first, then the submitter's write: still listed as completed.
    await ledger.begin({ id: 'early', ...base, taskId: 'C' });
    await ledger.recordResult({
      dataId: 'img-early',
      status: 'failed',
      location: 's3://b/results/y.json',
      receivedAt: new Date(clock.t).toISOString(),
    });
    await ledger.markSubmitted('early', { dataId: 'img-early', requestId: 'r', kind: 'image' });
    tick();
    await ledger.begin({ id: 'maybe', ...base, taskId: 'C' });
    await ledger.markUncertain('maybe', { code: 'TimeoutAfterSend', message: 'lost', failedAt: 'x' });
    tick();
    await ledger.begin({ id: 'waiting', ...base, taskId: 'C' });

    const ids = async (status: Parameters<Ledger['listByStatus']>[0]) =>
      (await ledger.listByStatus(status)).items.map((r) => r.id);
    expect(await ids('failed')).toEqual(['early', 'refused', 'no-task']);
    expect(await ids('submitted')).toEqual(['ok']);
    expect(await ids('completed')).toEqual(['done']);
    expect(await ids('uncertain')).toEqual(['maybe']);
    expect(await ids('pending')).toEqual(['waiting']);
    for (const status of ['failed', 'submitted', 'completed', 'uncertain', 'pending'] as const) {
      for (const record of (await ledger.listByStatus(status)).items) expect(record.status).toBe(status);
    }
  });

  it('pages with a cursor bound to its status; forged and foreign cursors are InvalidCursorError', async () => {
    const { ledger, clock } = await freshLedger();
    for (let i = 0; i < 5; i++) {
      clock.t += 1000;
      await ledger.begin({ id: `f${i}`, ...base, taskId: `T${i}` });
      await ledger.markFailed(`f${i}`, { code: 'X', message: 'x' });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<Ledger['listByStatus']>> = await ledger.listByStatus('failed', {
        limit: 2,
        cursor,
      });
      seen.push(...page.items.map((r) => r.id));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(['f4', 'f3', 'f2', 'f1', 'f0']);
    const first = await ledger.listByStatus('failed', { limit: 2 });
    await expect(ledger.listByStatus('pending', { cursor: first.cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(ledger.listByTask('T1', { cursor: first.cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    const forge = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
    for (const key of [
      { gsi2pk: 'STATUS#failed', gsi2sk: `2026-11-30T12:00:01.000Z#${'x'.repeat(3000)}`, pk: 'SUB#x', sk: 'SUB' },
      { gsi2pk: 'STATUS#failed', gsi2sk: '2026-11-30T12:00:01.000Z#f1', pk: 'SUB#f2', sk: 'SUB' },
      { gsi2pk: 'STATUS#failed', gsi2sk: 5, pk: 'SUB#f1', sk: 'SUB' },
    ]) {
      await expect(ledger.listByStatus('failed', { cursor: forge(key) })).rejects.toBeInstanceOf(InvalidCursorError);
    }
  });
});
