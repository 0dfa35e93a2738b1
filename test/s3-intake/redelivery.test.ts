import { describe, expect, it } from 'vitest';
import { planRedelivery, redeliver, SQS_MAX_DELAY_SECONDS } from '../../lib/s3-intake/redelivery';

const low = () => 0;
const high = () => 0.999_999;

describe('planRedelivery', () => {
  it('doubles the delay with every receive, with jitter between half and all of it', () => {
    const floors = [1, 2, 3, 4, 5, 6].map(
      (n) => (planRedelivery(n, 'fault', { random: low }) as { visibilitySeconds: number }).visibilitySeconds,
    );
    const ceilings = [1, 2, 3, 4, 5, 6].map(
      (n) => (planRedelivery(n, 'fault', { random: high }) as { visibilitySeconds: number }).visibilitySeconds,
    );
    expect(floors).toEqual([1, 2, 4, 8, 16, 32]);
    expect(ceilings).toEqual([2, 4, 8, 16, 32, 64]);
  });

  it('never asks SQS for more than 15 minutes, however many receives', () => {
    for (const n of [10, 11, 50, 1e6, Number.MAX_SAFE_INTEGER]) {
      const plan = planRedelivery(n, 'deferred', { random: high, maxSeconds: 100_000 });
      expect(plan).toEqual({ action: 'return', visibilitySeconds: SQS_MAX_DELAY_SECONDS });
    }
  });

  it('treats a missing or odd receive count as the first receive', () => {
    for (const n of [0, -3, Number.NaN, Number.POSITIVE_INFINITY])
      expect(planRedelivery(n, 'fault', { random: high })).toEqual({ action: 'return', visibilitySeconds: 2 });
  });

  it('requeues a deferred message on its last allowed receive, so throttling alone never reaches the DLQ', () => {
    expect(planRedelivery(4, 'deferred', { maxReceiveCount: 5, random: low }).action).toBe('return');
    expect(planRedelivery(5, 'deferred', { maxReceiveCount: 5, random: low })).toEqual({
      action: 'requeue',
      delaySeconds: 16,
    });
    expect(planRedelivery(9, 'deferred', { maxReceiveCount: 5, random: low }).action).toBe('requeue');
  });

  it('lets any other failure reach the DLQ after maxReceiveCount, and never requeues without knowing it', () => {
    expect(planRedelivery(5, 'fault', { maxReceiveCount: 5 }).action).toBe('return');
    expect(planRedelivery(50, 'deferred').action).toBe('return');
  });
});

describe('redeliver', () => {
  const message = (id: string, receiveCount: number) => ({
    messageId: id,
    body: `body-${id}`,
    receiptHandle: `rh-${id}`,
    receiveCount,
  });
  function recordingQueue(fail: { send?: boolean; change?: boolean } = {}) {
    const calls: string[] = [];
    return {
      calls,
      queue: {
        async changeVisibility(receiptHandle: string, seconds: number) {
          if (fail.change) throw new Error('AccessDenied');
          calls.push(`visibility ${receiptHandle} ${seconds}`);
        },
        async send(body: string, delaySeconds: number) {
          if (fail.send) throw new Error('AccessDenied');
          calls.push(`send ${body} ${delaySeconds}`);
        },
      },
    };
  }
  const options = { maxReceiveCount: 5, random: () => 0 };

  it('delays each handed-back message by its receive count and reports it failed', async () => {
    const { calls, queue } = recordingQueue();
    const failed = await redeliver(
      [
        { messageId: 'a', retry: true, cause: 'fault' },
        { messageId: 'b', retry: false },
        { messageId: 'c', retry: true, cause: 'deferred' },
      ],
      [message('a', 1), message('b', 1), message('c', 4)],
      queue,
      options,
    );
    expect(failed.sort()).toEqual(['a', 'c']);
    expect(calls.sort()).toEqual(['visibility rh-a 1', 'visibility rh-c 8']);
  });

  it('requeues a deferred message on its last receive and reports it done; a fault there is left to the DLQ', async () => {
    const { calls, queue } = recordingQueue();
    const failed = await redeliver(
      [
        { messageId: 'd', retry: true, cause: 'deferred' },
        { messageId: 'f', retry: true, cause: 'fault' },
      ],
      [message('d', 5), message('f', 5)],
      queue,
      options,
    );
    expect(failed).toEqual(['f']);
    expect(calls.sort()).toEqual(['send body-d 16', 'visibility rh-f 16']);
  });

  it('reports a message failed when its requeue or delay cannot be set, so nothing is lost', async () => {
    for (const fail of [{ send: true }, { change: true }]) {
      const { queue } = recordingQueue(fail);
      const warnings: string[] = [];
      const failed = await redeliver(
        [
          { messageId: 'd', retry: true, cause: 'deferred' },
          { messageId: 'x', retry: true, cause: 'fault' },
        ],
        [message('d', 5), message('x', 2)],
        queue,
        { ...options, log: { warn: (line: string) => warnings.push(line) } },
      );
      expect(failed.sort()).toEqual(fail.send ? ['d', 'x'] : ['x']);
      expect(warnings.length).toBeGreaterThan(0);
    }
  });

  it('without a queue, reports every handed-back message failed (the visibility timeout applies)', async () => {
    expect(
      await redeliver([{ messageId: 'a', retry: true, cause: 'deferred' }], [message('a', 9)], undefined, options),
    ).toEqual(['a']);
  });
});
