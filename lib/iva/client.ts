/**
 * IVA AddAsyncTask{Image,Video}Data client.
 *
 * The body is sent as the pieces the caller already holds (prefix, file, suffix):
 * hashed in place once, then written piece by piece to the socket, so a 50 MB file is
 * never joined into a new buffer. What is retried, what ends at once and what is
 * ambiguous (never retried): lib/iva/README.md.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFAULTS } from '../config';
import { sha256Hex, sign, type VolcCredentials } from '../signer/index';
import {
  AMBIGUOUS_CODES,
  CREDENTIALS_UNAVAILABLE,
  IvaAbortedError,
  IvaAmbiguousError,
  IvaBudgetExceededError,
  IvaError,
  IvaInputError,
  IvaNetworkError,
  IvaTimeoutError,
  RESIGN_CODES,
} from './errors';
import { frameRequestOnly, frameWithFile, multipartContentType, randomBoundary } from './multipart';
import { IVA_VERSION, KIND_PROTOCOL } from './protocol';
import type {
  FileData,
  IvaClient,
  IvaClientConfig,
  MediaKind,
  SubmitInput,
  SubmitOptions,
  SubmitResult,
} from './types';

export const DEFAULT_BUDGET_MS = 60_000;
export const DEFAULT_BASE_DELAY_MS = 200;
export const DEFAULT_MAX_DELAY_MS = 5_000;
/**
 * The slowest upload an attempt still waits for: each attempt's timeout is the base
 * timeout plus the body's size at this rate (512 KiB/s: +9 s for a 4.5 MB direct body,
 * +100 s for a 50 MB image), so a large body on a slow link is not cut off mid-way.
 */
export const DEFAULT_MIN_THROUGHPUT_BYTES_PER_SECOND = 512 * 1024;
/**
 * A keep-alive connection idle longer than this is closed instead of reused: a server
 * may have closed it meanwhile (a frozen Lambda notices late), and a request written
 * into such a connection fails after sending, which is ambiguous.
 */
export const MAX_IDLE_REUSE_MS = 4_000;
/**
 * A retry starts only with at least this much budget left: an attempt cut short by the
 * end of the budget after sending is ambiguous, so the budget's last moments are not
 * spent on one. The first attempt always starts.
 */
export const DEFAULT_MIN_ATTEMPT_MS = 1_000;
/** IVA's answers are small JSON documents; anything bigger is not IVA. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

type StreamFile = Extract<FileData, { open: unknown }>;

/** A body ready to hash once and send any number of times. */
interface PreparedBody {
  contentType: string;
  length: number;
  sha256: string;
  /** A fresh source of the exact body bytes, for one attempt. */
  open(): Readable;
}

function isStreamFile(data: FileData): data is StreamFile {
  return typeof (data as StreamFile).open === 'function';
}

export function buildRequestJson(input: SubmitInput): string {
  const spec = KIND_PROTOCOL[input.kind];
  const media: Record<string, string> = { Name: input.name, Source: input.source.type };
  if (input.source.type === 'url') media['Url'] = input.source.url;
  if (input.desc !== undefined) media['Desc'] = input.desc;
  const request: Record<string, unknown> = { TaskID: input.taskId, [spec.mediaKey]: media };
  if (input.algoParamConf !== undefined) request['AlgoParamConf'] = input.algoParamConf;
  return JSON.stringify(request);
}

function validate(input: SubmitInput): void {
  if (!KIND_PROTOCOL[input.kind]) throw new IvaInputError('InvalidKind', `kind must be "image" or "video"`);
  if (typeof input.taskId !== 'string' || input.taskId.trim() === '')
    throw new IvaInputError('MissingTaskID', 'TaskID is required');
  if (typeof input.name !== 'string' || input.name.trim() === '')
    throw new IvaInputError('MissingName', 'Name is required');
  if (input.source.type === 'url' && (typeof input.source.url !== 'string' || input.source.url === '')) {
    throw new IvaInputError('MissingUrl', 'Url is required when Source is url');
  }
  if (
    input.algoParamConf !== undefined &&
    (input.algoParamConf === null || typeof input.algoParamConf !== 'object' || Array.isArray(input.algoParamConf))
  ) {
    throw new IvaInputError('InvalidAlgoParamConf', 'AlgoParamConf must be a JSON object');
  }
}

