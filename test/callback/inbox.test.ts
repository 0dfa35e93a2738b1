/**
 * The inbox step (lib/callback/inbox.ts) against s3rver and dynalite: API Gateway has put
 * the exact body under callbacks-inbox/<request id> (here: PutObject with the same
 * metadata the stack's integration maps), and processInboxObject files it, records it,
 * announces it once and only then deletes the inbox object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventPublishError, LedgerUnavailableError } from '../../lib/callback/errors';
import type { EventPublisher, ResultStoredDetail } from '../../lib/callback/events';
import { INBOX_METADATA, processInboxObject } from '../../lib/callback/inbox';
import type { Ledger } from '../../lib/ledger/types';
import { CALLBACK_INBOX_PREFIX } from '../../lib/storage/prefixes';
import { type Servers, startServers, type World, world } from './world';

let servers: Servers;
beforeAll(async () => {
  servers = await startServers();
});
afterAll(async () => {
  await servers?.close();
});

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
let n = 0;

/** What the gateway integration does: the raw body, its declared type, request id and time. */
async function toInbox(
  w: World,
  body: Buffer | string,
  options: { contentType?: string; at?: number; requestId?: string } = {},
): Promise<string> {
  const requestId = options.requestId ?? `req-${process.pid}-${++n}`;
  const key = `${CALLBACK_INBOX_PREFIX}${requestId}`;
  await servers.s3.send(
    new PutObjectCommand({
      Bucket: w.bucket,
      Key: key,
      Body: typeof body === 'string' ? Buffer.from(body) : body,
      ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
      Metadata: {
        [INBOX_METADATA.requestId]: requestId,
        [INBOX_METADATA.requestTimeEpoch]: String(options.at ?? Date.now()),
        ...(options.contentType === undefined ? {} : { [INBOX_METADATA.contentType]: options.contentType }),
      },
    }),
  );
  return key;
}

