/**
 * processRecord's steps and the whole record path with the in-memory ledger
 * (lib/ledger/memory.ts) and in-process fakes of S3, the presigner and IVA: no servers.
 * The same paths against dynalite, s3rver and the IVA sandbox are in
 * test/functions/object-created/handler.test.ts.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { IvaAmbiguousError, IvaError } from '../../lib/iva/errors';
import type { IvaClient, SubmitInput, SubmitOptions, SubmitResult } from '../../lib/iva/types';
import { createMemoryLedger } from '../../lib/ledger/memory';
import type { ObjectCreatedRecord } from '../../lib/s3-intake/events';
import { claimSubmissionId, derivedIdOf, observeObject } from '../../lib/s3-intake/identity';
import type { Pacer } from '../../lib/s3-intake/pacer';
import { beginSubmission, createIntake, type IntakeDeps, sendPaced } from '../../lib/s3-intake/process';
import { RecordLog } from '../../lib/s3-intake/record-log';
import { silentLogger } from '../../lib/observability';
import type { Presigner } from '../../lib/storage/presign';

function event(over: Partial<ObjectCreatedRecord> = {}): ObjectCreatedRecord {
  return {
    bucket: 'b',
    key: 'incoming/task-1/cat.jpg',
    rawKey: 'incoming/task-1/cat.jpg',
    eventName: 'ObjectCreated:Put',
    eventTime: '2026-01-01T00:00:00.000Z',
    eTag: 'e1',
    versionId: 'v1',
    ...over,
  };
}

type Head = { ETag?: string; ContentLength?: number; ContentType?: string; Metadata?: Record<string, string> };

/** S3 whose HeadObject answers `head` (null: 404, the object is gone). */
function fakeS3(head: Head | null): S3Client {
  return {
    send: async () => {
      if (head) return head;
      throw Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
    },
  } as unknown as S3Client;
}

const presigner: Presigner = {
  presignGet: async (ref) => ({
    url: `https://s3.example/${ref.key}?versionId=${ref.versionId}&X-Amz-Signature=secret`,
    expiresInSeconds: 3600,
    expiresAt: '2026-01-01T01:00:00.000Z',
    signedWith: 'long-lived',
    warnings: [],
  }),
};

