/**
 * In-process DynamoDB stand-in (npm `dynalite`), in memory or in a LevelDB folder, on a
 * free 127.0.0.1 port.
 * Tables are ACTIVE as soon as CreateTable returns, so tests need no waiters.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { closeServer, listen, urlOf } from './http-close';

interface DynaliteOptions {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  maxItemSizeKb?: number;
  /** LevelDB folder; in memory when omitted. */
  path?: string;
}

// dynalite is CommonJS without types: load it through require with its real signature.
const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: DynaliteOptions) => Server;

export interface LocalDynalite {
  /** `http://127.0.0.1:PORT`, for DynamoDBClient({ endpoint }). */
  endpoint: string;
  /** Any credentials work; these are what the local stack passes to the SDK. */
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  close: () => Promise<void>;
}

export interface StartDynaliteOptions {
  port?: number;
  /** LevelDB folder that keeps the tables across restarts; in memory when omitted. */
  path?: string;
}

export async function startDynalite(options: StartDynaliteOptions = {}): Promise<LocalDynalite> {
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path ? { path: options.path } : {}),
  });
  // Requests still being answered when close() is called would meet a closed LevelDB
  // store (an unhandled "Database is closed" inside dynalite): close waits for them.
  let inflight = 0;
  const idle: (() => void)[] = [];
  server.on('request', (_req, res) => {
    inflight += 1;
    res.once('close', () => {
      inflight -= 1;
      if (inflight === 0) for (const resolve of idle.splice(0)) resolve();
    });
  });
  const drained = (): Promise<void> =>
    inflight === 0
      ? Promise.resolve()
      : Promise.race([
          new Promise<void>((resolve) => idle.push(resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref()),
        ]);
  const address = await listen(server, options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    endpoint: urlOf(address),
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // dynalite's own close() also closes its LevelDB store; keep it as the close step.
    close: () => (closing ??= drained().then(() => closeServer(server, (cb) => server.close(cb)))),
  };
}
