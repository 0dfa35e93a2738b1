import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { CallbackError } from '../../lib/callback/errors';
import { createMemoryPublisher, type MemoryPublisher } from '../../lib/callback/events';
import { type CallbackDeps, type CallbackRequest, handleCallback } from '../../lib/callback/handle';
import { createDynamoLedger, createLedgerTable, type Ledger } from '../../lib/ledger/index';
import { noMetrics, silentLogger } from '../../lib/observability';
import { startDynalite } from '../../local/servers/dynalite';
import { startS3rver } from '../../local/servers/s3rver';
import { documentClient, s3rverClient } from '../support/servers';

export const SECRET = 'cb-secret-Zq8w3N1xY7pL0aVt5R2kH9mJ4sD6fG';

export interface Servers {
  s3: S3Client;
  doc: DynamoDBDocumentClient;
  close(): Promise<void>;
}

export async function startServers(): Promise<Servers> {
  const dynalite = await startDynalite();
  const s3server = await startS3rver();
  const doc = documentClient(dynalite);
  const s3 = s3rverClient(s3server);
  return {
    s3,
    doc,
    close: async () => {
      await s3server.close();
      await dynalite.close();
    },
  };
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export interface World {
  bucket: string;
  table: string;
  ledger: Ledger;
  events: MemoryPublisher;
  deps: CallbackDeps;
  /** Like the function: a CallbackError becomes its status; anything else is a 503. */
  call(request: Partial<CallbackRequest>): Promise<Answer>;
  keys(): Promise<string[]>;
  read(key: string): Promise<Buffer>;
  /** Every item of the ledger table, as stored. */
  items(): Promise<Record<string, unknown>[]>;
}

let counter = 0;

export async function world(servers: Servers, overrides: Partial<CallbackDeps> = {}): Promise<World> {
  const n = `${process.pid}-${++counter}`;
  const bucket = `cbw-${n}`;
  const table = `ledger-${n}`;
  await servers.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await createLedgerTable(servers.doc, table);
  // One clock for the function and the ledger (receipt times, claim leases).
  const ledger = createDynamoLedger({
    tableName: table,
    client: servers.doc,
    ...(overrides.now ? { now: overrides.now } : {}),
  });
  const events = createMemoryPublisher();
  const deps: CallbackDeps = {
    s3: servers.s3,
    bucket,
    ledger,
    secrets: { get: async () => [SECRET] },
    publisher: events,
    logger: silentLogger,
    metrics: noMetrics,
    ...overrides,
  };
  return {
    bucket,
    table,
    ledger,
    events,
    deps,
    async call(request) {
      try {
        const out = await handleCallback(deps, {
          secret: SECRET,
          contentType: 'application/json',
          ...request,
        } as CallbackRequest);
        return { status: 200, body: out as unknown as Record<string, unknown> };
      } catch (error) {
        if (error instanceof CallbackError) return { status: error.httpStatus, body: { code: error.code } };
        return { status: 503, body: { unexpected: String(error) } };
      }
    },
    async keys() {
      const out = await servers.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
    },
    async read(key) {
      const out = await servers.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    async items() {
      const out = await servers.doc.send(new ScanCommand({ TableName: table }));
      return out.Items ?? [];
    },
  };
}

/** Every string anywhere in `value` (keys and values). */
export function allStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) allStrings(v, out);
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      allStrings(v, out);
    }
  return out;
}
