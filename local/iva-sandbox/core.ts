/**
 * The sandbox's request handling, without a server: check the signature, validate the
 * body like the vendor page, fetch a Source=url object, and describe what was accepted
 * and the callback IVA would post. Two hosts use it: the HTTP server of `npm start` and
 * the tests (server.ts: faults, flow limit, timers for callbacks), and the sandbox
 * function of a `-c ivaMode=sandbox` stack (functions/iva-sandbox: the callback goes
 * through a queue, since a Lambda function is frozen once it has answered).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { IMAGE_MAX_BYTES } from '../../lib/config';
import { sha256Hex, type Query, type VolcCredentials } from '../../lib/signer/index';
import { verifySignature } from './auth';
import { SandboxError, invalidParameter } from './errors';
import { parseSubmission, tooLarge, type SandboxKind } from './multipart';
import type { CallbackLabel, CallbackStatus, SandboxAction, Submission } from './types';

export const IVA_VERSION = '2022-05-13';

const ACTIONS: Record<SandboxAction, { kind: SandboxKind; idKey: 'ImageID' | 'VideoID' }> = {
  AddAsyncTaskImageData: { kind: 'image', idKey: 'ImageID' },
  AddAsyncTaskVideoData: { kind: 'video', idKey: 'VideoID' },
};

/** One request as received: method, path and query, headers (lower-case names), body bytes. */
export interface SandboxHttpRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body was longer than the host accepts (its bytes were not kept). */
  overLimit?: boolean;
}

export interface SandboxCoreOptions {
  /** Accepted keys by access key id. */
  keys: ReadonlyMap<string, VolcCredentials>;
  region: string;
  service: string;
  /** Largest accepted distance between X-Date and the clock (default 15 min). */
  maxSkewMs?: number;
  now?: () => number;
  /** IVA's image limit (default 50 MB). */
  imageMaxBytes?: number;
  /** Timeout for fetching a Source=url object (default 30 s). */
  downloadTimeoutMs?: number;
  /** Aborts a download when the host shuts down. */
  signal?: AbortSignal;
}

export interface SandboxResponseMetadata {
  RequestId: string;
  Action: string;
  Version: string;
  Service: string;
  Region: string;
}

/** The vendor's ResponseMetadata for a request (Action and Version as the client sent them). */
export function responseMetadata(
  url: URL,
  requestId: string,
  service: string,
  region: string,
): SandboxResponseMetadata {
  return {
    RequestId: requestId,
    Action: url.searchParams.get('Action') ?? '',
    Version: url.searchParams.get('Version') ?? '',
    Service: service,
    Region: region,
  };
}

/** IVA's error answer for any failure: a SandboxError's own code and status, else 500 InternalError. */
export function errorAnswer(err: unknown, meta: SandboxResponseMetadata): { status: number; body: unknown } {
  const error =
    err instanceof SandboxError
      ? err
      : new SandboxError('InternalError', 500, 'The sandbox failed to process the request.');
  return {
    status: error.httpStatus,
    body: { ResponseMetadata: { ...meta, Error: { Code: error.code, Message: error.message } } },
  };
}

/**
 * Validates and accepts one AddAsyncTask{Image,Video}Data request, or throws the
 * gateway's SandboxError. Returns the submission and the `Result` to answer.
 */