async function prepareBody(input: SubmitInput): Promise<PreparedBody> {
  const boundary = randomBoundary();
  const contentType = multipartContentType(boundary);
  const requestJson = buildRequestJson(input);
  if (input.source.type === 'url') {
    const body = frameRequestOnly(boundary, requestJson);
    return { contentType, length: body.length, sha256: sha256Hex(body), open: () => Readable.from([body]) };
  }
  const source = input.source;
  const frame = frameWithFile({
    boundary,
    fieldName: KIND_PROTOCOL[input.kind].fileField,
    filename: source.filename ?? input.name,
    requestJson,
    ...(source.contentType !== undefined ? { contentType: source.contentType } : {}),
  });
  const data = source.data;
  if (isStreamFile(data)) {
    if (!Number.isSafeInteger(data.size) || data.size < 0)
      throw new IvaInputError('InvalidFileSize', 'file size must be a non-negative integer');
    // SHA-256 does not compose: the body hash covers the framing too, so the stream is
    // read once to hash (the given file hash, if any, is then checked) and once to send.
    const sha256 = await hashPiecesAroundStream(frame.prefix, data, frame.suffix);
    return {
      contentType,
      length: frame.prefix.length + data.size + frame.suffix.length,
      sha256,
      open: () => Readable.from(streamBody(frame.prefix, data, frame.suffix)),
    };
  }
  const pieces: Uint8Array[] = data instanceof Uint8Array ? [data] : [...data];
  const all = [frame.prefix, ...pieces, frame.suffix];
  const length = all.reduce((sum, piece) => sum + piece.length, 0);
  return { contentType, length, sha256: sha256Hex(all), open: () => Readable.from(all) };
}

async function* streamBody(prefix: Buffer, file: StreamFile, suffix: Buffer): AsyncGenerator<Uint8Array> {
  yield prefix;
  let size = 0;
  try {
    for await (const chunk of file.open()) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
      size += bytes.length;
      yield bytes;
    }
  } catch (cause) {
    throw new IvaInputError('FileReadError', `could not read the file: ${(cause as Error).message}`, cause);
  }
  // A file that changed between hashing and sending would be rejected by the signature anyway.
  if (size !== file.size)
    throw new IvaInputError('FileSizeMismatch', `the file stream gave ${size} bytes, ${file.size} declared`);
  yield suffix;
}

/** Hashes prefix + stream + suffix in one read of the stream, checking the file's own hash when given. */
async function hashPiecesAroundStream(prefix: Buffer, file: StreamFile, suffix: Buffer): Promise<string> {
  const body = createHash('sha256');
  const own = file.sha256 !== undefined ? createHash('sha256') : undefined;
  for await (const piece of streamBody(prefix, file, suffix)) {
    body.update(piece);
    if (own && piece !== prefix && piece !== suffix) own.update(piece);
  }
  if (own && own.digest('hex') !== file.sha256?.toLowerCase()) {
    throw new IvaInputError('FileChecksumMismatch', 'the file does not match the SHA-256 given for it');
  }
  return body.digest('hex');
}

interface RawAnswer {
  status: number;
  body: Buffer;
  /** When the request could first reach IVA (ms). */
  sentAt: number;
  /** The gateway's Date header, in ms, to correct clock skew. */
  serverTime?: number;
}

/** Below this the Date header's one-second resolution is noise, not skew. */
const SKEW_THRESHOLD_MS = 2_000;

/**
 * IVA's answer: its data id, or IVA's own error (with its code: IVA processed the
 * request and refused it). Anything else was not IVA speaking, so IVA may or may not
 * have the submission: ambiguous.
 */