/** IVA answering each call from `answers` in turn (an error is thrown), recording the inputs. */
function fakeIva(...answers: Array<SubmitResult | Error>): IvaClient & { calls: SubmitInput[] } {
  const calls: SubmitInput[] = [];
  return {
    calls,
    submit: async (input: SubmitInput, _options?: SubmitOptions) => {
      calls.push(input);
      const answer = answers[Math.min(calls.length, answers.length) - 1];
      if (answer === undefined) throw new Error('no answer left');
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

const accepted: SubmitResult = { kind: 'image', dataId: 'img-1', requestId: 'req-1', attempts: 1 };
const jpeg: Head = { ETag: '"e1"', ContentLength: 1234, ContentType: 'image/jpeg', Metadata: {} };
const log = () => new RecordLog(silentLogger, {});

function intake(over: Partial<IntakeDeps> & Pick<IntakeDeps, 'iva'>, head: Head | null = jpeg) {
  const ledger = createMemoryLedger();
  const deps: IntakeDeps = { s3: fakeS3(head), ledger, presigner, ...over };
  return { ledger, ...createIntake(deps) };
}

const plenty = () => 30_000;

describe('identity', () => {
  it('reads an unchanged object: its size, type, metadata and the fields the rules read', () => {
    const observed = observeObject(event(), { ...jpeg, Metadata: { 'iva-name': 'x' } });
    expect(observed).toEqual({
      objectRef: {
        bucket: 'b',
        key: 'incoming/task-1/cat.jpg',
        versionId: 'v1',
        eTag: 'e1',
        size: 1234,
        contentType: 'image/jpeg',
      },
      overwritten: false,
      metadata: { 'iva-name': 'x' },
      headETag: '"e1"',
      facts: { key: 'incoming/task-1/cat.jpg', metadata: { 'iva-name': 'x' }, contentType: 'image/jpeg', size: 1234 },
    });
  });

  it('sees an unversioned object overwritten since its event, and drops the newer metadata', () => {
    const stale = event({ versionId: undefined, sequencer: 's1' });
    const observed = observeObject(stale, { ...jpeg, ETag: '"e2"', Metadata: { 'iva-task-id': 'other' } });
    expect(observed.overwritten).toBe(true);
    expect(observed.metadata).toEqual({});
    expect(observed.headETag).toBeUndefined();
    expect(observed.objectRef).toEqual({ bucket: 'b', key: stale.key, sequencer: 's1', eTag: 'e1' });
    // A versioned event names its own version, whatever the key holds now.
    expect(observeObject(event(), { ...jpeg, ETag: '"e2"' }).overwritten).toBe(false);
    // The same bytes again is not an overwrite.
    expect(observeObject(stale, jpeg).overwritten).toBe(false);
  });

  it('derives one id per upload: version first, then sequencer, then ETag', () => {
    expect(derivedIdOf(event(), undefined)).toBe(derivedIdOf(event({ sequencer: 'other', eTag: 'other' }), undefined));
    expect(derivedIdOf(event(), undefined)).not.toBe(derivedIdOf(event({ versionId: 'v2' }), undefined));
    const unversioned = event({ versionId: undefined, eTag: undefined });
    expect(derivedIdOf(unversioned, '"e1"')).toBe(derivedIdOf(event({ versionId: undefined, eTag: 'e1' }), undefined));
    expect(derivedIdOf(unversioned, '"e1"')).not.toBe(derivedIdOf(unversioned, '"e2"'));
    expect(derivedIdOf(unversioned, '"e1"')).toMatch(/^s3_[A-Za-z0-9_-]{32}$/);
  });

  it("takes the id of the upload route's reservation only when it is this upload's", async () => {
    const ledger = createMemoryLedger();
    await ledger.reserve({ id: 'upl_reserved1', source: 'upload', taskId: 'task-1' });
    const claimed = { metadata: { 'iva-submission-id': 'upl_reserved1' }, headETag: '"e1"' };
    expect(await claimSubmissionId(event(), claimed, ledger, log())).toEqual({ id: 'upl_reserved1', source: 'upload' });
    const derived = { id: derivedIdOf(event(), '"e1"'), source: 's3' };
    const unknown = { metadata: { 'iva-submission-id': 'upl_unknown' }, headETag: '"e1"' };
    expect(await claimSubmissionId(event(), unknown, ledger, log())).toEqual(derived);
    const malformed = { metadata: { 'iva-submission-id': 'x'.repeat(500) }, headETag: '"e1"' };
    expect(await claimSubmissionId(event(), malformed, ledger, log())).toEqual(derived);
    // Used by another version of the key already: this upload is a submission of its own.
    await ledger.begin({
      id: 'upl_reserved1',
      source: 'upload',
      object: { bucket: 'b', key: event().key, versionId: 'v0' },
    });
    expect(await claimSubmissionId(event(), claimed, ledger, log())).toEqual(derived);
  });
});

describe('beginSubmission', () => {
  it('begins under the derived id when another upload won the reserved one', async () => {
    const ledger = createMemoryLedger();
    await ledger.reserve({ id: 'upl_r', source: 'upload' });
    const other = { bucket: 'b', key: event().key, versionId: 'v0' };
    await ledger.begin({ id: 'upl_r', source: 'upload', object: other }, { leaseMs: 60_000 });
    const observed = observeObject(event(), jpeg);
    const { id, begun } = await beginSubmission(
      ledger,
      event(),
      { id: 'upl_r', source: 'upload' },
      observed,
      {},
      () => 60_000,
      log(),
    );
    expect(id).toBe(derivedIdOf(event(), '"e1"'));
    expect(begun).toMatchObject({ action: 'proceed', record: { id, source: 's3' } });
  });

  it('answers busy while another container holds the lease, duplicate once settled', async () => {
    const ledger = createMemoryLedger();
    const claim = { id: 's3_x', source: 's3' as const };
    const observed = observeObject(event(), jpeg);
    const begin = () => beginSubmission(ledger, event(), claim, observed, {}, () => 60_000, log());
    expect((await begin()).begun.action).toBe('proceed');
    expect((await begin()).begun.action).toBe('busy');
    await ledger.markRetrying('s3_x', { code: 'X', message: 'x' });
    expect((await begin()).begun).toMatchObject({ action: 'proceed', record: { attempts: 2 } });
    await ledger.markSubmitted('s3_x', { dataId: 'd', requestId: 'r', kind: 'image' });
    expect((await begin()).begun.action).toBe('duplicate');
  });
});

describe('sendPaced', () => {
  const pacer = (slots: boolean[]): Pacer & { throttles: number } => {
    const p = {
      throttles: 0,
      rate: 2,
      acquire: async () => slots.shift() ?? false,
      waitMs: () => 0,
      onSuccess: () => undefined,
      onThrottle: () => {
        p.throttles++;
      },
    };
    return p;
  };
  const input: SubmitInput = { kind: 'image', taskId: 't', name: 'n', source: { type: 'url', url: 'https://x' } };

  it('hands the record back without calling IVA when no send slot comes in time', async () => {
    const iva = fakeIva(accepted);
    expect(await sendPaced(iva, pacer([false]), input, plenty, 1_000, log())).toBeUndefined();
    expect(iva.calls).toHaveLength(0);
  });

  it('counts a throttle the client gives up on against the pace, and throws it', async () => {
    const p = pacer([true]);
    const limited = new IvaError({ code: 'FlowLimitExceeded', message: 'slow', httpStatus: 429 });
    await expect(sendPaced(fakeIva(limited), p, input, plenty, 1_000, log())).rejects.toBe(limited);
    expect(p.throttles).toBe(1);
  });

  it('sends unpaced when no pacer is given', async () => {
    expect(await sendPaced(fakeIva(accepted), undefined, input, plenty, 1_000, log())).toEqual(accepted);
  });
});

describe('processRecord with the in-memory ledger', () => {
  it('submits an upload by its presigned URL and records IVA ids', async () => {
    const iva = fakeIva(accepted);
    const { ledger, processRecord } = intake({ iva });
    expect(await processRecord(event(), plenty, plenty, log())).toBe('submitted');
    expect(iva.calls).toEqual([
      {
        kind: 'image',
        taskId: 'task-1',
        name: 'cat.jpg',
        desc: undefined,
        algoParamConf: undefined,
        source: { type: 'url', url: 'https://s3.example/incoming/task-1/cat.jpg?versionId=v1&X-Amz-Signature=secret' },
      },
    ]);
    const [record] = ledger.records.values();
    expect(record).toMatchObject({ status: 'submitted', dataId: 'img-1', requestId: 'req-1', taskId: 'task-1' });
    expect(record?.leaseUntil).toBeUndefined();
    // A redelivery is a duplicate: IVA is not called again.
    expect(await processRecord(event(), plenty, plenty, log())).toBe('duplicate');
    expect(iva.calls).toHaveLength(1);
  });

  it('records an upload that lost the race for its reserved id under its derived id, leaving the winner alone', async () => {
    const iva = fakeIva(accepted);
    const { processRecord, ledger } = intake({ iva }, { ...jpeg, Metadata: { 'iva-submission-id': 'upl_raced' } });
    await ledger.reserve({ id: 'upl_raced', source: 'upload', taskId: 'task-1' });
    // Another upload through the same URL begins right after this one read the reservation.
    const get = ledger.get.bind(ledger);
    ledger.get = async (id) => {
      const seen = await get(id);
      const other = { bucket: 'b', key: event().key, versionId: 'v0' };
      await ledger.begin({ id: 'upl_raced', source: 'upload', object: other }, { leaseMs: 60_000 });
      return seen;
    };
    expect(await processRecord(event(), plenty, plenty, log())).toBe('submitted');
    const derivedId = derivedIdOf(event(), '"e1"');
    expect(ledger.records.get(derivedId)).toMatchObject({ status: 'submitted', source: 's3', dataId: 'img-1' });
    const winner = ledger.records.get('upl_raced');
    expect(winner).toMatchObject({ status: 'pending', object: { versionId: 'v0' } });
    expect(winner?.dataId).toBeUndefined();
    expect(winner?.leaseUntil).toBeDefined();
  });

  it('ignores keys outside incoming/ without reading the object', async () => {
    const { processRecord, ledger } = intake({ iva: fakeIva(accepted) }, null);
    expect(await processRecord(event({ key: 'results/x.json' }), plenty, plenty, log())).toBe('ignored');
    expect(ledger.records.size).toBe(0);
  });

  it('records a deleted object failed ObjectNotFound, without calling IVA', async () => {
    const iva = fakeIva(accepted);
    const { processRecord, ledger } = intake({ iva }, null);
    expect(await processRecord(event(), plenty, plenty, log())).toBe('failed');
    expect([...ledger.records.values()][0]).toMatchObject({ status: 'failed', error: { code: 'ObjectNotFound' } });
    expect(iva.calls).toHaveLength(0);
  });

  it('keeps an upload pending when IVA refuses our keys, and re-reads the secret', async () => {
    let refreshed = 0;
    const refused = new IvaError({ code: 'InvalidAccessKey', message: 'no', httpStatus: 401 });
    const { processRecord, ledger } = intake({
      iva: fakeIva(refused),
      refreshCredentials: async () => {
        refreshed++;
      },
    });
    expect(await processRecord(event(), plenty, plenty, log())).toBe('retry');
    expect(refreshed).toBe(1);
    const record = [...ledger.records.values()][0];
    expect(record).toMatchObject({ status: 'pending', error: { code: 'InvalidAccessKey' } });
    expect(record?.leaseUntil).toBeUndefined();
  });

  it('records an ambiguous failure uncertain, and a redelivery sends nothing', async () => {
    const lost = new IvaAmbiguousError('TimeoutAfterSend', 'late', { sentAt: 1, failedAt: 2 });
    const iva = fakeIva(lost, accepted);
    const { processRecord, ledger } = intake({ iva });
    expect(await processRecord(event(), plenty, plenty, log())).toBe('uncertain');
    expect(await processRecord(event(), plenty, plenty, log())).toBe('duplicate');
    expect(iva.calls).toHaveLength(1);
    expect([...ledger.records.values()][0]).toMatchObject({
      status: 'uncertain',
      uncertain: { code: 'TimeoutAfterSend' },
    });
  });

  it('announces an uncertain upload once on the event bus, and an announcement failure loses nothing', async () => {
    const lost = () => new IvaAmbiguousError('ConnectionLostAfterSend', 'reset', { sentAt: 1_000, failedAt: 2_000 });
    const published: unknown[] = [];
    const announced = intake({
      iva: fakeIva(lost()),
      events: { publishSubmissionUncertain: async (detail) => void published.push(detail) },
    });
    expect(await announced.processRecord(event(), plenty, plenty, log())).toBe('uncertain');
    const id = [...announced.ledger.records.keys()][0];
    expect(published).toEqual([
      expect.objectContaining({
        submissionId: id,
        source: 's3',
        taskId: 'task-1',
        kind: 'image',
        name: 'cat.jpg',
        code: 'ConnectionLostAfterSend',
        sentAt: new Date(1_000).toISOString(),
        failedAt: new Date(2_000).toISOString(),
      }),
    ]);
    const broken = intake({
      iva: fakeIva(lost()),
      events: {
        publishSubmissionUncertain: async () => {
          throw new Error('bus down');
        },
      },
    });
    expect(await broken.processRecord(event(), plenty, plenty, log())).toBe('uncertain');
    expect([...broken.ledger.records.values()][0]?.status).toBe('uncertain');
  });

  it('fails what IVA refuses for good, retries what it may take later', async () => {
    const refused = intake({
      iva: fakeIva(new IvaError({ code: 'InvalidParameter', message: 'no', httpStatus: 400 })),
    });
    expect(await refused.processRecord(event(), plenty, plenty, log())).toBe('failed');
    expect([...refused.ledger.records.values()][0]).toMatchObject({
      status: 'failed',
      taskId: 'task-1',
      kind: 'image',
    });
    const busy = intake({ iva: fakeIva(new IvaError({ code: 'InternalError', message: 'x', httpStatus: 500 })) });
    expect(await busy.processRecord(event(), plenty, plenty, log())).toBe('retry');
    expect([...busy.ledger.records.values()][0]).toMatchObject({ status: 'pending', error: { code: 'InternalError' } });
  });

  it('frees the lease when S3 or the ledger fails before IVA is called, so a redelivery proceeds at once', async () => {
    const broken: Presigner = { presignGet: async () => Promise.reject(new Error('STS down')) };
    const iva = fakeIva(accepted);
    const { processRecord, ledger } = intake({ iva, presigner: broken });
    await expect(processRecord(event(), plenty, plenty, log())).rejects.toThrow('STS down');
    const record = [...ledger.records.values()][0];
    expect(record).toMatchObject({ status: 'pending', error: { code: 'InternalError', message: 'STS down' } });
    expect(record?.leaseUntil).toBeUndefined();
  });

  it('keeps the lease when the ledger fails after IVA was called (IVA may have it)', async () => {
    const { processRecord, ledger } = intake({ iva: fakeIva(accepted) });
    ledger.markSubmitted = async () => Promise.reject(new Error('DynamoDB down'));
    await expect(processRecord(event(), plenty, plenty, log())).rejects.toThrow('DynamoDB down');
    const record = [...ledger.records.values()][0];
    expect(record?.leaseUntil).toBeDefined();
    expect(record?.error).toBeUndefined();
  });
});

describe('processBatch: why a message is handed back', () => {
  const body = (...keys: string[]) =>
    JSON.stringify({
      Records: keys.map((key, i) => ({
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        eventTime: '2026-01-01T00:00:00.000Z',
        s3: { bucket: { name: 'b' }, object: { key, eTag: 'e1', versionId: `v${i}`, size: 1234, sequencer: `0${i}` } },
      })),
    });
  const throttled = () => new IvaError({ code: 'FlowLimitExceeded', message: 'slow down', httpStatus: 429 });
  const broken = () => new IvaError({ code: 'InternalError', message: 'x', httpStatus: 500 });

  it('calls a message deferred only when every record it hands back was throttled or out of time', async () => {
    const cases: [Array<SubmitResult | Error>, string[], unknown][] = [
      [[throttled()], ['incoming/t/a.jpg'], { retry: true, cause: 'deferred' }],
      [[broken()], ['incoming/t/a.jpg'], { retry: true, cause: 'fault' }],
      [[throttled(), broken()], ['incoming/t/a.jpg', 'incoming/t/b.jpg'], { retry: true, cause: 'fault' }],
      [[accepted], ['incoming/t/a.jpg'], { retry: false }],
    ];
    for (const [answers, keys, expected] of cases) {
      const { processBatch } = intake({ iva: fakeIva(...answers) });
      const [outcome] = await processBatch([{ messageId: 'm', body: body(...keys) }], plenty);
      expect(outcome, JSON.stringify(answers.map((a) => (a instanceof Error ? a.message : 'ok')))).toMatchObject(
        expected as object,
      );
      if (!(expected as { retry: boolean }).retry) expect(outcome?.cause).toBeUndefined();
    }
    // No time left for IVA: deferred, IVA not called.
    const iva = fakeIva(accepted);
    const [late] = await intake({ iva }).processBatch(
      [{ messageId: 'm', body: body('incoming/t/a.jpg') }],
      () => 5_500,
    );
    expect(late).toMatchObject({ retry: true, cause: 'deferred' });
    expect(iva.calls).toHaveLength(0);
  });

  it('calls a malformed message a fault, so the DLQ remains its end', async () => {
    const [outcome] = await intake({ iva: fakeIva(accepted) }).processBatch([{ messageId: 'm', body: '{' }], plenty);
    expect(outcome).toMatchObject({ retry: true, cause: 'fault' });
  });
});
