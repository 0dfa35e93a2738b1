/**
 * A local stand-in for Volcengine's IVA gateway (docs/iva-api.md): a real
 * HTTP server that checks signatures, validates bodies like the vendor page, fetches
 * Source=url objects (proving presigned URLs work), records what it accepted and posts
 * callbacks. Used by the tests and by `npm start`; faults can be injected in-process or
 * through `/__sandbox/*` (unauthenticated: it only ever listens on a loopback address).
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { VolcCredentials } from '../../lib/signer/index';
import { closeServer, listen, urlOf } from '../servers/http-close';
import {
  acceptSubmission,
  callbackBody,
  describeFetchError,
  errorAnswer,
  idKeyOf,
  newRequestId,
  responseMetadata,
} from './core';
import { SandboxError } from './errors';
import type {
  CallbackDelivery,
  CallbackStatus,
  Fault,
  IvaSandboxOptions,
  RateLimit,
  SandboxEvents,
  SandboxRequest,
  Submission,
  SubmissionSummary,
} from './types';

export { IVA_VERSION } from './core';

/** Used when no credentials are given (CLI without VOLC_ACCESSKEY, most tests). Not secret. */
export const DEFAULT_SANDBOX_CREDENTIALS: VolcCredentials = {
  accessKeyId: 'AKLTLOCALSANDBOX',
  secretAccessKey: 'local-sandbox-secret-key',
};

const CONTROL_PREFIX = '/__sandbox/';

interface QueuedFault {
  fault: Fault;
  remaining: number;
}

interface Outcome {
  status: number;
  body: unknown;
  /** Set when a drop-after-accept fault applies. */
  drop?: boolean;
}

export class IvaSandbox extends EventEmitter<SandboxEvents> {
  readonly submissions: Submission[] = [];
  readonly callbacks: CallbackDelivery[] = [];
  /** Every request to the IVA routes (control requests are not counted). */
  readonly requests: SandboxRequest[] = [];
  readonly credentials: readonly VolcCredentials[];
  readonly region: string;
  readonly service: string;
  callbackUrl: string | undefined;
  callbackStatus: CallbackStatus;

