/**
 * In-process S3 stand-in (npm `s3rver`) on a free 127.0.0.1 port, storing in a temp
 * folder that close() removes. Traps (docs/local-s3.md):
 * - it does not verify signatures or checksums: use lib/storage/s3-client (checksums
 *   WHEN_REQUIRED) or streamed PutObject bodies are stored with aws-chunked framing;
 * - paginated listing (continuation tokens) needs DES, i.e. a process started with
 *   `--openssl-legacy-provider`: see `listPaginationSupported`;
 * - its event records carry raw keys; `events` re-emits them URL-encoded like AWS;
 * - keys with `..` segments, empty segments or over 255-byte segments escaped its folder
 *   or crashed it: s3rver-keys.ts contains them (every key S3 accepts is stored inside the
 *   folder, a key over 1,024 bytes gets S3's 400 KeyTooLongError);
 * - multipart uploads checked nothing at completion and could not be aborted:
 *   s3rver-multipart.ts checks parts and ETags as S3 does, aborts, and names the event
 *   ObjectCreated:CompleteMultipartUpload.
 */
import { createCipheriv } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, urlOf } from './http-close';
import { containS3rverKeys, guardRequests } from './s3rver-keys';
import { containS3rverMultipart, multipartRequests } from './s3rver-multipart';

/** One S3 event record as s3rver builds it (the AWS shape, minus a few fields). */
export interface S3EventRecord {
  eventVersion: string;
  eventSource: string;
  awsRegion: string;
  eventTime: string;
  eventName: string;
  s3: {
    s3SchemaVersion: string;
    configurationId: string;
    bucket: { name: string; arn: string; ownerIdentity?: { principalId: string } };
    object: { key: string; size?: number; eTag?: string; sequencer?: string; versionId?: string };
  };
  [extra: string]: unknown;
}

export interface S3EventNotification {
  Records: S3EventRecord[];
}

interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  resetOnClose?: boolean;
  configureBuckets: { name: string }[];
}

/** The parts of the s3rver instance this project uses. */
export interface S3rverInstance extends EventEmitter {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  httpServer?: Server;
}

const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as new (options: S3rverOptions) => S3rverInstance;

export interface StartS3rverOptions {
  /** Buckets created before the server answers. */
  buckets?: string[];
  port?: number;
  /** A folder that keeps the objects across restarts (not removed on close); a temporary one when omitted. */
  directory?: string;
}

export interface LocalS3 {
  /** `http://127.0.0.1:PORT`; use path-style addressing. */
  endpoint: string;
  region: 'us-east-1';
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  /** s3rver itself; emits `event` with raw (not URL-encoded) keys. */
  server: S3rverInstance;
  /**
   * Emits `event` with an S3 event notification whose keys are URL-encoded the way AWS
   * delivers them (`+` for space), so consumers decode exactly as in Lambda.
   */
  events: EventEmitter<{ event: [S3EventNotification] }>;
  /** False unless the process runs with --openssl-legacy-provider (see the file comment). */
  listPaginationSupported: boolean;
  directory: string;
  close: () => Promise<void>;
}

/** Encodes a key as S3 event notifications do: URL encoding, `+` for space, `/` kept. */
export function encodeS3EventKey(key: string): string {
  return encodeURIComponent(key)
    .replace(/%20/g, '+')
    .replace(/%2F/gi, '/')
    .replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

export async function startS3rver(options: StartS3rverOptions = {}): Promise<LocalS3> {
  containS3rverKeys();
  containS3rverMultipart();
  const kept = options.directory !== undefined;
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 's3rver-')));
  if (kept) await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    silent: true,
    directory,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
  });
  const callback = server.callback.bind(server);
  const store = (server as unknown as { store: { getMetadata(b: string, k: string): Promise<{ etag?: string }> } })
    .store;
  server.callback = () =>
    guardRequests(multipartRequests(directory, callback()), {
      eTagOf: (bucket, key) => store.getMetadata(bucket, key).then((m) => m.etag),
    });
  const events = new EventEmitter<{ event: [S3EventNotification] }>();
  server.on('event', (notification: S3EventNotification) => {
    events.emit('event', {
      Records: notification.Records.map((record) => ({
        ...record,
        s3: { ...record.s3, object: { ...record.s3.object, key: encodeS3EventKey(record.s3.object.key) } },
      })),
    });
  });
  let address: { address: string; port: number };
  try {
    // s3rver emits a listen failure as an unhandled 'error' event (the process dies): try
    // the port first, so a port in use is an ordinary rejection naming it.
    if (options.port) await portFree(options.port);
    address = await server.run();
  } catch (err) {
    if (!kept) await rm(directory, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const http = server.httpServer;
    if (http) await closeServer(http);
    events.removeAllListeners();
    if (!kept) await rm(directory, { recursive: true, force: true });
  };
  return {
    endpoint: urlOf({ address: address.address, port: address.port, family: 'IPv4' }),
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    server,
    events,
    listPaginationSupported: desAvailable(),
    directory,
    close: () => (closing ??= close()),
  };
}

function portFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

function desAvailable(): boolean {
  // crypto.getCiphers() lists DES even when OpenSSL 3 refuses it: only trying tells.
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}