function parseAnswer(
  kind: MediaKind,
  answer: RawAnswer,
  times: { sentAt: number; failedAt: number },
): { dataId: string; requestId: string } {
  const unreadable = (message: string): IvaAmbiguousError =>
    new IvaAmbiguousError(AMBIGUOUS_CODES.unreadable, message, times, { httpStatus: answer.status });
  let doc: unknown;
  try {
    doc = JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw unreadable(`IVA answered HTTP ${answer.status} with a body that is not JSON`);
  }
  if (!doc || typeof doc !== 'object')
    throw unreadable(`IVA answered HTTP ${answer.status} with JSON that is not an object`);
  const meta = (doc as { ResponseMetadata?: unknown }).ResponseMetadata as Record<string, unknown> | undefined;
  const requestId = meta && typeof meta['RequestId'] === 'string' ? meta['RequestId'] : undefined;
  // Error first, whatever the HTTP status: the gateway sends some errors with 200.
  const error = meta?.['Error'] as Record<string, unknown> | undefined;
  if (error && typeof error === 'object' && typeof error['Code'] === 'string' && error['Code'] !== '') {
    const message = typeof error['Message'] === 'string' ? error['Message'] : '';
    throw new IvaError({ code: error['Code'], message, requestId, httpStatus: answer.status });
  }
  if (answer.status < 200 || answer.status >= 300) {
    throw unreadable(`IVA answered HTTP ${answer.status} without an error code`);
  }
  const result = (doc as { Result?: unknown }).Result as Record<string, unknown> | undefined;
  const dataId = result?.[KIND_PROTOCOL[kind].idKey];
  if (typeof dataId !== 'string' || dataId === '') {
    throw unreadable(`IVA answered success without Result.${KIND_PROTOCOL[kind].idKey}`);
  }
  return { dataId, requestId: requestId ?? '' };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new IvaAbortedError(signal.reason));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new IvaAbortedError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function toIvaError(error: unknown): IvaError {
  if (error instanceof IvaError) return error;
  return new IvaNetworkError(`request to IVA failed: ${(error as Error)?.message ?? String(error)}`, error);
}

/** Full jitter: a random wait up to the capped exponential step. */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(retry, 30));
  return Math.floor(random() * cap);
}