export async function acceptSubmission(
  req: SandboxHttpRequest,
  requestId: string,
  options: SandboxCoreOptions,
): Promise<{ submission: Submission; result: Record<string, string> }> {
  const { url } = req;
  const action = url.searchParams.get('Action') ?? '';
  const version = url.searchParams.get('Version') ?? '';
  const route = Object.hasOwn(ACTIONS, action) ? ACTIONS[action as SandboxAction] : undefined;
  if (!route || version !== IVA_VERSION) {
    throw new SandboxError(
      'InvalidActionOrVersion',
      404,
      `Action "${action}" with Version "${version}" is not served here.`,
    );
  }
  if (req.method !== 'POST')
    throw new SandboxError('MethodNotAllowed', 405, `${action} accepts POST only, not ${req.method}.`);
  if (req.overLimit) throw invalidParameter('The request body is larger than this endpoint accepts.');

  const accessKeyId = verifySignature({
    method: req.method,
    path: url.pathname,
    query: queryOf(url),
    headers: req.headers,
    bodySha256: sha256Hex(req.body),
    credentials: options.keys,
    region: options.region,
    service: options.service,
    maxSkewMs: options.maxSkewMs ?? 15 * 60 * 1000,
    now: (options.now ?? Date.now)(),
  });

  const maxFileBytes = route.kind === 'image' ? (options.imageMaxBytes ?? IMAGE_MAX_BYTES) : Number.POSITIVE_INFINITY;
  const parsed = await parseSubmission(req.headers, req.body, route.kind, maxFileBytes);
  let file = parsed.file;
  if (parsed.source === 'url') file = await download(parsed.url!, route.kind, maxFileBytes, options);

  const bytes = file?.bytes ?? Buffer.alloc(0);
  const submission: Submission = {
    action: action as SandboxAction,
    kind: route.kind,
    taskId: parsed.taskId,
    name: parsed.name,
    ...(parsed.desc !== undefined ? { desc: parsed.desc } : {}),
    ...(parsed.algoParamConf !== undefined ? { algoParamConf: parsed.algoParamConf } : {}),
    source: parsed.source,
    ...(parsed.url !== undefined ? { url: parsed.url } : {}),
    file: bytes,
    ...(file?.fileName ? { fileName: file.fileName } : {}),
    ...(file?.contentType ? { fileContentType: file.contentType } : {}),
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    dataId: `${route.kind === 'image' ? 'img' : 'vid'}-${randomBytes(12).toString('hex')}`,
    requestId,
    accessKeyId,
    receivedAt: new Date().toISOString(),
  };
  return { submission, result: { [route.idKey]: submission.dataId } };
}

/** The name of the id key IVA answers for a submission (`ImageID` / `VideoID`). */
export function idKeyOf(s: Pick<Submission, 'kind'>): 'ImageID' | 'VideoID' {
  return s.kind === 'image' ? 'ImageID' : 'VideoID';
}

/*
 * The callback body. IVA's real callback format is unpublished (iva-api.md,
 * "Results"); the sandbox sends the expected case, JSON in the API's capitalisation:
 *   { "TaskID": "…", "ImageID" | "VideoID": "…",
 *     "Status": "success" | "failed",
 *     "Result": { "Labels": [ { "Name": "…", "Confidence": 0.99 } ], "Size": n, "Sha256": "…" },
 *     "Error": { "Code": "…", "Message": "…" },      // only when Status is "failed"
 *     "RequestId": "…" }                              // of the accepted submission
 */
export function callbackBody(
  s: Pick<Submission, 'kind' | 'taskId' | 'dataId' | 'size' | 'sha256' | 'requestId'>,
  status: CallbackStatus,
  labels: CallbackLabel[] = [{ Name: 'sandbox', Confidence: 0.99 }],
): string {
  return JSON.stringify({
    TaskID: s.taskId,
    [idKeyOf(s)]: s.dataId,
    Status: status,
    Result: { Labels: status === 'success' ? labels : [], Size: s.size, Sha256: s.sha256 },
    ...(status === 'failed'
      ? { Error: { Code: 'AnalysisFailed', Message: 'The sandbox was told to fail this analysis.' } }
      : {}),
    RequestId: s.requestId,
  });
}

/** Fetches a Source=url object the way IVA would: a plain GET, no credentials. */
async function download(
  url: string,
  kind: SandboxKind,
  maxBytes: number,
  options: SandboxCoreOptions,
): Promise<{ bytes: Buffer; contentType?: string }> {
  const timeout = AbortSignal.timeout(options.downloadTimeoutMs ?? 30_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    throw invalidParameter(`The Url could not be downloaded: ${describeFetchError(err)}.`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw invalidParameter(`${`The Url could not be downloaded: HTTP ${res.status} ${res.statusText}`.trimEnd()}.`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(kind, maxBytes);
  }
  let bytes: Buffer;
  try {
    bytes = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw invalidParameter(`The Url could not be downloaded: ${describeFetchError(err)}.`);
  }
  if (bytes.length > maxBytes) throw tooLarge(kind, maxBytes);
  if (bytes.length === 0) throw invalidParameter('The Url returned an empty body.');
  return { bytes, contentType: res.headers.get('content-type') ?? undefined };
}

export function queryOf(url: URL): Query {
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0]! : values;
  }
  return query;
}

/** Like the vendor's ids: UTC yyyyMMddHHmmss followed by random hex. */
export function newRequestId(): string {
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  return `${stamp}${randomBytes(10).toString('hex').toUpperCase()}`;
}

export function describeFetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