async function exists(w: World, key: string): Promise<boolean> {
  try {
    await servers.s3.send(new HeadObjectCommand({ Bucket: w.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

/** A JSON callback of about `size` bytes with ids (the filler is base64, so the body stays JSON). */
function bigCallback(size: number, dataId: string): Buffer {
  const head = `{"TaskID":"big","ImageID":"${dataId}","Status":"Success","Blob":"`;
  const tail = '"}';
  const filler = randomBytes(Math.ceil(size * 0.75))
    .toString('base64')
    .slice(0, size - head.length - tail.length);
  return Buffer.from(`${head}${filler}${tail}`);
}

describe('large bodies, byte for byte', () => {
  it.each([
    ['1 MB', 1_000_000],
    ['7 MB', 7_000_000],
    ['9.5 MB', 9_500_000],
  ])('%s: stored under its sha256, read back identical, one event, inbox emptied', async (_, size) => {
    const w = await world(servers);
    const body = bigCallback(size, `img-${size}`);
    expect(body.length).toBe(size);
    const key = await toInbox(w, body, { contentType: 'application/json' });
    const out = await processInboxObject(w.deps, key);
    expect(out.kind).toBe('stored');
    const stored = `results/big/img-${size}/${sha(body)}.json`;
    expect(await w.keys()).toEqual([stored]);
    expect(sha(await w.read(stored))).toBe(sha(body));
    expect(w.events.events.map((e) => e.location.key)).toEqual([stored]);
  });
});

describe('what the inbox object says', () => {
  it('keeps the declared Content-Type, the request id and the gateway receipt time', async () => {
    const w = await world(servers);
    const at = Date.parse('2026-12-01T10:00:00.123Z');
    const body = '{"TaskID":"t","ImageID":"i","Status":"Success"}';
    const key = await toInbox(w, body, { contentType: 'application/json; charset=utf-8', at, requestId: 'rq-1' });
    await processInboxObject(w.deps, key);
    const head = await servers.s3.send(
      new HeadObjectCommand({ Bucket: w.bucket, Key: `results/t/i/${sha(body)}.json` }),
    );
    expect(head.ContentType).toBe('application/json; charset=utf-8');
    expect(head.Metadata).toMatchObject({ 'request-id': 'rq-1', 'received-at': '2026-12-01T10:00:00.123Z' });
    expect(w.events.events[0]?.receivedAt).toBe('2026-12-01T10:00:00.123Z');
  });

  it('sniffs a body sent without a Content-Type (S3 calls it binary/octet-stream)', async () => {
    const w = await world(servers);
    const body = '{"TaskID":"t","ImageID":"s","Status":"Success"}';
    await processInboxObject(w.deps, await toInbox(w, body));
    expect(await w.keys()).toEqual([`results/t/s/${sha(body)}.json`]);
  });

  it('keeps two bodies that differ only in invalid UTF-8 bytes as two objects, exactly', async () => {
    const w = await world(servers);
    const a = Buffer.concat([
      Buffer.from('{"TaskID":"t","ImageID":"nu","N":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const b = Buffer.concat([
      Buffer.from('{"TaskID":"t","ImageID":"nu","N":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const binary = Buffer.concat([randomBytes(2048), Buffer.from([0, 0xff, 0xed, 0xa0, 0x80])]);
    for (const [body, type] of [
      [a, 'application/json'],
      [b, 'application/json'],
      [binary, 'application/octet-stream'],
    ] as const)
      await processInboxObject(w.deps, await toInbox(w, body, { contentType: type }));
    const keys = (await w.keys()).filter((k) => k.startsWith('results/'));
    expect(keys).toHaveLength(3);
    for (const body of [a, b, binary]) {
      const k = keys.find((x) => x.includes(sha(body)));
      expect(k).toBeDefined();
      expect((await w.read(k!)).equals(body)).toBe(true);
    }
  });
});

describe('final outcomes: the inbox object goes', () => {
  it('declared JSON that does not parse is kept under _unmatched, announced never, and not retried', async () => {
    const w = await world(servers);
    const body = '{"TaskID":"t",';
    const key = await toInbox(w, body, { contentType: 'application/json' });
    const out = await processInboxObject(w.deps, key);
    expect(out.kind).toBe('malformed');
    expect(await w.keys()).toEqual([`results/_unmatched/${sha(body)}.txt`]);
    expect(w.events.events).toEqual([]);
  });

  it('an empty body leaves nothing behind', async () => {
    const w = await world(servers);
    const key = await toInbox(w, '  \n', { contentType: 'application/json' });
    expect((await processInboxObject(w.deps, key)).kind).toBe('empty');
    expect(await w.keys()).toEqual([]);
  });

  it('a redelivered event for an object already processed is a no-op', async () => {
    const w = await world(servers);
    const key = await toInbox(w, '{"TaskID":"t","ImageID":"g","Status":"Success"}');
    expect((await processInboxObject(w.deps, key)).kind).toBe('stored');
    expect((await processInboxObject(w.deps, key)).kind).toBe('gone');
    expect(w.events.events).toHaveLength(1);
  });

  it('the same large body delivered twice (two requests, two inbox objects) is one object and one event', async () => {
    const w = await world(servers);
    const body = bigCallback(7_000_000, 'replayed');
    const first = await toInbox(w, body, { contentType: 'application/json' });
    const second = await toInbox(w, body, { contentType: 'application/json' });
    const outs = await Promise.all([processInboxObject(w.deps, first), processInboxObject(w.deps, second)]);
    expect(outs.map((o) => o.kind)).toEqual(['stored', 'stored']);
    expect(await w.keys()).toEqual([`results/big/replayed/${sha(body)}.json`]);
    expect(w.events.events).toHaveLength(1);
  });
});

describe('failures after the inbox write: the object stays and a retry completes it', () => {
  it('EventBridge refuses once: throws, inbox kept; the retry publishes once and deletes it', async () => {
    let fail = true;
    const published: ResultStoredDetail[] = [];
    // EventBridge has no local server that can refuse on demand: the publisher port fails once.
    const publisher: EventPublisher = {
      async publishResultStored(detail) {
        if (fail) {
          fail = false;
          throw new EventPublishError('injected');
        }
        published.push(detail);
      },
    };
    const w = await world(servers, { publisher });
    const body = bigCallback(9_500_000, 'retry');
    const key = await toInbox(w, body, { contentType: 'application/json' });
    await expect(processInboxObject(w.deps, key)).rejects.toBeInstanceOf(EventPublishError);
    expect(await exists(w, key)).toBe(true);
    expect(published).toEqual([]);
    expect((await processInboxObject(w.deps, key)).kind).toBe('stored');
    expect(await exists(w, key)).toBe(false);
    expect(published.map((e) => e.location.key)).toEqual([`results/big/retry/${sha(body)}.json`]);
  });

  it('the ledger fails once after the body was filed: inbox kept; the retry records and publishes', async () => {
    const base = await world(servers);
    let fail = true;
    const ledger: Ledger = {
      ...base.ledger,
      recordResult: async (input) => {
        if (fail) {
          fail = false;
          throw new Error('ProvisionedThroughputExceededException');
        }
        return base.ledger.recordResult(input);
      },
    };
    const w = await world(servers, { ledger });
    const body = '{"TaskID":"t","ImageID":"l","Status":"Success"}';
    const key = await toInbox(w, body, { contentType: 'application/json' });
    await expect(processInboxObject(w.deps, key)).rejects.toBeInstanceOf(LedgerUnavailableError);
    expect(await exists(w, key)).toBe(true);
    expect(await w.keys()).toContain(`results/t/l/${sha(body)}.json`);
    expect(w.events.events).toEqual([]);
    expect((await processInboxObject(w.deps, key)).kind).toBe('stored');
    expect(await exists(w, key)).toBe(false);
    expect(w.events.events).toHaveLength(1);
    expect(await base.ledger.resultHistory('l')).toHaveLength(1);
  });
});

describe('order is decided by receipt at the gateway, not by processing order', () => {
  it('two different finals processed in reverse: the first received still wins', async () => {
    const w = await world(servers);
    await w.ledger.begin({ id: 's', source: 'api', taskId: 't', kind: 'image' });
    await w.ledger.markSubmitted('s', { dataId: 'o', requestId: 'r', kind: 'image' });
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const first = await toInbox(w, '{"TaskID":"t","ImageID":"o","Status":"Success"}', { at: t0 });
    const second = await toInbox(w, '{"TaskID":"t","ImageID":"o","Status":"Failed"}', { at: t0 + 5 });
    await processInboxObject(w.deps, second);
    await processInboxObject(w.deps, first);
    expect(await w.ledger.get('s')).toMatchObject({ status: 'completed', result: { rawStatus: 'Success' } });
  });
});