export function createIvaClient(config: IvaClientConfig): IvaClient {
  const endpoint = new URL(config.endpoint ?? DEFAULTS.ivaEndpoint);
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')
    throw new TypeError(`IVA endpoint must be http(s), got ${endpoint.protocol}`);
  const secure = endpoint.protocol === 'https:';
  // URL.host already omits the default port, as the signature requires.
  const host = endpoint.host;
  const path = endpoint.pathname.endsWith('/') ? endpoint.pathname : `${endpoint.pathname}/`;
  const region = config.region ?? DEFAULTS.ivaRegion;
  const service = config.service ?? DEFAULTS.ivaService;
  const timeoutMs = config.timeoutMs ?? DEFAULTS.ivaTimeoutMs;
  const minThroughput = config.minThroughputBytesPerSecond ?? DEFAULT_MIN_THROUGHPUT_BYTES_PER_SECOND;
  const attemptTimeoutFor = (bodyLength: number): number => timeoutMs + Math.ceil((bodyLength / minThroughput) * 1000);
  const baseDelayMs = config.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const maxDelayMs = config.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const minAttemptMs = config.minAttemptMs ?? DEFAULT_MIN_ATTEMPT_MS;
  const maxIdleReuseMs = config.maxIdleReuseMs ?? MAX_IDLE_REUSE_MS;
  // Keep-alive: a warm Lambda reuses its TLS connection instead of a new handshake per call.
  const agent = secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  let lastActivity = 0;
  /** Closes idle keep-alive connections that may have gone stale (see MAX_IDLE_REUSE_MS). */
  function dropStaleConnections(): void {
    if (Date.now() - lastActivity <= maxIdleReuseMs) return;
    for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }
  const send = secure ? httpsRequest : httpRequest;
  const clock = config.clock ?? Date.now;
  // Kept across calls: a warm Lambda with a skewed clock pays the InvalidTimestamp once.
  let clockOffsetMs = 0;

  async function credentials(limitMs: number): Promise<VolcCredentials> {
    const provider = config.credentials;
    if (typeof provider !== 'function') return provider;
    let timer: NodeJS.Timeout | undefined;
    // A hung secrets lookup must not hang the submission: it shares the attempt's limit.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new IvaTimeoutError(limitMs, 'no Volcengine credentials')), limitMs);
    });
    try {
      return await Promise.race([provider(), timeout]);
    } catch (cause) {
      if (cause instanceof IvaTimeoutError) throw cause;
      throw new IvaError({
        code: CREDENTIALS_UNAVAILABLE,
        message: `could not load Volcengine credentials: ${(cause as Error)?.message ?? cause}`,
        retryable: false,
        cause,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  function attempt(
    kind: MediaKind,
    body: PreparedBody,
    creds: VolcCredentials,
    attemptTimeoutMs: number,
    signal?: AbortSignal,
  ): Promise<RawAnswer> {
    const signed = sign({
      method: 'POST',
      host,
      path,
      query: { Action: KIND_PROTOCOL[kind].action, Version: IVA_VERSION },
      headers: { 'Content-Type': body.contentType },
      bodySha256: body.sha256,
      credentials: creds,
      region,
      service,
      date: new Date(clock() + clockOffsetMs),
    });
    dropStaleConnections();
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      let responded = false;
      /** When request bytes could first reach IVA: the connection is up (TLS included). */
      let sentAt: number | undefined;
      const req = send({
        agent,
        method: 'POST',
        protocol: endpoint.protocol,
        hostname: endpoint.hostname.replace(/^\[|\]$/g, ''),
        port: endpoint.port || undefined,
        path: `${path}?${signed.queryString}`,
        headers: { ...signed.headers, 'Content-Length': String(body.length) },
      });
      req.on('socket', (socket) => {
        // Node writes nothing before the connection is up; a reused one is up already.
        if (req.reusedSocket) sentAt = Date.now();
        else socket.once(secure ? 'secureConnect' : 'connect', () => (sentAt ??= Date.now()));
      });
      const finish = (outcome: { error: IvaError } | { answer: RawAnswer }): void => {
        if (settled) return;
        settled = true;
        lastActivity = Date.now();
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if ('error' in outcome) {
          req.destroy();
          reject(outcome.error);
        } else resolve(outcome.answer);
      };
      const fail = (error: IvaError): void => finish({ error });
      /** The connection failed: before it was up nothing was sent; after, IVA may have the request. */
      const lost = (message: string, cause?: unknown): IvaError =>
        sentAt === undefined
          ? new IvaNetworkError(message, cause)
          : new IvaAmbiguousError(
              AMBIGUOUS_CODES.connectionLost,
              `${message} (after the request was sent: IVA may have it)`,
              { sentAt, failedAt: Date.now() },
              { cause },
            );
      const onAbort = (): void => fail(new IvaAbortedError(signal?.reason));
      // One timer covers connect, upload and reading the answer: nothing can hang.
      const timer = setTimeout(
        () =>
          fail(
            sentAt === undefined
              ? new IvaTimeoutError(attemptTimeoutMs)
              : new IvaAmbiguousError(
                  AMBIGUOUS_CODES.timeout,
                  `IVA did not answer within ${attemptTimeoutMs} ms of the attempt's start (the request was sent: IVA may have it)`,
                  { sentAt, failedAt: Date.now() },
                ),
          ),
        attemptTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });

      req.on('response', (res: IncomingMessage) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        const at = sentAt ?? Date.now();
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES)
            return fail(
              new IvaAmbiguousError(
                AMBIGUOUS_CODES.unreadable,
                `IVA's answer exceeded ${MAX_RESPONSE_BYTES} bytes`,
                { sentAt: at, failedAt: Date.now() },
                res.statusCode !== undefined ? { httpStatus: res.statusCode } : {},
              ),
            );
          chunks.push(chunk);
        });
        res.on('end', () => {
          const serverTime = res.headers.date ? Date.parse(res.headers.date) : Number.NaN;
          finish({
            answer: {
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks),
              sentAt: at,
              ...(Number.isNaN(serverTime) ? {} : { serverTime }),
            },
          });
        });
        res.on('error', (error) => fail(lost(`connection failed while reading IVA's answer: ${error.message}`, error)));
        res.on('close', () => {
          if (!res.complete) fail(lost("connection closed before IVA's answer was complete"));
        });
      });
      req.on('error', (error) => {
        // An early answer (401 before the body was read) can break the upload: the answer wins.
        if (!responded) fail(lost(`request to IVA failed: ${error.message}`, error));
      });
      pipeline(body.open(), req).catch((error: unknown) => {
        // A file that cannot be read ends the body short of its Content-Length: IVA
        // cannot take an incomplete request, so the input error stands.
        if (error instanceof IvaError) fail(error);
        else if (!responded) fail(lost(`request to IVA failed: ${(error as Error)?.message ?? String(error)}`, error));
      });
    });
  }

  async function submit(input: SubmitInput, options: SubmitOptions = {}): Promise<SubmitResult> {
    const { signal, onRetry } = options;
    const budgetMs = options.budgetMs ?? config.budgetMs ?? DEFAULT_BUDGET_MS;
    const deadline = Date.now() + budgetMs;
    validate(input);
    if (signal?.aborted) throw new IvaAbortedError(signal.reason);
    const body = await prepareBody(input);

    let attempts = 0;
    let retries = 0;
    let resigned = false;
    let lastError: IvaError | undefined;
    let serverTime: number | undefined;
    for (;;) {
      if (signal?.aborted) throw new IvaAbortedError(signal.reason);
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new IvaBudgetExceededError(lastError ?? new IvaTimeoutError(0), attempts);
      }
      attempts += 1;
      serverTime = undefined;
      // This attempt's limit is what is left of the budget, not the per-attempt timeout.
      const attemptTimeoutMs = attemptTimeoutFor(body.length);
      const cutByBudget = remaining < attemptTimeoutMs;
      try {
        // Called per attempt, so a rotated secret is picked up on the next try.
        const started = Date.now();
        const limit = Math.min(attemptTimeoutMs, remaining);
        const creds = await credentials(limit);
        const answer = await attempt(input.kind, body, creds, Math.max(1, limit - (Date.now() - started)), signal);
        serverTime = answer.serverTime;
        const { dataId, requestId } = parseAnswer(input.kind, answer, { sentAt: answer.sentAt, failedAt: Date.now() });
        return { kind: input.kind, dataId, requestId, attempts };
      } catch (caught) {
        const error = toIvaError(caught);
        // IVA may have it: a second attempt could be a second submission. Never retried.
        if (error instanceof IvaAmbiguousError) {
          error.attempts = attempts;
          throw error;
        }
        // The budget ran out during the attempt before anything was sent: report what
        // made us retry until then (a rate limit, say), not the cut-off.
        if (error instanceof IvaTimeoutError && cutByBudget)
          throw new IvaBudgetExceededError(lastError ?? error, attempts);
        if (RESIGN_CODES.has(error.code)) {
          // Clock skew or a request held too long: a fresh X-Date fixes it, once.
          if (resigned) throw error;
          resigned = true;
          if (serverTime !== undefined) {
            const skew = serverTime - clock();
            clockOffsetMs = Math.abs(skew) > SKEW_THRESHOLD_MS ? skew : 0;
          }
          lastError = error;
          continue;
        }
        if (!error.retryable) throw error;
        lastError = error;
        const delayMs = backoffDelay(retries, baseDelayMs, maxDelayMs);
        retries += 1;
        // Never start a wait that ends past the budget.
        // Never start a wait that leaves less than minAttemptMs for the next attempt: an
        // attempt the budget cuts short after sending would be ambiguous.
        if (Date.now() + delayMs + minAttemptMs > deadline) throw new IvaBudgetExceededError(error, attempts);
        onRetry?.({ attempt: attempts, delayMs, error });
        await sleep(delayMs, signal);
      }
    }
  }

  return {
    submit,
    close: () => agent.destroy(),
  };
}
