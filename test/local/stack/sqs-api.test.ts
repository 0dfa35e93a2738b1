/**
 * The intake queue's SQS calls, as object-created and resubmit make them (the AWS SDK's
 * SQS client through lib/s3-intake/sqs-queue.ts), against the local stack's SQS endpoint
 * and its queue: a consumer-set visibility decides when a handed-back message returns,
 * and a message sent with a delay stays invisible until then.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqsQueue } from '../../../lib/s3-intake/sqs-queue';
import type { QueuePort } from '../../../lib/s3-intake/redelivery';
import { startLocalAwsEndpoints } from '../../../local/stack/aws-endpoints';
import { LocalQueue, type BatchOutcome, type SqsBatchEvent } from '../../../local/stack/sqs';

const open: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** A queue whose consumer is `consume(event, port)`, and the SDK-backed port to its SQS endpoint. */
async function setup(consume: (event: SqsBatchEvent, port: QueuePort) => Promise<BatchOutcome>) {
  let port: QueuePort | undefined;
  const queue = new LocalQueue({
    name: 'intake',
    visibilityTimeoutMs: 60_000,
    batchingWindowMs: 5,
    maxReceiveCount: 5,
    consume: (event) => consume(event, port as QueuePort),
  });
  open.push(() => queue.stop());
  const aws = await startLocalAwsEndpoints({
    sessionCredentials: { accessKeyId: 'k', secretAccessKey: 's' },
    secrets: {},
    queues: { [queue.name]: queue },
  });
  open.push(() => aws.close());
  const client = new SQSClient({
    endpoint: aws.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'k', secretAccessKey: 's' },
  });
  open.push(() => client.destroy());
  const url = `http://127.0.0.1/000000000000/${queue.name}`;
  port = createSqsQueue(url, client);
  return { queue, port, client, url };
}

const until = async (check: () => boolean, ms: number): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('local SQS endpoint', () => {
  it('redelivers a handed-back message when its consumer said, not after the queue visibility timeout (60 s)', async () => {
    const receives: { at: number; count: string | undefined }[] = [];
    const { queue } = await setup(async (event, port) => {
      const record = event.Records[0];
      if (!record) return { kind: 'partial', failedIds: [] };
      receives.push({ at: Date.now(), count: record.attributes.ApproximateReceiveCount });
      if (receives.length === 1) {
        await port.changeVisibility(record.receiptHandle, 1);
        return { kind: 'partial', failedIds: [record.messageId] };
      }
      return { kind: 'partial', failedIds: [] };
    });
    queue.send('{"Records":[]}');
    await until(() => receives.length === 2, 5_000);
    const gap = (receives[1]?.at ?? 0) - (receives[0]?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(10_000);
    expect(receives.map((r) => r.count)).toEqual(['1', '2']);
    await until(() => queue.depth === 0, 2_000);
  });

  it('sends a message with a delay (a requeue), a fresh receive count, and the body digest the SDK checks', async () => {
    const bodies: { at: number; body: string; count: string | undefined }[] = [];
    const { port } = await setup(async (event) => {
      for (const r of event.Records)
        bodies.push({ at: Date.now(), body: r.body, count: r.attributes.ApproximateReceiveCount });
      return { kind: 'partial', failedIds: [] };
    });
    const sentAt = Date.now();
    await port.send('{"Records":["ü"]}', 1);
    await until(() => bodies.length === 1, 5_000);
    expect(bodies[0]?.body).toBe('{"Records":["ü"]}');
    expect(bodies[0]?.count).toBe('1');
    expect((bodies[0]?.at ?? 0) - sentAt).toBeGreaterThanOrEqual(950);
  });

  it("answers SQS's errors for a stale receipt handle, an unknown queue and an out-of-range delay", async () => {
    const { port, client, url } = await setup(async () => ({ kind: 'partial', failedIds: [] }));
    await expect(port.changeVisibility('no-such-handle', 5)).rejects.toMatchObject({ name: 'ReceiptHandleIsInvalid' });
    await expect(createSqsQueue('http://127.0.0.1/000000000000/other', client).send('x', 0)).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
    });
    await expect(
      client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', DelaySeconds: 901 })),
    ).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });
  });
});
