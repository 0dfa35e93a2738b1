/**
 * The PutEvents publisher against a tiny local endpoint speaking EventBridge's JSON
 * protocol (POST /, X-Amz-Target: AWSEvents.PutEvents), so the real SDK call is made.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventPublishError } from '../../lib/callback/errors';
import {
  createEventBridgePublisher,
  createMemoryPublisher,
  createSubmissionEventPublisher,
  EVENT_SOURCE,
  RESULT_STORED_DETAIL_TYPE,
  SUBMISSION_UNCERTAIN_DETAIL_TYPE,
  type SubmissionUncertainDetail,
  type ResultStoredDetail,
} from '../../lib/callback/events';

interface Seen {
  target: string | undefined;
  body: { Entries: { Source: string; DetailType: string; Detail: string; EventBusName: string }[] };
}

let server: Server;
let endpoint: string;
const seen: Seen[] = [];
let reply: { status: number; body: unknown } = { status: 200, body: {} };

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        target: req.headers['x-amz-target'] as string | undefined,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      res.writeHead(reply.status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen.length = 0;
});

const client = () =>
  new EventBridgeClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
  });

const detail: ResultStoredDetail = {
  taskId: 't',
  dataId: 'img',
  kind: 'image',
  status: 'completed',
  rawStatus: 'Success',
  submissionId: 'sub-1',
  applied: true,
  location: { bucket: 'b', key: 'results/t/img/x.json', uri: 's3://b/results/t/img/x.json' },
  receivedAt: '2026-11-30T12:00:00.000Z',
};

describe('EventBridge publisher', () => {
  it('sends one entry with the documented source, detail type, bus and detail', async () => {
    reply = { status: 200, body: { FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] } };
    await createEventBridgePublisher({ client: client(), eventBusName: 'results-bus' }).publishResultStored(detail);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.target).toBe('AWSEvents.PutEvents');
    const entry = seen[0]?.body.Entries[0];
    expect(entry).toMatchObject({
      Source: EVENT_SOURCE,
      DetailType: RESULT_STORED_DETAIL_TYPE,
      EventBusName: 'results-bus',
    });
    expect(JSON.parse(entry?.Detail ?? '')).toEqual(detail);
  });

  it('uses the default bus when none is configured', async () => {
    reply = { status: 200, body: { FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] } };
    await createEventBridgePublisher({ client: client() }).publishResultStored(detail);
    expect(seen[0]?.body.Entries[0]?.EventBusName).toBe('default');
  });

  it('fails when PutEvents answers 200 but refuses the entry', async () => {
    reply = {
      status: 200,
      body: { FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }] },
    };
    const error = await createEventBridgePublisher({ client: client() })
      .publishResultStored(detail)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventPublishError);
    expect((error as EventPublishError).reason).toContain('InternalFailure');
  });

  it('fails with EventPublishError when the call itself fails', async () => {
    reply = { status: 400, body: { __type: 'ResourceNotFoundException', message: 'no bus' } };
    await expect(createEventBridgePublisher({ client: client() }).publishResultStored(detail)).rejects.toBeInstanceOf(
      EventPublishError,
    );
  });

  it('memory publisher keeps events in order', async () => {
    const memory = createMemoryPublisher();
    await memory.publishResultStored(detail);
    await memory.publishResultStored({ ...detail, status: 'failed' });
    expect(memory.events.map((e) => e.status)).toEqual(['completed', 'failed']);
  });
});

describe('submission events', () => {
  const uncertain: SubmissionUncertainDetail = {
    submissionId: 'api_1',
    source: 'api',
    taskId: 't',
    kind: 'image',
    name: 'cat.jpg',
    code: 'ConnectionLostAfterSend',
    message: 'ConnectionLostAfterSend: socket hang up',
    sentAt: '2026-11-30T12:00:00.000Z',
    failedAt: '2026-11-30T12:00:01.000Z',
  };

  it('IVA Submission Uncertain: one entry, source iva-bridge, on the configured bus, time = failedAt', async () => {
    reply = { status: 200, body: { FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] } };
    await createSubmissionEventPublisher({ client: client(), eventBusName: 'bus-u' }).publishSubmissionUncertain(
      uncertain,
    );
    const entry = seen[0]?.body.Entries[0] as Record<string, unknown> | undefined;
    expect(entry).toMatchObject({
      Source: EVENT_SOURCE,
      DetailType: SUBMISSION_UNCERTAIN_DETAIL_TYPE,
      EventBusName: 'bus-u',
    });
    expect(JSON.parse(String(entry?.['Detail']))).toEqual(uncertain);
    expect(entry?.['Time']).toBe(Date.parse(uncertain.failedAt) / 1000);
  });

  it('a refused entry is an error naming the reason', async () => {
    reply = { status: 200, body: { FailedEntryCount: 1, Entries: [{ ErrorCode: 'AccessDenied' }] } };
    await expect(
      createSubmissionEventPublisher({ client: client() }).publishSubmissionUncertain(uncertain),
    ).rejects.toThrow(/AccessDenied/);
  });
});
