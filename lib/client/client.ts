/**
 * A typed client of iva-bridge's HTTP API (README "Direct submissions", "Large files",
 * "Status", "Results over HTTPS"), for Node.js: no Lambda or AWS SDK types.
 *
 * - `sendFile` picks the route by size: a direct multipart POST when the body fits the
 *   direct limit, else `POST /v1/uploads` and a PUT of the file to the presigned URL with
 *   every header the ticket names, and above `multipartThresholdBytes` (64 MiB) an S3
 *   multipart upload: parts PUT in parallel (`partConcurrency`, 4), each streamed from its
 *   range of the file, a failed part retried alone, then `…/complete` with the ETags. The
 *   file is streamed from disk, never read whole: memory is the parts in flight's stream
 *   buffers, whatever the file size.
 * - Every POST carries an `Idempotency-Key`, the same on each retry of that call, so a
 *   retried request (throttling, 5xx, a dropped connection) is answered with the first
 *   request's outcome instead of submitting again. The PUT adds `If-None-Match: *`: when
 *   an earlier attempt stored the object and only its answer was lost, S3 answers 412 and
 *   the object is not written (and announced) a second time.
 * - Results that the API redirects to S3 (large or binary bodies) are fetched from the
 *   presigned URL without the API key.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, extname } from 'node:path';
import { DEFAULTS } from '../config';
import { KIND_PROTOCOL, REQUEST_FIELD } from '../iva/protocol';
import { kindFromExtension } from '../s3-intake/rules';
import {
  type AwsCredentials,
  type AwsCredentialsProvider,
  type AwsSigning,
  type ClientCredentials,
  defaultAwsCredentials,
  signRequest,
  signRequestSigV4,
} from './signing';
import { IvaBridgeError, IvaBridgeInputError, IvaBridgeNetworkError, isRetryableStatus } from './errors';
import {
  FINAL_STATUSES,
  type MediaKind,
  type Resolution,
  type ResultBody,
  type ResultList,
  type Sent,
  type Submission,
  type SubmissionPage,
  type UploadTicket,
  type CompletedUpload,
  type MultipartUploadTicket,
  type UploadPartUrl,
  type UploadPartUrls,
} from './types';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
const SUBMISSION_ID_HEADER = 'x-iva-bridge-submission-id';
const RESULT_ID_HEADER = 'x-iva-bridge-result-id';
/** Multipart framing and the Request field, kept free below the direct limit. */
const DIRECT_OVERHEAD_BYTES = 16 * 1024;
/** Above this, sendFile uses a multipart upload instead of one PUT. */
export const DEFAULT_MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024;
/** Parts of one file in flight at once. */
export const DEFAULT_PART_CONCURRENCY = 4;
/** A part URL this close to its ExpiresAt is fetched again before use. */
const URL_MARGIN_MS = 60_000;
/** Part URLs asked for per POST /v1/uploads/{id}/parts (the API's maximum). */
const PART_URL_BATCH = 100;

export interface RetryOptions {
  /** Attempts per call, the first included. @default 6 */
  attempts?: number;
  /** First backoff; doubles each retry, with jitter. @default 300 */
  baseDelayMs?: number;
  /** Longest single wait, Retry-After included. @default 10000 */
  maxDelayMs?: number;
}

export interface IvaBridgeClientOptions {
  /** The API's base URL, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/prod/` or `http://127.0.0.1:3000`. */
  apiUrl: string;
  /** Sent as `x-api-key` (only to an API that still takes one; the stack's API counts keys, it does not authenticate with them). */
  apiKey?: string;
  /** The client's access key: every API request is signed with it (HMAC-SHA256, IVA's scheme). */
  credentials?: ClientCredentials;
  /**
   * Sign with AWS SigV4 instead (service execute-api), for the stack's IAM API (`IamApiUrl`):
   * its region and the caller's AWS credentials (default: the SDK's provider chain).
   */
  aws?: AwsSigning;
  /** Largest direct body the API takes. @default 4500000 (the stack's default) */
  directMaxBytes?: number;
  retry?: RetryOptions;
  /** Per-attempt timeout of API calls (not of the file PUT). @default 60000 */
  timeoutMs?: number;
  /** Files larger than this go up as S3 multipart uploads. @default 67108864 (64 MiB) */
  multipartThresholdBytes?: number;
  /** Part size asked of the API (5 MiB–5 GiB). @default the API's choice (16 MiB, more for files over 160 GiB) */
  partSizeBytes?: number;
  /** Parts of one file in flight at once. @default 4 */
  partConcurrency?: number;
  fetch?: typeof fetch;
}

