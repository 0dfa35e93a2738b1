/**
 * npm start's webhook against a real receiver: the local EventBridge gets PutEvents from
 * the real SDK client, and the events the stack's rule matches are POSTed as themselves
 * with the header secret; 5xx and unreachable are retried, another 4xx is not.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WEBHOOK_SECRET_HEADER } from '../../../lib/webhook/index';
import { startEventBridge, type LocalEventBridge } from '../../../local/stack/eventbridge';
import { deliverWebhooks } from '../../../local/stack/webhook';
import { until } from '../../support/e2e';

interface Received {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function receiver(answer: (n: number) => number): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(answer(received.length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

async function bus(): Promise<{ bridge: LocalEventBridge; put: (type: string, detail: object) => Promise<void> }> {
  const bridge = await startEventBridge();
  const client = new EventBridgeClient({
    endpoint: bridge.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  closers.push(
    () => bridge.close(),
    () => client.destroy(),
  );
  return {
    bridge,
    put: async (type, detail) => {
      await client.send(
        new PutEventsCommand({
          Entries: [
            { Source: 'iva-bridge', DetailType: type, Detail: JSON.stringify(detail), EventBusName: 'default' },
          ],
        }),
      );
    },
  };
}

describe('local webhook delivery', () => {
  it('POSTs each matching event as itself with the header secret, and nothing else', async () => {
    const hook = await receiver(() => 200);
    const { bridge, put } = await bus();
    const { deliveries, stop } = deliverWebhooks(bridge, { url: hook.url, secret: 's3cr3t' });
    closers.push(stop);
    await put('IVA Result Stored', { taskId: 't', dataId: 'img-1', status: 'completed' });
    await put('Something Else', { x: 1 });
    await put('Upload Expired', { submissionId: 'up_1' });
    await until('two deliveries', async () => (deliveries.length === 2 ? true : undefined), { timeoutMs: 10_000 });
    expect(hook.received.map((r) => r.body['detail-type'])).toEqual(['IVA Result Stored', 'Upload Expired']);
    const [first] = hook.received;
    expect(first?.headers[WEBHOOK_SECRET_HEADER.toLowerCase()]).toBe('s3cr3t');
    expect(first?.headers['content-type']).toBe('application/json');
    expect(first?.body).toEqual({
      version: '0',
      id: expect.any(String),
      'detail-type': 'IVA Result Stored',
      source: 'iva-bridge',
      account: '000000000000',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      region: 'us-east-1',
      resources: [],
      detail: { taskId: 't', dataId: 'img-1', status: 'completed' },
    });
    expect(deliveries.every((d) => d.ok && d.attempts === 1)).toBe(true);
  });

  it('retries a 5xx with backoff until it is taken, and gives up at once on another 4xx', async () => {
    const hook = await receiver((n) => (n <= 2 ? 503 : n === 3 ? 200 : 400));
    const { bridge, put } = await bus();
    const lines: string[] = [];
    const { deliveries, stop } = deliverWebhooks(bridge, {
      url: hook.url,
      secret: 's',
      baseDelayMs: 20,
      log: (l) => lines.push(l),
    });
    closers.push(stop);
    await put('IVA Result Overdue', { submissionId: 'a' });
    await until('the first delivery', async () => (deliveries.length === 1 ? true : undefined), { timeoutMs: 10_000 });
    expect(deliveries[0]).toMatchObject({ ok: true, attempts: 3, status: 200 });
    await put('IVA Submission Uncertain', { submissionId: 'b' });
    await until('the second', async () => (deliveries.length === 2 ? true : undefined), { timeoutMs: 10_000 });
    expect(deliveries[1]).toMatchObject({ ok: false, attempts: 1, status: 400 });
    expect(lines.join('\n')).toMatch(/gave up on "IVA Submission Uncertain"/);
    // The same event id on every attempt: receivers deduplicate on it.
    expect(new Set(hook.received.slice(0, 3).map((r) => r.body.id)).size).toBe(1);
  });
});
