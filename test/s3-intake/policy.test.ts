/** The intake's decisions without I/O: may an upload be sent, and what an IVA failure makes of it. */
import { describe, expect, it } from 'vitest';
import { IvaAbortedError, IvaAmbiguousError, IvaError } from '../../lib/iva/errors';
import { IntakeRuleError } from '../../lib/s3-intake/errors';
import { ivaFailurePolicy, preflight } from '../../lib/s3-intake/policy';
import type { Decision } from '../../lib/s3-intake/rules';

const plan = { taskId: 't1', kind: 'image', name: 'cat.jpg' } as const;
const ok: Decision = { ok: true, plan };
const budget = (ms: number) => () => ms;

describe('preflight', () => {
  it('fails an upload whose object is gone as ObjectNotFound, with no fields, and reads no clock', () => {
    const clock = () => {
      throw new Error('the budget is read only when the upload may be sent');
    };
    const gate = preflight(undefined, false, {}, clock, 1_000);
    expect(gate).toMatchObject({ action: 'fail', failure: { code: 'ObjectNotFound' } });
    expect(gate).not.toHaveProperty('fields');
    expect(gate.action === 'fail' && gate.failure.message).toContain('s3:ListBucket');
  });

  it('fails an overwritten upload as ObjectOverwritten, keeping the fields known from its key', () => {
    const gate = preflight(ok, true, { taskId: 't1' }, budget(30_000), 1_000);
    expect(gate).toEqual({
      action: 'fail',
      failure: { code: 'ObjectOverwritten', message: expect.stringContaining('overwritten') },
      fields: { taskId: 't1' },
    });
  });

  it("fails a rule error with the rule's code and message and the partial fields", () => {
    const error = new IntakeRuleError('ImageTooLarge', 'too big');
    const gate = preflight(
      { ok: false, error, partial: { taskId: 't1', kind: 'image' } },
      false,
      {},
      budget(30_000),
      1_000,
    );
    expect(gate).toEqual({
      action: 'fail',
      failure: { code: 'ImageTooLarge', message: 'too big' },
      fields: { taskId: 't1', kind: 'image' },
    });
  });

  it('leaves an upload to redelivery (NoTimeLeft) below the minimum budget, and sends it at the minimum', () => {
    expect(preflight(ok, false, plan, budget(999), 1_000)).toEqual({
      action: 'defer',
      failure: { code: 'NoTimeLeft', message: 'Only 999 ms of this invocation were left for IVA; SQS redelivers it' },
      budgetMs: 999,
    });
    expect(preflight(ok, false, plan, budget(1_000), 1_000)).toEqual({ action: 'send', plan });
  });
});

describe('ivaFailurePolicy', () => {
  it('keeps an upload pending for redelivery when IVA refuses our keys or they cannot be read, never failed', () => {
    for (const code of ['SignatureDoesNotMatch', 'InvalidAccessKey', 'AccessDenied', 'CredentialsUnavailable']) {
      const verdict = ivaFailurePolicy(new IvaError({ code, message: 'no', httpStatus: 403, requestId: 'r1' }));
      expect(verdict, code).toEqual({
        action: 'retry-credentials',
        failure: { code, message: 'no', requestId: 'r1' },
      });
    }
  });

  it('records an ambiguous failure uncertain, with its cause and times, never retried', () => {
    const error = new IvaAmbiguousError('ConnectionLostAfterSend', 'socket closed', {
      sentAt: Date.parse('2026-01-02T03:04:05.000Z'),
      failedAt: Date.parse('2026-01-02T03:04:06.500Z'),
    });
    expect(ivaFailurePolicy(error)).toEqual({
      action: 'uncertain',
      info: {
        code: 'ConnectionLostAfterSend',
        message: 'socket closed',
        sentAt: '2026-01-02T03:04:05.000Z',
        failedAt: '2026-01-02T03:04:06.500Z',
      },
    });
  });

  it('defers a throttle, retries what IVA says is retryable, fails what it refuses for good', () => {
    const throttled = new IvaError({ code: 'FlowLimitExceeded', message: 'slow down', httpStatus: 200 });
    expect(ivaFailurePolicy(throttled)).toMatchObject({ action: 'defer', failure: { code: 'FlowLimitExceeded' } });
    const tooMany = new IvaError({ code: 'SomethingNew', message: 'slow down', httpStatus: 429 });
    expect(ivaFailurePolicy(tooMany)).toMatchObject({ action: 'defer' });
    const down = new IvaError({ code: 'SomethingNew', message: 'oops', httpStatus: 503 });
    expect(ivaFailurePolicy(down)).toMatchObject({ action: 'retry', failure: { code: 'SomethingNew' } });
    const refused = new IvaError({ code: 'InvalidParameter', message: 'bad Url', httpStatus: 400, requestId: 'r2' });
    expect(ivaFailurePolicy(refused)).toEqual({
      action: 'fail',
      failure: { code: 'InvalidParameter', message: 'bad Url', requestId: 'r2' },
    });
    expect(ivaFailurePolicy(new IvaAbortedError())).toMatchObject({ action: 'fail', failure: { code: 'Aborted' } });
  });

  it('never records the signature of a presigned URL IVA quotes', () => {
    const url = 'https://b.s3.amazonaws.com/k?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIA';
    const verdict = ivaFailurePolicy(new IvaError({ code: 'InvalidParameter', message: `cannot fetch ${url}` }));
    const recorded = verdict.action === 'fail' ? verdict.failure.message : '';
    expect(recorded).toContain('cannot fetch https://b.s3.amazonaws.com/k');
    expect(recorded).not.toContain('deadbeefcafe');
  });
});