export interface SendFileInput {
  path: string;
  taskId: string;
  /** Default: from the file extension (an unknown one is an IvaBridgeInputError). */
  kind?: MediaKind;
  /** Default: the file name. */
  name?: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
  /** Default: from the file extension, else application/octet-stream. */
  contentType?: string;
  /** Default: a random UUID. Reuse it to make a whole re-run of the same send safe. */
  idempotencyKey?: string;
  /** Bytes of the file handed to the network so far (of `total`). */
  onProgress?: (sent: number, total: number) => void;
  /** Called before each retry (for progress displays and logs). */
  onRetry?: (info: { attempt: number; reason: string; delayMs: number }) => void;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** First poll interval; grows ×1.5 up to 5 s. @default 1000 */
  intervalMs?: number;
  /** Give up after this long (IvaBridgeError `WaitTimeout`). @default no limit */
  timeoutMs?: number;
  onStatus?: (submission: Submission) => void;
  signal?: AbortSignal;
}

interface CallOptions {
  method?: string;
  body?: () => NonNullable<RequestInit['body']>;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** Statuses returned to the caller instead of thrown (besides 2xx). */
  accept?: number[];
  onRetry?: SendFileInput['onRetry'];
  signal?: AbortSignal;
}

const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  jpe: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  bmp: 'image/bmp',
  webp: 'image/webp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  heic: 'image/heic',
  heif: 'image/heif',
  avif: 'image/avif',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  avi: 'video/x-msvideo',
  mkv: 'video/x-matroska',
  webm: 'video/webm',
  flv: 'video/x-flv',
  wmv: 'video/x-ms-wmv',
  mpeg: 'video/mpeg',
  mpg: 'video/mpeg',
  ts: 'video/mp2t',
  '3gp': 'video/3gpp',
  ogv: 'video/ogg',
};

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).slice(1).toLowerCase()] ?? 'application/octet-stream';
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** The API's error shape (IVA's): `{"ResponseMetadata":{"RequestId","Error":{"Code","Message"}}}`. */
function errorFrom(status: number, text: string, fallbackRequestId?: string): IvaBridgeError {
  let code = `Http${status}`;
  let message = text.slice(0, 300) || `HTTP ${status}`;
  let requestId = fallbackRequestId;
  let submissionId: string | undefined;
  try {
    const body = JSON.parse(text) as {
      ResponseMetadata?: { RequestId?: string; Error?: { Code?: string; Message?: string } };
      SubmissionId?: string;
      message?: string;
    };
    const error = body.ResponseMetadata?.Error;
    if (error?.Code) code = error.Code;
    if (error?.Message) message = error.Message;
    else if (typeof body.message === 'string') message = body.message;
    requestId = body.ResponseMetadata?.RequestId ?? requestId;
    submissionId = body.SubmissionId;
  } catch {
    // Not JSON (a proxy's HTML page): keep the text.
  }
  return new IvaBridgeError(code, message, {
    status,
    retryable: isRetryableStatus(status),
    ...(requestId ? { requestId } : {}),
    ...(submissionId ? { submissionId } : {}),
  });
}

function retryAfterMs(res: Response | IncomingMessage): number | undefined {
  const raw = res instanceof Response ? res.headers.get('retry-after') : res.headers['retry-after'];
  if (typeof raw !== 'string') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
}

/** `limit` and `cursor` of a listing page, after the fixed parameters. */
function pageQuery(options: { limit?: number; cursor?: string }, fixed: Record<string, string> = {}): string {
  const query = new URLSearchParams(fixed);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor) query.set('cursor', options.cursor);
  return query.toString();
}

/** Every item of a paged listing, following NextCursor, 100 a page. */
async function* allPages(
  list: (page: { limit: number; cursor?: string }) => Promise<SubmissionPage>,
): AsyncGenerator<Submission> {
  let cursor: string | undefined;
  do {
    const page = await list({ limit: 100, ...(cursor ? { cursor } : {}) });
    yield* page.Items;
    cursor = page.NextCursor;
  } while (cursor);
}

export class IvaBridgeClient {
  readonly apiUrl: string;
  private readonly apiKey: string | undefined;
  private readonly credentials: ClientCredentials | undefined;
  private readonly aws: AwsSigning | undefined;
  private awsCredentials: Promise<AwsCredentials | AwsCredentialsProvider> | undefined;
  private readonly directMaxBytes: number;
  private readonly retry: Required<RetryOptions>;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly multipartThresholdBytes: number;
  private readonly partSizeBytes: number | undefined;
  private readonly partConcurrency: number;

