/**
 * One schedule of IVA send slots for every object-created container at once, kept in the
 * ledger table, for when the account's flow limit is known (`-c ivaRateLimit=R`).
 *
 * Why shared: a limit split evenly among the containers that *may* run (R ÷ the event
 * source's MaximumConcurrency) wastes the shares of those that are idle, so the tail of
 * a backlog drains at a fraction of R (measured: 1.45 × N/R for 60 uploads at 3/s).
 * A per-container learnt rate cannot see the others and spends 429s finding the limit.
 * One schedule for all keeps the account at R whether one container runs or ten.
 *
 * How: a single item holds `nextSlotAt` (ms), the earliest free slot. A caller reads it;
 * if that slot is further away than it may wait, it declines without booking (so a long
 * backlog cannot push the schedule out); otherwise it books a slot with one atomic
 * update — `SET nextSlotAt = now + interval` when the schedule is idle (conditional on
 * `nextSlotAt <= now`), else `ADD nextSlotAt interval`, which returns the booked slot and
 * never conflicts — and sleeps until its slot. Cost: one GetItem and one or two
 * UpdateItems per IVA call, a few ms in-region. Slots are spaced 1/R apart with no burst,
 * so IVA's token bucket never runs dry; a throttle (the limit is shared with direct
 * submissions and other callers of the account) pushes the schedule back one interval
 * for everyone. If DynamoDB fails, the call is paced by this container alone (its share
 * of R), never unpaced.
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isAwsError } from '../aws/errors';
import { createPacer, type Pacer } from './pacer';

export interface SharedPacerOptions {
  doc: DynamoDBDocumentClient;
  tableName: string;
  /** The account's calls per second. */
  rate: number;
  /** Used when DynamoDB cannot be reached: this container's own share of `rate` (default rate ÷ 4). */
  fallbackRate?: number;
  /** Which schedule (default `iva`): one per rate-limited account. */
  name?: string;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function createSharedPacer(options: SharedPacerOptions): Pacer {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = 1000 / options.rate;
  const Key = { pk: `RATE#${options.name ?? 'iva'}`, sk: 'RATE' };
  const TableName = options.tableName;
  const local = createPacer({
    maxRate: options.fallbackRate ?? options.rate / 4,
    now,
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  let lastSeenNext = 0;

  async function book(at: number): Promise<number> {
    try {
      await options.doc.send(
        new UpdateCommand({
          TableName,
          Key,
          UpdateExpression: 'SET nextSlotAt = :next',
          ConditionExpression: 'attribute_not_exists(nextSlotAt) OR nextSlotAt <= :now',
          ExpressionAttributeValues: { ':next': at + interval, ':now': at },
        }),
      );
      return at;
    } catch (error) {
      if (!isAwsError(error, 'ConditionalCheckFailedException')) throw error;
    }
    const out = await options.doc.send(
      new UpdateCommand({
        TableName,
        Key,
        UpdateExpression: 'ADD nextSlotAt :interval',
        ExpressionAttributeValues: { ':interval': interval },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(out.Attributes?.nextSlotAt) - interval;
  }

  return {
    get rate() {
      return options.rate;
    },
    waitMs() {
      return Math.max(0, lastSeenNext - now());
    },
    async acquire(maxWaitMs) {
      let slot: number;
      try {
        const seen = await options.doc.send(new GetCommand({ TableName, Key }));
        const next = Number(seen.Item?.nextSlotAt ?? 0);
        lastSeenNext = next;
        if (next - now() > maxWaitMs) return false;
        slot = await book(now());
        lastSeenNext = slot + interval;
      } catch {
        return local.acquire(maxWaitMs);
      }
      const wait = slot - now();
      if (wait > 0) await sleep(wait);
      return true;
    },
    onSuccess() {
      local.onSuccess();
    },
    onThrottle() {
      local.onThrottle();
      // IVA is over its limit (other callers share it): everyone's next slot moves back one interval.
      void options.doc
        .send(
          new UpdateCommand({
            TableName,
            Key,
            UpdateExpression: 'ADD nextSlotAt :interval',
            ExpressionAttributeValues: { ':interval': interval },
          }),
        )
        .catch(() => undefined);
    },
  };
}
