/**
 * POST /v1/submissions/{id}/resubmit, server-free: the in-memory ledger and a recording
 * queue. The end-to-end path (queue → object-created → IVA) is in test/e2e/local-stack.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createApi, type ApiDeps, type ApiRequest } from '../../lib/api/index';
import { RESUBMIT_DELAY_SECONDS } from '../../lib/api/resubmit';
import type { IvaClient } from '../../lib/iva/types';
import { createMemoryLedger, type MemoryLedger } from '../../lib/ledger/memory';
import { parseMessageBody } from '../../lib/s3-intake/events';
import type { S3Client } from '@aws-sdk/client-s3';

const OBJECT = {
  bucket: 'b',
  key: 'incoming/t 1/ü+%/cat (1).jpg',
  versionId: 'v1',
  eTag: 'e1',
  sequencer: '00AB',
  size: 1234,
};

async function setup(options: { queue?: boolean; failSend?: boolean } = {}) {
  const ledger = createMemoryLedger();
  const sent: { body: string; delaySeconds: number }[] = [];
  const deps: ApiDeps = {
    ledger,
    iva: {} as IvaClient,
    s3: {} as S3Client,
    bucket: 'b',
    config: { directMaxBytes: 1000, uploadUrlTtlSeconds: 60, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    ...(options.queue === false
      ? {}
      : {
          intakeQueue: {
            send: async (body: string, delaySeconds: number) => {
              if (options.failSend) throw new Error('AccessDenied');
              sent.push({ body, delaySeconds });
            },
          },
        }),
  };
  const api = createApi(deps);
  const uncertain = async (ledgerOf: MemoryLedger, id: string, object?: typeof OBJECT) => {
    await ledgerOf.begin({ id, source: object ? 's3' : 'api', taskId: 't', ...(object ? { object } : {}) });
    await ledgerOf.markUncertain(id, { code: 'TimeoutAfterSend', message: 'late', failedAt: '2026-01-01T00:00:00Z' });
  };
  const resubmit = async (id: string, body?: string) => {
    const req: ApiRequest = {
      method: 'POST',
      path: `/v1/submissions/${id}/resubmit`,
      resource: '/v1/submissions/{id}/resubmit',
      pathParameters: { id },
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      query: {},
      ...(body === undefined ? {} : { body: { text: body, base64: false } }),
      requestId: 'req-1',
      remainingMs: () => 20_000,
    };
    const res = await api.handle(req);
    const text = res.body;
    return {
      status: res.status,
      body: JSON.parse(text) as Record<string, unknown> & { ResponseMetadata?: { Error?: { Code?: string } } },
    };
  };
  return { ledger, sent, uncertain, resubmit };
}

describe('POST /v1/submissions/{id}/resubmit', () => {
  it('queues the object S3 event again and reopens the record pending, with the note', async () => {
    const { ledger, sent, uncertain, resubmit } = await setup();
    await uncertain(ledger, 's3_abc', OBJECT);
    const before = (await ledger.get('s3_abc'))?.attempts ?? 0;
    const res = await resubmit('s3_abc', JSON.stringify({ Note: 'IVA console shows nothing' }));
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ SubmissionId: 's3_abc', Status: 'pending' });
    const record = await ledger.get('s3_abc');
    expect(record).toMatchObject({
      status: 'pending',
      attempts: before + 1,
      resolution: { action: 'resubmitted', note: 'IVA console shows nothing' },
      uncertain: { code: 'TimeoutAfterSend' },
    });
    expect(record?.error).toBeUndefined();
    // Not leased: the intake's begin() takes it when the message arrives.
    expect(Date.parse(record?.leaseUntil ?? '0')).toBeLessThanOrEqual(Date.now());
    expect(sent).toHaveLength(1);
    expect(sent[0]?.delaySeconds).toBe(RESUBMIT_DELAY_SECONDS);
    const parsed = parseMessageBody(sent[0]?.body ?? '');
    expect(parsed).toMatchObject({
      type: 'records',
      records: [{ bucket: 'b', key: OBJECT.key, versionId: 'v1', eTag: 'e1', sequencer: '00AB', size: 1234 }],
    });
  });

  it('answers 409 for a submission that is not uncertain, and for one whose bytes came in the request', async () => {
    const { ledger, sent, uncertain, resubmit } = await setup();
    await ledger.begin({ id: 's3_done', source: 's3', object: OBJECT });
    await ledger.markSubmitted('s3_done', { dataId: 'img-1', requestId: 'r', kind: 'image' });
    expect((await resubmit('s3_done')).body.ResponseMetadata?.Error?.Code).toBe('SubmissionNotUncertain');
    await uncertain(ledger, 'api_x');
    const direct = await resubmit('api_x');
    expect(direct.status).toBe(409);
    expect(direct.body.ResponseMetadata?.Error?.Code).toBe('ResubmitNeedsFile');
    expect((await ledger.get('api_x'))?.status).toBe('uncertain');
    expect(sent).toEqual([]);
  });

  it('answers 404 for an unknown id and 400 for a body it does not understand', async () => {
    const { ledger, uncertain, resubmit } = await setup();
    expect((await resubmit('s3_nope')).status).toBe(404);
    await uncertain(ledger, 's3_abc', OBJECT);
    for (const body of ['[]', '{"Status":"failed"}', '{"Note":""}', '{', `{"Note":"${'x'.repeat(1001)}"}`]) {
      const res = await resubmit('s3_abc', body);
      expect(res.status, body).toBe(400);
    }
    expect((await ledger.get('s3_abc'))?.status).toBe('uncertain');
  });

  it('leaves the record uncertain when the message cannot be queued, and says so with a 5xx', async () => {
    for (const options of [{ failSend: true }, { queue: false }]) {
      const { ledger, uncertain, resubmit } = await setup(options);
      await uncertain(ledger, 's3_abc', OBJECT);
      const res = await resubmit('s3_abc');
      expect(res.status, JSON.stringify(options)).toBeGreaterThanOrEqual(500);
      expect((await ledger.get('s3_abc'))?.status).toBe('uncertain');
    }
  });

  it('lets exactly one of two concurrent resubmits through', async () => {
    const { ledger, uncertain, resubmit } = await setup();
    await uncertain(ledger, 's3_abc', OBJECT);
    const before = (await ledger.get('s3_abc'))?.attempts ?? 0;
    const answers = await Promise.all([resubmit('s3_abc'), resubmit('s3_abc')]);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    expect((await ledger.get('s3_abc'))?.attempts).toBe(before + 1);
  });
});