  private readonly server: Server;
  private readonly keys: Map<string, VolcCredentials>;
  private readonly faults: QueuedFault[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly shutdown = new AbortController();
  private readonly idleWaiters: (() => void)[] = [];
  private pendingCallbacks = 0;
  private rateLimit: Required<RateLimit> | undefined;
  private tokens = 0;
  private tokensAt = 0;
  private address = '';
  private closing: Promise<void> | undefined;

  constructor(private readonly options: IvaSandboxOptions = {}) {
    super();
    const creds = options.credentials ?? DEFAULT_SANDBOX_CREDENTIALS;
    this.credentials = Array.isArray(creds) ? [...(creds as readonly VolcCredentials[])] : [creds as VolcCredentials];
    this.keys = new Map(this.credentials.map((c) => [c.accessKeyId, c]));
    this.region = options.region ?? 'cn-north-1';
    this.service = options.service ?? 'iva';
    this.callbackUrl = options.callbackUrl;
    this.callbackStatus = options.callbackStatus ?? 'success';
    this.setRateLimit(options.rateLimit);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log(`unexpected error: ${(err as Error).message}`);
        if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: 'InternalError' });
      });
    });
  }

  /** Base URL, e.g. `http://127.0.0.1:PORT`: the client's IVA endpoint. */
  get url(): string {
    return this.address;
  }

  async start(): Promise<this> {
    const address = await listen(this.server, this.options.port ?? 0, this.options.host ?? '127.0.0.1');
    this.address = urlOf(address);
    return this;
  }

  setCallbackUrl(url: string | undefined): void {
    this.callbackUrl = url;
  }

  setCallbackStatus(status: CallbackStatus): void {
    this.callbackStatus = status;
  }

  /** Sets (or, with undefined, lifts) the flow limit; the bucket starts full. */
  setRateLimit(limit: RateLimit | undefined): void {
    if (limit === undefined) {
      this.rateLimit = undefined;
      return;
    }
    const burst = limit.burst ?? limit.perSecond;
    if (!(limit.perSecond > 0) || !(burst >= 1)) throw new Error('rateLimit needs perSecond > 0 and burst >= 1');
    this.rateLimit = { perSecond: limit.perSecond, burst };
    this.tokens = burst;
    this.tokensAt = this.clock();
  }

  /** Takes one token from the flow-limit bucket; false when it is empty (IVA answers 429). */
  private takeToken(): boolean {
    const limit = this.rateLimit;
    if (!limit) return true;
    const now = this.clock();
    this.tokens = Math.min(limit.burst, this.tokens + ((now - this.tokensAt) / 1000) * limit.perSecond);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Queues faults; each applies to the next `count` (default 1) IVA requests, in order. */
  injectFaults(...faults: Fault[]): void {
    for (const fault of faults) {
      const count = fault.count ?? 1;
      if (!Number.isInteger(count) || count < 1) throw new Error('fault count must be a positive integer');
      this.faults.push({ fault, remaining: count });
    }
  }

  pendingFaults(): Fault[] {
    return this.faults.map(({ fault, remaining }) => ({ ...fault, count: remaining }));
  }

  /** Forgets submissions, callbacks, requests and queued faults (not the callback URL). */
  reset(): void {
    this.submissions.length = 0;
    this.callbacks.length = 0;
    this.requests.length = 0;
    this.faults.length = 0;
  }

  submissionSummaries(): SubmissionSummary[] {
    return this.submissions.map(({ file: _file, ...rest }) => rest);
  }

  /** Resolves once no callback is scheduled or in flight. */
  callbacksSettled(): Promise<void> {
    if (this.pendingCallbacks === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shutdown.abort();
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      this.pendingCallbacks = 0;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      await closeServer(this.server);
    })();
    return this.closing;
  }

  /** The server clock (options.now): signature skew and the flow limit's refill. */
  private clock(): number {
    return (this.options.now ?? Date.now)();
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    if (url.pathname.startsWith(CONTROL_PREFIX)) return this.control(req, res, url);

    const requestId = newRequestId();
    const action = url.searchParams.get('Action') ?? undefined;
    const record: SandboxRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      action,
      requestId,
      receivedAt: new Date().toISOString(),
    };
    this.requests.push(record);
    this.emit('request', record);

    let body: { bytes: Buffer; overLimit: boolean };
    try {
      body = await readBody(req, this.options.maxBodyBytes ?? 128 * 1024 * 1024);
    } catch {
      return; // the client went away mid-body: nothing to answer
    }

    const meta = responseMetadata(url, requestId, this.service, this.region);
    const fault = this.takeFault();
    let outcome: Outcome;
    try {
      if (fault && 'drop' in fault && !fault.afterAccept) {
        record.fault = 'drop';
        record.dropped = true;
        this.log(`fault: dropped ${requestId}`);
        req.socket.destroy();
        return;
      }
      if (fault && 'code' in fault) {
        record.fault = 'error';
        throw new SandboxError(fault.code, fault.httpStatus, fault.message ?? `Injected fault ${fault.code}.`);
      }
      if (!fault && !this.takeToken()) {
        throw new SandboxError(
          'FlowLimitExceeded',
          429,
          'Flow limit exceeded: too many requests per second for this account (sandbox rate limit).',
        );
      }
      if (fault && 'delayMs' in fault) {
        record.fault = 'delay';
        await sleep(fault.delayMs, this.shutdown.signal);
      }
      const accepted = await this.process(req, url, body, requestId, action ?? '');
      outcome = { status: 200, body: { ResponseMetadata: meta, Result: accepted } };
      if (fault && 'drop' in fault) outcome.drop = true;
    } catch (err) {
      if (this.shutdown.signal.aborted) {
        req.socket.destroy();
        return;
      }
      if (!(err instanceof SandboxError)) this.log(`internal error on ${requestId}: ${(err as Error).message}`);
      record.code = err instanceof SandboxError ? err.code : 'InternalError';
      outcome = errorAnswer(err, meta);
    }
    record.httpStatus = outcome.status;
    if (outcome.drop) {
      record.fault = 'drop';
      record.dropped = true;
      req.socket.destroy();
      return;
    }
    sendJson(res, outcome.status, outcome.body);
  }

  private takeFault(): Fault | undefined {
    const head = this.faults[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining <= 0) this.faults.shift();
    return head.fault;
  }

  private async process(
    req: IncomingMessage,
    url: URL,
    body: { bytes: Buffer; overLimit: boolean },
    requestId: string,
    action: string,
  ): Promise<Record<string, string>> {
    const { submission, result } = await acceptSubmission(
      { method: req.method ?? 'GET', url, headers: req.headers, body: body.bytes, overLimit: body.overLimit },
      requestId,
      {
        keys: this.keys,
        region: this.region,
        service: this.service,
        ...(this.options.maxSkewMs !== undefined ? { maxSkewMs: this.options.maxSkewMs } : {}),
        ...(this.options.now ? { now: this.options.now } : {}),
        ...(this.options.imageMaxBytes !== undefined ? { imageMaxBytes: this.options.imageMaxBytes } : {}),
        ...(this.options.downloadTimeoutMs !== undefined ? { downloadTimeoutMs: this.options.downloadTimeoutMs } : {}),
        signal: this.shutdown.signal,
      },
    );
    this.submissions.push(submission);
    this.log(
      `accepted ${action} task=${submission.taskId} ${idKeyOf(submission)}=${submission.dataId} size=${submission.size} RequestId=${requestId}`,
    );
    this.emit('submission', submission);
    this.scheduleCallback(submission);
    return result;
  }

  private scheduleCallback(s: Submission): void {
    const target = this.callbackUrl;
    if (!target) return;
    const body = callbackBody(
      s,
      this.callbackStatus,
      this.callbackStatus === 'success' ? this.options.labels?.(s) : undefined,
    );
    this.pendingCallbacks += 1;
    this.later(this.options.callbackDelayMs ?? 50, () => this.deliver(target, body, s, 1));
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void fn();
    }, ms);
    this.timers.add(timer);
  }

  private async deliver(url: string, body: string, s: Submission, attempt: number): Promise<void> {
    if (this.shutdown.signal.aborted) return;
    const delivery: CallbackDelivery = {
      taskId: s.taskId,
      dataId: s.dataId,
      attempt,
      url,
      ok: false,
      body,
      at: new Date().toISOString(),
    };
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.options.callbackTimeoutMs ?? 5_000)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      delivery.httpStatus = res.status;
      delivery.ok = res.ok;
      if (!res.ok) delivery.error = `receiver answered HTTP ${res.status}`;
    } catch (err) {
      if (this.shutdown.signal.aborted) return;
      delivery.error = describeFetchError(err);
    }
    this.callbacks.push(delivery);
    // The callback URL carries the receiver's secret: log its origin only.
    this.log(
      `callback ${s.dataId} attempt ${attempt} to ${new URL(url).origin}: ${delivery.ok ? 'delivered' : delivery.error}`,
    );
    this.emit('callback', delivery);
    const attempts = this.options.callbackAttempts ?? 4;
    if (!delivery.ok && attempt < attempts) {
      const backoff = (this.options.callbackBackoffMs ?? 100) * 2 ** (attempt - 1);
      this.later(backoff, () => this.deliver(url, body, s, attempt + 1));
      return;
    }
    this.pendingCallbacks = Math.max(0, this.pendingCallbacks - 1);
    if (this.pendingCallbacks === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let raw: Buffer;
    try {
      raw = (await readBody(req, 1024 * 1024)).bytes;
    } catch {
      return;
    }
    const route = `${req.method} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /__sandbox/submissions':
          return sendJson(res, 200, this.submissionSummaries());
        case 'GET /__sandbox/callbacks':
          // Origins only: the full callback URL holds the receiver's secret.
          return sendJson(
            res,
            200,
            this.callbacks.map((c) => ({ ...c, url: new URL(c.url).origin })),
          );
        case 'GET /__sandbox/requests':
          return sendJson(res, 200, this.requests);
        case 'GET /__sandbox/faults':
          return sendJson(res, 200, this.pendingFaults());
        case 'POST /__sandbox/faults': {
          const faults = parseFaults(parseJson(raw));
          this.injectFaults(...faults);
          return sendJson(res, 200, { queued: faults.length, pending: this.pendingFaults() });
        }
        case 'POST /__sandbox/reset':
          this.reset();
          return sendJson(res, 200, { reset: true });
        case 'POST /__sandbox/config': {
          const config = parseJson(raw);
          if (!isRecord(config)) throw new Error('body must be a JSON object');
          if ('callbackUrl' in config) {
            const value = config.callbackUrl;
            if (value !== null && typeof value !== 'string') throw new Error('callbackUrl must be a string or null');
            if (typeof value === 'string') new URL(value);
            this.setCallbackUrl(value ?? undefined);
          }
          if ('rateLimit' in config) {
            const limit = config.rateLimit;
            if (limit !== null && (!isRecord(limit) || typeof limit.perSecond !== 'number'))
              throw new Error('rateLimit must be {"perSecond": n, "burst"?: n} or null');
            this.setRateLimit(
              limit === null
                ? undefined
                : {
                    perSecond: limit.perSecond as number,
                    ...(typeof limit.burst === 'number' ? { burst: limit.burst } : {}),
                  },
            );
          }
          if ('callbackStatus' in config) {
            if (config.callbackStatus !== 'success' && config.callbackStatus !== 'failed')
              throw new Error('callbackStatus must be "success" or "failed"');
            this.setCallbackStatus(config.callbackStatus);
          }
          return sendJson(res, 200, {
            callbackUrl: this.callbackUrl ? new URL(this.callbackUrl).origin : null,
            callbackStatus: this.callbackStatus,
            rateLimit: this.rateLimit ?? null,
          });
        }
        default:
          return sendJson(res, 404, { error: 'NotFound', message: `No sandbox control route ${route}.` });
      }
    } catch (err) {
      return sendJson(res, 400, { error: 'BadRequest', message: (err as Error).message });
    }
  }
}

export async function startIvaSandbox(options: IvaSandboxOptions = {}): Promise<IvaSandbox> {
  return new IvaSandbox(options).start();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new Error('body must be JSON');
  }
}

/** Accepts one fault, an array, or `{ "faults": [...] }`; rejects anything it cannot apply. */
export function parseFaults(value: unknown): Fault[] {
  const list = Array.isArray(value) ? value : isRecord(value) && Array.isArray(value.faults) ? value.faults : [value];
  return list.map((item: unknown, i): Fault => {
    if (!isRecord(item)) throw new Error(`fault ${i} must be an object`);
    const count = item.count ?? 1;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1)
      throw new Error(`fault ${i}: count must be a positive integer`);
    if (typeof item.code === 'string') {
      const status = item.httpStatus;
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
        throw new Error(`fault ${i}: httpStatus must be an HTTP error status (400-599)`);
      }
      return {
        count,
        code: item.code,
        httpStatus: status,
        ...(typeof item.message === 'string' ? { message: item.message } : {}),
      };
    }
    if (typeof item.delayMs === 'number' && item.delayMs >= 0) return { count, delayMs: item.delayMs };
    if (item.drop === true) return { count, drop: true, afterAccept: item.afterAccept === true };
    throw new Error(`fault ${i} must have code+httpStatus, delayMs or drop:true`);
  });
}

/** Reads the whole body; past `max` bytes it keeps draining (so the client sees an answer) but stops storing. */
function readBody(req: IncomingMessage, max: number): Promise<{ bytes: Buffer; overLimit: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let overLimit = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        overLimit = true;
        chunks.length = 0;
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve({ bytes: overLimit ? Buffer.alloc(0) : Buffer.concat(chunks), overLimit }));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('closed'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('closed'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
