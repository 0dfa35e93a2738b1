/**
 * Results over HTTPS, for a client that holds only an API key:
 *
 * - `GET /v1/submissions/{id}/result`: the final callback body (the one the ledger's
 *   `Result` points at once the status is `completed` or `failed`), byte for byte, with
 *   the Content-Type it arrived with. 404 `ResultNotReady` while there is none.
 * - `GET /v1/submissions/{id}/results`: every callback body stored for the submission's
 *   data id (progress and final, oldest first), each with the URL that fetches it.
 * - `GET /v1/submissions/{id}/results/{ResultId}`: one of them.
 *
 * How a body is answered (README, "Results over HTTPS"): inline, 200, when it is at most
 * INLINE_RESULT_MAX_BYTES and valid UTF-8; otherwise 303 See Other to a presigned S3 GET
 * valid for RESULT_URL_TTL_SECONDS. Why: API Gateway (REST) passes a Lambda text body
 * through as UTF-8, so only UTF-8 text is byte-exact inline (binary responses would
 * need the content type in binaryMediaTypes, which would also base64 JSON requests), and
 * Lambda's 6 MB response limit counts the JSON-escaped body: 512 KiB of control
 * characters escapes to at most 3 MiB. S3 serves the stored object with its stored
 * Content-Type, whatever its size, so nothing is capped by Lambda.
 *
 * Bodies are found in S3 itself (the callback function stores each one at
 * `results/<TaskID>/<dataId>/<sha256>.<ext>`, or under `_unknown-task` when the body
 * named no TaskID), so the listing holds every body ever stored, whatever the ledger
 * kept.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { s3ObjectAbsence } from '../aws/errors';
import { keySegment } from '../callback/store';
import { RESULTS_PREFIX } from '../storage/prefixes';
import type { SubmissionRecord } from '../ledger/types';
import { ApiError } from './errors';
import { json } from './responses';
import { loadSubmission } from './status';
import type { ApiDeps, ApiResponse } from './types';
import type { ResultItem } from './wire';

/** Largest body answered inline (see the module comment for why 512 KiB). */
export const INLINE_RESULT_MAX_BYTES = 512 * 1024;
/** Lifetime of the presigned GET a large or binary body redirects to. */
export const RESULT_URL_TTL_SECONDS = 300;
/** Header naming the stored body (its ResultId) on every body answer. */
export const RESULT_ID_HEADER = 'x-iva-bridge-result-id';
const UNKNOWN_TASK_SEGMENT = '_unknown-task';
const RESULT_ID = /^[0-9a-f]{64}\.[a-z0-9]{1,10}$/;
const MAX_LISTED = 1000;

function submissionPath(id: string): string {
  return `/v1/submissions/${encodeURIComponent(id)}`;
}

/** `s3://bucket/key` (key kept as stored, percent signs included). */
function parseLocation(location: string): { bucket: string; key: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  return m?.[1] && m[2] ? { bucket: m[1], key: m[2] } : undefined;
}

/** The folders that can hold this submission's bodies. */
function resultPrefixes(record: SubmissionRecord): string[] {
  const prefixes = new Set<string>();
  const current = record.result ? parseLocation(record.result.location) : undefined;
  if (current) prefixes.add(current.key.slice(0, current.key.lastIndexOf('/') + 1));
  if (record.dataId) {
    const data = keySegment(record.dataId);
    if (record.taskId) prefixes.add(`${RESULTS_PREFIX}${keySegment(record.taskId)}/${data}/`);
    prefixes.add(`${RESULTS_PREFIX}${UNKNOWN_TASK_SEGMENT}/${data}/`);
  }
  return [...prefixes];
}

function isFinal(record: SubmissionRecord): boolean {
  return record.result !== undefined && record.result.status !== 'progress';
}

async function listBodies(
  record: SubmissionRecord,
  deps: ApiDeps,
): Promise<{ key: string; size: number; storedAt?: string }[]> {
  const found = new Map<string, { key: string; size: number; storedAt?: string }>();
  for (const prefix of resultPrefixes(record)) {
    const out = await deps.s3.send(
      new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, MaxKeys: MAX_LISTED }),
    );
    for (const o of out.Contents ?? []) {
      if (!o.Key) continue;
      const id = o.Key.slice(prefix.length);
      if (!RESULT_ID.test(id) || found.has(id)) continue;
      found.set(id, {
        key: o.Key,
        size: o.Size ?? 0,
        ...(o.LastModified ? { storedAt: o.LastModified.toISOString() } : {}),
      });
    }
  }
  return [...found.values()].sort((a, b) => (a.storedAt ?? '').localeCompare(b.storedAt ?? ''));
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

