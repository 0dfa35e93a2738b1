/**
 * Callbacks through the inbox. (1) The whole local stack with the real functions: a
 * callback POSTed over HTTP, the time to its 200 (the body in callbacks-inbox/) and from
 * the 200 to its `IVA Result Stored` event (filed under results/, recorded, announced).
 * (2) What the inbox adds to the filing itself, against s3rver and dynalite in this
 * process: the former synchronous work (storeAndAnnounce on the bytes in hand) against
 * the inbox's (PutObject to callbacks-inbox/, then processInboxObject: GetObject, the
 * same storeAndAnnounce, DeleteObject).
 */
import { createHash, randomBytes } from 'node:crypto';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createMemoryPublisher } from '../lib/callback/events';
import { storeAndAnnounce, type StoreDeps } from '../lib/callback/handle';
import { processInboxObject } from '../lib/callback/inbox';
import { INBOX_METADATA } from '../lib/callback/inbox-metadata';
import { createDynamoLedger, createLedgerTable } from '../lib/ledger/index';
import { noMetrics, silentLogger } from '../lib/observability';
import { CALLBACK_INBOX_PREFIX } from '../lib/storage/prefixes';
import { startDynalite } from '../local/servers/dynalite';
import { startS3rver } from '../local/servers/s3rver';
import { startLocalStack } from '../local/stack/index';
import { documentClient, s3rverClient } from '../test/support/servers';
import type { BenchTable } from './harness';

const RUNS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const ms = (n: number) => n.toFixed(1);

function body(size: number, id: string): Buffer {
  const head = `{"TaskID":"bench","ImageID":"${id}","Status":"Success","Blob":"`;
  return Buffer.from(
    `${head}${randomBytes(size)
      .toString('base64')
      .slice(0, size - head.length - 2)}"}`,
  );
}

async function throughStack(sizes: number[]): Promise<Map<number, { toOk: number; okToEvent: number }>> {
  const stack = await startLocalStack({
    log: () => undefined,
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
    sandbox: { callbackDelayMs: 600_000 },
  });
  const out = new Map<number, { toOk: number; okToEvent: number }>();
  try {
    for (const size of sizes) {
      const toOk: number[] = [];
      const okToEvent: number[] = [];
      for (let i = -1; i < RUNS; i++) {
        const bytes = body(size, `s-${size}-${i}`);
        const sha = createHash('sha256').update(bytes).digest('hex');
        const t0 = performance.now();
        const res = await fetch(stack.callbackUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: bytes,
        });
        await res.arrayBuffer();
        const t1 = performance.now();
        if (res.status !== 200) throw new Error(`callback answered ${res.status}`);
        for (;;) {
          if (stack.events.some((e) => JSON.stringify(e.detail).includes(sha))) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        const t2 = performance.now();
        if (i < 0) continue; // warm-up
        toOk.push(t1 - t0);
        okToEvent.push(t2 - t1);
      }
      out.set(size, { toOk: median(toOk), okToEvent: median(okToEvent) });
    }
  } finally {
    await stack.close();
  }
  return out;
}

async function inboxAgainstDirect(sizes: number[]): Promise<Map<number, { direct: number; inbox: number }>> {
  const dynalite = await startDynalite();
  const s3server = await startS3rver();
  const s3 = s3rverClient(s3server);
  const doc = documentClient(dynalite);
  const out = new Map<number, { direct: number; inbox: number }>();
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
    await createLedgerTable(doc, 'bench');
    const deps: StoreDeps = {
      s3,
      bucket: 'bench',
      ledger: createDynamoLedger({ tableName: 'bench', client: doc }),
      publisher: createMemoryPublisher(),
      logger: silentLogger,
      metrics: noMetrics,
    };
    const count = () => undefined;
    let n = 0;
    for (const size of sizes) {
      const direct: number[] = [];
      const inbox: number[] = [];
      for (let i = -1; i < RUNS; i++) {
        const a = body(size, `d-${size}-${++n}`);
        const t0 = performance.now();
        await storeAndAnnounce(
          deps,
          { bytes: a, contentType: 'application/json', requestId: `r-${n}`, receivedAt: new Date().toISOString() },
          silentLogger,
          count,
          noMetrics,
        );
        const t1 = performance.now();
        const b = body(size, `i-${size}-${++n}`);
        const key = `${CALLBACK_INBOX_PREFIX}r-${n}`;
        const t2 = performance.now();
        await s3.send(
          new PutObjectCommand({
            Bucket: 'bench',
            Key: key,
            Body: b,
            ContentType: 'application/json',
            Metadata: { [INBOX_METADATA.requestId]: `r-${n}`, [INBOX_METADATA.requestTimeEpoch]: String(Date.now()) },
          }),
        );
        await processInboxObject(deps, key);
        const t3 = performance.now();
        if (i < 0) continue;
        direct.push(t1 - t0);
        inbox.push(t3 - t2);
      }
      out.set(size, { direct: median(direct), inbox: median(inbox) });
    }
  } finally {
    s3.destroy();
    await s3server.close();
    await dynalite.close();
  }
  return out;
}

export async function benchCallbackInbox(): Promise<BenchTable> {
  const sizes = [1_000_000, 4_000_000, 9_500_000];
  const stack = await throughStack(sizes);
  const lib = await inboxAgainstDirect(sizes);
  const rows: string[][] = [];
  for (const size of sizes) {
    const label = `${size / 1_000_000} MB`;
    const s = stack.get(size)!;
    const l = lib.get(size)!;
    rows.push([label, 'local stack: POST → 200 (in the inbox)', ms(s.toOk), '-']);
    rows.push([label, 'local stack: 200 → event (filed, recorded, announced)', ms(s.okToEvent), '-']);
    rows.push([label, 'filing, former synchronous work (storeAndAnnounce)', ms(l.direct), '1.00x']);
    rows.push([
      label,
      'filing through the inbox (PUT inbox + GET, storeAndAnnounce, DELETE)',
      ms(l.inbox),
      `${(l.inbox / l.direct).toFixed(2)}x`,
    ]);
  }
  return {
    title: 'Callbacks through the inbox (median ms)',
    columns: ['size', 'what', 'median ms', 'vs former'],
    rows,
    notes: [
      `Median of ${RUNS} runs after one warm-up, one process, 2-core machine; local S3 is s3rver, the ledger dynalite, EventBridge the local endpoint.`,
      '"200 → event" includes the local S3 event, the local SQS delivery and one invocation of the real result-callback process.',
      'The former synchronous path could not take bodies over about 4.5 MB deployed (Lambda 6 MB event limit); its 9.5 MB row is only the slope.',
    ],
  };
}
