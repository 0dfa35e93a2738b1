/**
 * In-process DynamoDB stand-in (npm `dynalite`), in memory or in a LevelDB folder, on a
 * free 127.0.0.1 port.
 * Tables are ACTIVE as soon as CreateTable returns, so tests need no waiters.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
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
  // store (an uncaught "Database is closed" thrown inside dynalite): close waits for them.
  // A request counts until dynalite answers it (res.end), not until its socket closes: a
  // caller that hangs up (a function process killed mid-call) leaves the action running.
  // Only a request whose body never arrived is let go at close, as dynalite never acts on it.
  // dynalite rethrows a request's 'error' (a caller hanging up mid-body: "aborted") from
  // its listener, an uncaught exception that would end the process. The request is gone
  // and nothing was written, so its error listener is replaced by one that lets it go.
  server.prependListener('request', (req: IncomingMessage) => {
    const on = req.on.bind(req) as (event: string, listener: (...args: unknown[]) => void) => IncomingMessage;
    req.on = ((event: string, listener: (...args: unknown[]) => void) =>
      on(event, event === 'error' ? () => undefined : listener)) as IncomingMessage['on'];
  });
  let inflight = 0;
  const idle: (() => void)[] = [];
  server.on('request', (req, res) => {
    inflight += 1;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inflight -= 1;
      if (inflight === 0) for (const resolve of idle.splice(0)) resolve();
    };
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      finish();
      return end(...args);
    }) as ServerResponse['end'];
    res.once('close', () => {
      if (!req.complete) finish();
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