async function redirect(key: string, resultId: string, deps: ApiDeps, why: string): Promise<ApiResponse> {
  const url = await getSignedUrl(deps.s3, new GetObjectCommand({ Bucket: deps.bucket, Key: key }), {
    expiresIn: RESULT_URL_TTL_SECONDS,
  });
  const expiresAt = new Date((deps.now?.() ?? new Date()).getTime() + RESULT_URL_TTL_SECONDS * 1000).toISOString();
  return json(
    303,
    { ResultId: resultId, Url: url, ExpiresAt: expiresAt, Reason: why },
    { location: url, [RESULT_ID_HEADER]: resultId, 'cache-control': 'no-store' },
  );
}

/** One stored body: inline when small UTF-8 text, otherwise a redirect to S3. */
async function serveBody(key: string, deps: ApiDeps): Promise<ApiResponse> {
  const resultId = key.slice(key.lastIndexOf('/') + 1);
  let head: { ContentLength?: number; ContentType?: string };
  try {
    head = await deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key }));
  } catch (error) {
    // Missing, or hidden behind 403 (no s3:ListBucket): either way the result is not there to serve.
    if (s3ObjectAbsence(error) !== undefined)
      throw new ApiError('ResultNotFound', `The stored result ${resultId} is no longer in the bucket`);
    throw error;
  }
  const size = head.ContentLength ?? 0;
  if (size > INLINE_RESULT_MAX_BYTES)
    return redirect(key, resultId, deps, `larger than ${INLINE_RESULT_MAX_BYTES} bytes: fetch it from S3`);
  const out = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
  const text = utf8(bytes);
  if (text === undefined) return redirect(key, resultId, deps, 'not UTF-8 text: fetch it from S3 byte for byte');
  return {
    status: 200,
    headers: {
      'content-type': out.ContentType ?? head.ContentType ?? 'application/octet-stream',
      [RESULT_ID_HEADER]: resultId,
      'cache-control': 'no-store',
    },
    body: text,
  };
}

export async function handleGetResult(id: string, deps: ApiDeps): Promise<ApiResponse> {
  const record = await loadSubmission(id, deps);
  const location = record.result && isFinal(record) ? parseLocation(record.result.location) : undefined;
  if (!location || location.bucket !== deps.bucket) {
    const progress = record.result?.status === 'progress' ? ' (progress callbacks so far: see /results)' : '';
    throw new ApiError(
      'ResultNotReady',
      `Submission ${id.slice(0, 80)} is ${record.status} and has no final result yet${progress}; poll GET ${submissionPath(id)} until Status is completed or failed`,
    );
  }
  return serveBody(location.key, deps);
}

export async function handleListResults(id: string, deps: ApiDeps): Promise<ApiResponse> {
  const record = await loadSubmission(id, deps);
  const current = record.result ? parseLocation(record.result.location)?.key : undefined;
  const bodies = await listBodies(record, deps);
  const items: ResultItem[] = bodies.map((b) => {
    const resultId = b.key.slice(b.key.lastIndexOf('/') + 1);
    return {
      ResultId: resultId,
      Size: b.size,
      ...(b.storedAt ? { StoredAt: b.storedAt } : {}),
      Current: b.key === current,
      Url: `${submissionPath(id)}/results/${resultId}`,
    };
  });
  return json(200, {
    SubmissionId: record.id,
    Status: record.status,
    ...(record.result ? { ResultStatus: record.result.status } : {}),
    Items: items,
  });
}

export async function handleGetResultById(id: string, resultId: string, deps: ApiDeps): Promise<ApiResponse> {
  if (!RESULT_ID.test(resultId))
    throw new ApiError(
      'InvalidResultId',
      'A ResultId is the SHA-256 of the body and its extension, as listed by GET /v1/submissions/{id}/results',
    );
  const record = await loadSubmission(id, deps);
  for (const body of await listBodies(record, deps)) {
    if (body.key.endsWith(`/${resultId}`)) return serveBody(body.key, deps);
  }
  throw new ApiError(
    'ResultNotFound',
    `Submission ${id.slice(0, 80)} has no stored result ${resultId}; GET ${submissionPath(id)}/results lists them`,
  );
}