  constructor(options: IvaBridgeClientOptions) {
    let url: URL;
    try {
      url = new URL(options.apiUrl);
    } catch {
      throw new IvaBridgeInputError('InvalidApiUrl', `Not a URL: ${options.apiUrl}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new IvaBridgeInputError('InvalidApiUrl', `The API URL must be http(s): ${options.apiUrl}`);
    this.apiUrl = url.href.endsWith('/') ? url.href : `${url.href}/`;
    this.apiKey = options.apiKey;
    this.credentials = options.credentials;
    this.aws = options.aws;
    this.directMaxBytes = options.directMaxBytes ?? DEFAULTS.directMaxBytes;
    this.retry = {
      attempts: options.retry?.attempts ?? 6,
      baseDelayMs: options.retry?.baseDelayMs ?? 300,
      maxDelayMs: options.retry?.maxDelayMs ?? 10_000,
    };
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.fetchImpl = options.fetch ?? fetch;
    this.multipartThresholdBytes = options.multipartThresholdBytes ?? DEFAULT_MULTIPART_THRESHOLD_BYTES;
    this.partSizeBytes = options.partSizeBytes;
    this.partConcurrency = Math.max(1, options.partConcurrency ?? DEFAULT_PART_CONCURRENCY);
  }

  private url(path: string): string {
    return new URL(path.replace(/^\//, ''), this.apiUrl).href;
  }

  private delay(attempt: number, hint?: number): number {
    const backoff = this.retry.baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
    return Math.min(this.retry.maxDelayMs, Math.max(hint ?? 0, backoff));
  }

  /** SigV4 with the caller's AWS credentials (`aws`), else the client key (HMAC-SHA256), else as is. */
  private async sign(url: string, init: RequestInit): Promise<{ url: string; init: RequestInit }> {
    if (this.aws) {
      const aws = this.aws;
      this.awsCredentials ??= aws.credentials ? Promise.resolve(aws.credentials) : defaultAwsCredentials();
      try {
        return await signRequestSigV4(url, init, await this.awsCredentials, aws.region);
      } catch (error) {
        // Nothing was sent: no credentials in the chain, an expired SSO session, a broken profile.
        throw new IvaBridgeInputError(
          'AwsCredentialsUnavailable',
          `cannot sign with your AWS credentials (${describe(error)}): set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role, or sign with a client key instead`,
        );
      }
    }
    return this.credentials ? signRequest(url, init, this.credentials) : { url, init };
  }

  /** One API call with retries; 2xx (and `accept`) come back, anything else is thrown. */
  private async call(path: string, options: CallOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    if (options.idempotencyKey) headers[IDEMPOTENCY_KEY_HEADER] = options.idempotencyKey;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const init: RequestInit = {
          method: options.method ?? 'GET',
          headers,
          redirect: 'manual',
          ...(options.body ? { body: options.body() } : {}),
          signal: options.signal
            ? AbortSignal.any([options.signal, AbortSignal.timeout(this.timeoutMs)])
            : AbortSignal.timeout(this.timeoutMs),
        };
        // Signed per attempt: a fresh X-Date and nonce, since each signature is accepted once.
        const signed = await this.sign(this.url(path), init);
        res = await this.fetchImpl(signed.url, signed.init);
      } catch (error) {
        if (options.signal?.aborted || error instanceof IvaBridgeInputError) throw error;
        if (attempt >= this.retry.attempts)
          throw new IvaBridgeNetworkError(
            `${options.method ?? 'GET'} ${path} failed after ${attempt} attempts: ${describe(error)}`,
            error,
          );
        const delayMs = this.delay(attempt);
        options.onRetry?.({ attempt, reason: describe(error), delayMs });
        await sleep(delayMs, options.signal);
        continue;
      }
      if (res.ok || options.accept?.includes(res.status)) return res;
      const text = await res.text().catch(() => '');
      const error = errorFrom(res.status, text, res.headers.get('x-amzn-requestid') ?? undefined);
      if (!error.retryable || attempt >= this.retry.attempts) throw error;
      const delayMs = this.delay(attempt, retryAfterMs(res));
      options.onRetry?.({ attempt, reason: `${res.status} ${error.code}`, delayMs });
      await sleep(delayMs, options.signal);
    }
  }

  private async json<T>(path: string, options?: CallOptions): Promise<T> {
    return (await (await this.call(path, options)).json()) as T;
  }

  async getSubmission(id: string, signal?: AbortSignal): Promise<Submission> {
    return this.json<Submission>(`v1/submissions/${encodeURIComponent(id)}`, signal ? { signal } : {});
  }

  async listTaskSubmissions(
    taskId: string,
    options: { limit?: number; cursor?: string; signal?: AbortSignal } = {},
  ): Promise<SubmissionPage> {
    const q = pageQuery(options);
    return this.json<SubmissionPage>(
      `v1/tasks/${encodeURIComponent(taskId)}/submissions${q ? `?${q}` : ''}`,
      options.signal ? { signal: options.signal } : {},
    );
  }

  /** Submissions of every task in one status (GET /v1/submissions?status=…), e.g. `uncertain`. */
  async listSubmissions(
    status: string,
    options: { limit?: number; cursor?: string; signal?: AbortSignal } = {},
  ): Promise<SubmissionPage> {
    return this.json<SubmissionPage>(
      `v1/submissions?${pageQuery(options, { status })}`,
      options.signal ? { signal: options.signal } : {},
    );
  }

  /** Every submission in one status, page by page. */
  iterateSubmissions(status: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Submission> {
    return allPages((page) => this.listSubmissions(status, { ...page, ...options }));
  }

  /**
   * The owner's verdict on an `uncertain` submission. Throws IvaBridgeError
   * `SubmissionNotUncertain` (409) for any other status.
   */
  async resolve(id: string, resolution: Resolution, signal?: AbortSignal): Promise<Submission> {
    return this.json<Submission>(`v1/submissions/${encodeURIComponent(id)}/resolve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: () => JSON.stringify(resolution),
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * Sends an `uncertain` upload to IVA again (its object is queued to the intake): the
   * submission comes back `pending`. Throws `ResubmitNeedsFile` (409) for a direct
   * submission, whose bytes are not kept, and `SubmissionNotUncertain` for other states.
   */
  async resubmit(id: string, options: { note?: string; signal?: AbortSignal } = {}): Promise<Submission> {
    return this.json<Submission>(`v1/submissions/${encodeURIComponent(id)}/resubmit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: () => JSON.stringify(options.note !== undefined ? { Note: options.note } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Every submission of a task, newest first, page by page. */
  iterateTaskSubmissions(taskId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Submission> {
    return allPages((page) => this.listTaskSubmissions(taskId, { ...page, ...options }));
  }

  /** Polls until the submission reaches a final state (FINAL_STATUSES) and returns it. */
  async waitFor(id: string, options: WaitOptions = {}): Promise<Submission> {
    const started = Date.now();
    let interval = options.intervalMs ?? 1000;
    for (;;) {
      const submission = await this.getSubmission(id, options.signal);
      options.onStatus?.(submission);
      if (FINAL_STATUSES.has(submission.Status)) return submission;
      if (options.timeoutMs !== undefined && Date.now() - started + interval > options.timeoutMs)
        throw new IvaBridgeError(
          'WaitTimeout',
          `Submission ${id} is still ${submission.Status} after ${Math.round((Date.now() - started) / 1000)} s`,
          { submissionId: id },
        );
      await sleep(interval, options.signal);
      interval = Math.min(5000, interval * 1.5);
    }
  }

  async listResults(id: string, signal?: AbortSignal): Promise<ResultList> {
    return this.json<ResultList>(`v1/submissions/${encodeURIComponent(id)}/results`, signal ? { signal } : {});
  }

  /**
   * The final callback body (or, with `resultId`, one listed by listResults), byte for
   * byte. Throws IvaBridgeError `ResultNotReady` (404) while there is none.
   */
  async getResult(id: string, options: { resultId?: string; signal?: AbortSignal } = {}): Promise<ResultBody> {
    const path = `v1/submissions/${encodeURIComponent(id)}/${options.resultId ? `results/${encodeURIComponent(options.resultId)}` : 'result'}`;
    const res = await this.call(path, {
      accept: [302, 303, 307],
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const resultId = res.headers.get(RESULT_ID_HEADER) ?? undefined;
    if (res.status >= 300) {
      const location = res.headers.get('location');
      await res.body?.cancel();
      if (!location) throw new IvaBridgeError('MissingLocation', `${path} redirected without a Location`);
      return this.fetchRedirected(location, resultId, options.signal);
    }
    return {
      resultId,
      contentType: res.headers.get('content-type') ?? 'application/octet-stream',
      bytes: new Uint8Array(await res.arrayBuffer()),
    };
  }

  /** The presigned S3 URL: no API key (it is not S3's business), retried on network errors and 5xx. */
  private async fetchRedirected(url: string, resultId: string | undefined, signal?: AbortSignal): Promise<ResultBody> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.fetchImpl(url, signal ? { signal } : {});
        if (res.ok)
          return {
            resultId,
            contentType: res.headers.get('content-type') ?? 'application/octet-stream',
            bytes: new Uint8Array(await res.arrayBuffer()),
          };
        const text = await res.text().catch(() => '');
        if (res.status < 500 || attempt >= this.retry.attempts)
          throw new IvaBridgeError(
            `S3Http${res.status}`,
            `Fetching the stored result from S3 failed: HTTP ${res.status} ${text.slice(0, 200)}`,
            {
              status: res.status,
            },
          );
      } catch (error) {
        if (error instanceof IvaBridgeError || signal?.aborted || attempt >= this.retry.attempts) throw error;
      }
      await sleep(this.delay(attempt), signal);
    }
  }

  /** Sends one file by the route its size allows; see the module comment. */
  async sendFile(input: SendFileInput): Promise<Sent> {
    let size: number;
    try {
      const info = await stat(input.path);
      if (!info.isFile()) throw new Error('not a regular file');
      size = info.size;
    } catch (error) {
      throw new IvaBridgeInputError(
        'FileUnreadable',
        `cannot read ${input.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    if (size === 0) throw new IvaBridgeInputError('EmptyFile', `${input.path} is empty`);
    const kind = input.kind ?? kindFromExtension(input.path);
    if (!kind)
      throw new IvaBridgeInputError(
        'UnknownKind',
        `cannot tell image from video by the extension of ${input.path}: pass --kind image|video`,
      );
    const name = input.name ?? basename(input.path);
    const contentType = input.contentType ?? contentTypeOf(input.path);
    const key = input.idempotencyKey ?? randomUUID();
    const request = {
      TaskID: input.taskId,
      [KIND_PROTOCOL[kind].mediaKey]: {
        Name: name,
        Source: 'file',
        ...(input.desc !== undefined ? { Desc: input.desc } : {}),
      },
      ...(input.algoParamConf ? { AlgoParamConf: input.algoParamConf } : {}),
    };
    const requestJson = JSON.stringify(request);
    const fits = size + Buffer.byteLength(requestJson) + DIRECT_OVERHEAD_BYTES <= this.directMaxBytes;
    if (fits) {
      try {
        return await this.sendDirect(input, { kind, name, contentType, size, requestJson, key });
      } catch (error) {
        // The stack may be configured with a lower limit than the default: fall back.
        // 413 from direct-submit, 403 from the authorizer's size guard: the code says which.
        if (!(error instanceof IvaBridgeError && error.code === 'PayloadTooLarge')) throw error;
      }
    }
    if (size > this.multipartThresholdBytes) return this.sendByMultipart(input, { kind, name, contentType, size, key });
    return this.sendByUpload(input, { kind, name, contentType, size, key });
  }

  private async sendDirect(
    input: SendFileInput,
    file: { kind: MediaKind; name: string; contentType: string; size: number; requestJson: string; key: string },
  ): Promise<Sent> {
    const blob = await openAsBlob(input.path, { type: file.contentType });
    input.onProgress?.(0, file.size);
    const res = await this.call(file.kind === 'image' ? 'v1/images' : 'v1/videos', {
      method: 'POST',
      idempotencyKey: `${file.key}-direct`,
      // A fresh form per attempt; the file part is read from disk each time, not held.
      body: () => {
        const form = new FormData();
        form.set(KIND_PROTOCOL[file.kind].fileField, blob, basename(input.path));
        form.set(REQUEST_FIELD, file.requestJson);
        return form;
      },
      ...(input.onRetry ? { onRetry: input.onRetry } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
    });
    const body = (await res.json()) as {
      ResponseMetadata?: { RequestId?: string };
      Result?: { ImageID?: string; VideoID?: string; SubmissionId?: string };
    };
    input.onProgress?.(file.size, file.size);
    const submissionId = body.Result?.SubmissionId ?? res.headers.get(SUBMISSION_ID_HEADER);
    if (!submissionId) throw new IvaBridgeError('MissingSubmissionId', 'The API answered without a SubmissionId');
    const dataId = body.Result?.ImageID ?? body.Result?.VideoID;
    const requestId = body.ResponseMetadata?.RequestId;
    return {
      submissionId,
      route: 'direct',
      kind: file.kind,
      ...(dataId ? { dataId } : {}),
      ...(requestId ? { requestId } : {}),
    };
  }

  /** POST /v1/uploads for a presigned PUT URL. */
  async createUpload(
    input: {
      taskId: string;
      kind: MediaKind;
      name: string;
      size: number;
      contentType?: string;
      desc?: string;
      algoParamConf?: Record<string, unknown>;
    },
    options: Pick<SendFileInput, 'idempotencyKey' | 'onRetry' | 'signal'> = {},
  ): Promise<UploadTicket> {
    return this.postUpload<UploadTicket>(input, {}, options);
  }

  private async sendByUpload(
    input: SendFileInput,
    file: { kind: MediaKind; name: string; contentType: string; size: number; key: string },
  ): Promise<Sent> {
    const ticket = await this.createUpload(
      {
        taskId: input.taskId,
        kind: file.kind,
        name: file.name,
        size: file.size,
        contentType: file.contentType,
        ...(input.desc !== undefined ? { desc: input.desc } : {}),
        ...(input.algoParamConf ? { algoParamConf: input.algoParamConf } : {}),
      },
      { ...input, idempotencyKey: `${file.key}-upload` },
    );
    await this.putFile(ticket, input.path, file.size, input);
    return { submissionId: ticket.SubmissionId, route: 'upload', kind: file.kind };
  }

  /** POST /v1/uploads with `"Multipart": true`: an S3 multipart upload and its first part URLs. */
  async createMultipartUpload(
    input: {
      taskId: string;
      kind: MediaKind;
      name: string;
      size: number;
      contentType?: string;
      desc?: string;
      algoParamConf?: Record<string, unknown>;
      /** Default: the API's choice. */
      partSize?: number;
    },
    options: Pick<SendFileInput, 'idempotencyKey' | 'onRetry' | 'signal'> = {},
  ): Promise<MultipartUploadTicket> {
    return this.postUpload<MultipartUploadTicket>(
      input,
      { Multipart: true, ...(input.partSize !== undefined ? { PartSize: input.partSize } : {}) },
      options,
    );
  }

  /** POST /v1/uploads: the upload's fields (plus `extra`), under one Idempotency-Key across retries. */
  private postUpload<T>(
    input: {
      taskId: string;
      kind: MediaKind;
      name: string;
      size: number;
      contentType?: string;
      desc?: string;
      algoParamConf?: Record<string, unknown>;
    },
    extra: Record<string, unknown>,
    options: Pick<SendFileInput, 'idempotencyKey' | 'onRetry' | 'signal'>,
  ): Promise<T> {
    const body = JSON.stringify({
      TaskID: input.taskId,
      Kind: input.kind,
      Name: input.name,
      Size: input.size,
      ContentType: input.contentType ?? 'application/octet-stream',
      ...extra,
      ...(input.desc !== undefined ? { Desc: input.desc } : {}),
      ...(input.algoParamConf ? { AlgoParamConf: input.algoParamConf } : {}),
    });
    return this.json<T>('v1/uploads', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: () => body,
      idempotencyKey: options.idempotencyKey ?? randomUUID(),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Fresh presigned URLs for parts of a multipart upload (at most 100 a call). */
  async uploadPartUrls(submissionId: string, partNumbers: number[], signal?: AbortSignal): Promise<UploadPartUrls> {
    return this.json<UploadPartUrls>(`v1/uploads/${encodeURIComponent(submissionId)}/parts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: () => JSON.stringify({ PartNumbers: partNumbers }),
      ...(signal ? { signal } : {}),
    });
  }

  /** Completes a multipart upload with every part's ETag; the object then takes the S3 path. */
  async completeUpload(
    submissionId: string,
    parts: { PartNumber: number; ETag: string }[],
    options: Pick<SendFileInput, 'idempotencyKey' | 'onRetry' | 'signal'> = {},
  ): Promise<CompletedUpload> {
    const body = JSON.stringify({ Parts: parts });
    return this.json<CompletedUpload>(`v1/uploads/${encodeURIComponent(submissionId)}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: () => body,
      idempotencyKey: options.idempotencyKey ?? randomUUID(),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Aborts a multipart upload: its parts are deleted, the submission ends `failed` `UploadAborted`. */
  async abortUpload(submissionId: string, signal?: AbortSignal): Promise<Submission> {
    return this.json<Submission>(`v1/uploads/${encodeURIComponent(submissionId)}/abort`, {
      method: 'POST',
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * A multipart upload of the file: the plan, every part PUT (partConcurrency at once,
   * each from its own range of the file, retried alone), then complete. A send that fails
   * leaves the upload open: the same `idempotencyKey` resumes it (the API answers the same
   * plan), `abortUpload` ends it, or the sweep expires it.
   */
  private async sendByMultipart(
    input: SendFileInput,
    file: { kind: MediaKind; name: string; contentType: string; size: number; key: string },
  ): Promise<Sent> {
    const ticket = await this.createMultipartUpload(
      {
        taskId: input.taskId,
        kind: file.kind,
        name: file.name,
        size: file.size,
        contentType: file.contentType,
        ...(this.partSizeBytes !== undefined ? { partSize: this.partSizeBytes } : {}),
        ...(input.desc !== undefined ? { desc: input.desc } : {}),
        ...(input.algoParamConf ? { algoParamConf: input.algoParamConf } : {}),
      },
      { ...input, idempotencyKey: `${file.key}-upload` },
    );
    const parts = await this.putParts(ticket, input.path, file.size, input);
    await this.completeUpload(ticket.SubmissionId, parts, { ...input, idempotencyKey: `${file.key}-complete` });
    return { submissionId: ticket.SubmissionId, route: 'multipart', kind: file.kind };
  }

  /**
   * PUTs every part of a multipart ticket from `path` and returns their ETags in part
   * order. Each part is streamed from its byte range of the file (`createReadStream`
   * start/end); a part whose PUT fails (network, 5xx, 429, an expired URL) is sent again,
   * alone, with a fresh URL when its own has expired. Progress counts the bytes handed to
   * the network: a part sent again counts from its start again.
   */
  async putParts(
    ticket: Pick<MultipartUploadTicket, 'SubmissionId' | 'PartSize' | 'PartCount' | 'Parts' | 'ExpiresAt'>,
    path: string,
    total: number,
    options: Pick<SendFileInput, 'onProgress' | 'onRetry' | 'signal'> = {},
  ): Promise<{ PartNumber: number; ETag: string }[]> {
    const urls = new Map<number, { url: string; size: number; expiresAtMs: number }>();
    const keep = (parts: UploadPartUrl[], expiresAt: string): void => {
      for (const p of parts) urls.set(p.PartNumber, { url: p.Url, size: p.Size, expiresAtMs: Date.parse(expiresAt) });
    };
    keep(ticket.Parts, ticket.ExpiresAt);
    // One fetch of URLs at a time; a worker that needs one waits for the batch holding it.
    let fetching: Promise<void> | undefined;
    const urlFor = async (n: number): Promise<{ url: string; size: number }> => {
      for (;;) {
        const known = urls.get(n);
        if (known && known.expiresAtMs - Date.now() > URL_MARGIN_MS) return known;
        if (!fetching) {
          const wanted: number[] = [];
          for (let m = n; m <= ticket.PartCount && wanted.length < PART_URL_BATCH; m++) {
            const u = urls.get(m);
            if (!u || u.expiresAtMs - Date.now() <= URL_MARGIN_MS) wanted.push(m);
          }
          fetching = this.uploadPartUrls(ticket.SubmissionId, wanted, options.signal)
            .then((fresh) => keep(fresh.Parts, fresh.ExpiresAt))
            .finally(() => {
              fetching = undefined;
            });
        }
        await fetching;
      }
    };
    const inFlight = new Map<number, number>();
    let acknowledged = 0;
    const report = (): void => {
      let sent = acknowledged;
      for (const n of inFlight.values()) sent += n;
      options.onProgress?.(Math.min(sent, total), total);
    };
    const etags = new Map<number, string>();
    let next = 1;
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next <= ticket.PartCount) {
        const n = next++;
        try {
          etags.set(n, await this.putPart(n, ticket.PartSize, path, urlFor, urls, inFlight, report, options));
          acknowledged += inFlight.get(n) ?? 0;
          inFlight.delete(n);
          report();
        } catch (error) {
          failure ??= error;
        }
      }
    };
    report();
    await Promise.all(Array.from({ length: Math.min(this.partConcurrency, ticket.PartCount) }, worker));
    if (failure !== undefined) throw failure;
    return [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
  }

  /** One part, with its retries; the ETag S3 answered. */
  private async putPart(
    n: number,
    partSize: number,
    path: string,
    urlFor: (n: number) => Promise<{ url: string; size: number }>,
    urls: Map<number, unknown>,
    inFlight: Map<number, number>,
    report: () => void,
    options: Pick<SendFileInput, 'onRetry' | 'signal'>,
  ): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const { url, size } = await urlFor(n);
      const start = (n - 1) * partSize;
      inFlight.set(n, 0);
      let outcome: { status: number; text: string; etag?: string; retryAfter?: number };
      try {
        outcome = await putRange(url, path, start, size, options.signal, (sent) => {
          inFlight.set(n, sent);
          report();
        });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (attempt >= this.retry.attempts)
          throw new IvaBridgeNetworkError(
            `PUT of part ${n} of ${path} failed after ${attempt} attempts: ${describe(error)}`,
            error,
          );
        inFlight.set(n, 0);
        report();
        const delayMs = this.delay(attempt);
        options.onRetry?.({ attempt, reason: `part ${n}: ${describe(error)}`, delayMs });
        await sleep(delayMs, options.signal);
        continue;
      }
      if (outcome.status >= 200 && outcome.status < 300 && outcome.etag) return outcome.etag;
      const code = /<Code>([^<]+)<\/Code>/.exec(outcome.text)?.[1] ?? `S3Http${outcome.status}`;
      // 403: the URL expired (or its session did): a fresh one, then again.
      const expired = outcome.status === 403;
      if (expired) urls.delete(n);
      const retryable = expired || outcome.status >= 500 || outcome.status === 429 || outcome.status === 409;
      if (!retryable || attempt >= this.retry.attempts)
        throw new IvaBridgeError(
          code,
          `S3 refused part ${n} of ${path}: HTTP ${outcome.status} ${code}${outcome.status === 404 ? ' (the upload was aborted or expired: send again)' : ''}`,
          { status: outcome.status, retryable },
        );
      inFlight.set(n, 0);
      report();
      const delayMs = this.delay(attempt, outcome.retryAfter);
      options.onRetry?.({ attempt, reason: `part ${n}: S3 ${outcome.status} ${code}`, delayMs });
      await sleep(delayMs, options.signal);
    }
  }

  /** PUTs the file to a ticket's URL, streamed, retried whole on network errors and 5xx. */
  async putFile(
    ticket: Pick<UploadTicket, 'Url' | 'Method' | 'Headers'>,
    path: string,
    size: number,
    options: Pick<SendFileInput, 'onProgress' | 'onRetry' | 'signal'> = {},
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let outcome: { status: number; text: string; retryAfter?: number };
      try {
        outcome = await putOnce(ticket, path, size, options);
      } catch (error) {
        if (options.signal?.aborted || error instanceof IvaBridgeInputError) throw error;
        if (attempt >= this.retry.attempts)
          throw new IvaBridgeNetworkError(`PUT of ${path} failed after ${attempt} attempts: ${describe(error)}`, error);
        const delayMs = this.delay(attempt);
        options.onRetry?.({ attempt, reason: describe(error), delayMs });
        await sleep(delayMs, options.signal);
        continue;
      }
      // 412: an earlier attempt stored the object and only its answer was lost.
      if ((outcome.status >= 200 && outcome.status < 300) || outcome.status === 412) {
        options.onProgress?.(size, size);
        return;
      }
      // 409 ConditionalRequestConflict: a concurrent conditional write; retry like a 5xx.
      const retryable = outcome.status >= 500 || outcome.status === 409 || outcome.status === 429;
      const code = /<Code>([^<]+)<\/Code>/.exec(outcome.text)?.[1] ?? `S3Http${outcome.status}`;
      if (!retryable || attempt >= this.retry.attempts)
        throw new IvaBridgeError(
          code,
          `S3 refused the upload of ${path}: HTTP ${outcome.status} ${code}${outcome.status === 403 ? ' (the upload URL may have expired: send again)' : ''}`,
          { status: outcome.status, retryable },
        );
      const delayMs = this.delay(attempt, outcome.retryAfter);
      options.onRetry?.({ attempt, reason: `S3 ${outcome.status} ${code}`, delayMs });
      await sleep(delayMs, options.signal);
    }
  }
}

/** What S3 answered one streamed PUT: status, the start of its body, ETag and Retry-After. */
interface PutAnswer {
  status: number;
  text: string;
  etag?: string;
  retryAfter?: number;
}

/**
 * One streamed PUT of `size` bytes of the file (from `start`), with an exact Content-Length
 * (S3 takes no chunked uploads); memory stays one read buffer whatever the size.
 */
function streamPut(
  target: { url: string; method: string; headers: Record<string, string> },
  path: string,
  range: { start: number; size: number },
  signal: AbortSignal | undefined,
  onSent: (sent: number) => void,
): Promise<PutAnswer> {
  const { start, size } = range;
  return new Promise((resolve, reject) => {
    const url = new URL(target.url);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: target.method,
      headers: { ...target.headers, 'content-length': String(size) },
      ...(signal ? { signal } : {}),
    });
    // An empty body is no range of the file (createReadStream takes no end before its start).
    const file =
      size > 0 ? createReadStream(path, { start, end: start + size - 1, highWaterMark: 256 * 1024 }) : undefined;
    let sent = 0;
    file?.on('data', (chunk) => {
      sent += chunk.length;
      onSent(Math.min(sent, size));
    });
    file?.on('error', (error) => {
      req.destroy(error);
      reject(error);
    });
    req.on('error', (error) => {
      file?.destroy();
      reject(error);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (chunks.length < 64) chunks.push(c);
      });
      res.on('end', () => {
        const retryAfter = retryAfterMs(res);
        const etag = res.headers.etag;
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8').slice(0, 2000),
          ...(typeof etag === 'string' && etag ? { etag } : {}),
          ...(retryAfter !== undefined ? { retryAfter } : {}),
        });
      });
      res.on('error', reject);
    });
    if (file) file.pipe(req);
    else req.end();
  });
}

/** The whole file to an upload ticket's URL; If-None-Match: * so a retry never overwrites. */
function putOnce(
  ticket: Pick<UploadTicket, 'Url' | 'Method' | 'Headers'>,
  path: string,
  size: number,
  options: Pick<SendFileInput, 'onProgress' | 'signal'>,
): Promise<PutAnswer> {
  options.onProgress?.(0, size);
  return streamPut(
    { url: ticket.Url, method: ticket.Method, headers: { ...ticket.Headers, 'if-none-match': '*' } },
    path,
    { start: 0, size },
    options.signal,
    (sent) => options.onProgress?.(sent, size),
  );
}

/** One part of a multipart upload, from `start` of the file, to its presigned URL. */
function putRange(
  target: string,
  path: string,
  start: number,
  size: number,
  signal: AbortSignal | undefined,
  onSent: (sent: number) => void,
): Promise<PutAnswer> {
  return streamPut({ url: target, method: 'PUT', headers: {} }, path, { start, size }, signal, onSent);
}

export function createIvaBridgeClient(options: IvaBridgeClientOptions): IvaBridgeClient {
  return new IvaBridgeClient(options);
}
