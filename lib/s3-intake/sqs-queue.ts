/**
 * The intake queue's own SQS calls (lib/s3-intake/redelivery.ts): set a handed-back
 * message's delay, and send a deferred one again. Built on first use: most invocations
 * hand nothing back and never load the client.
 */
import { ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { QueuePort } from './redelivery';
import { sdkRequestHandler } from '../aws/sdk-http';

export function createSqsQueue(queueUrl: string, client?: SQSClient): QueuePort {
  let sqs = client;
  const get = (): SQSClient => {
    sqs ??= new SQSClient({ requestHandler: sdkRequestHandler() });
    return sqs;
  };
  return {
    async changeVisibility(receiptHandle, seconds) {
      await get().send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
    },
    async send(body, delaySeconds) {
      await get().send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, DelaySeconds: delaySeconds }));
    },
  };
}
