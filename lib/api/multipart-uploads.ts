/**
 * Large files as S3 multipart uploads (README "Large files: POST /v1/uploads"):
 *
 * - `POST /v1/uploads` with `"Multipart": true` (or a Size over one PUT's 5 GiB) calls
 *   CreateMultipartUpload with the object's Content-Type and `iva-*` metadata (so the
 *   completed object carries them exactly as a single PUT's would), reserves the
 *   submission `pending` with the upload id and the part plan, and answers the plan with
 *   presigned UploadPart URLs for the first parts;
 * - `POST /v1/uploads/{id}/parts` `{"PartNumbers":[…]}`: fresh URLs, up to 100 a call (a
 *   URL dies with its signing session, at most 1 h; a large file outlives that);
 * - `POST /v1/uploads/{id}/complete` `{"Parts":[{"PartNumber","ETag"}…]}`: every part,
 *   once; S3 checks each ETag. The object's `ObjectCreated:CompleteMultipartUpload` event
 *   then takes the same intake path as a single PUT's `ObjectCreated:Put`;
 * - `POST /v1/uploads/{id}/abort`: AbortMultipartUpload, and the submission is `failed`
 *   `UploadAborted`.
 *
 * The upload id never leaves the ledger for these routes: a caller names the submission,
 * and the API acts only on the multipart upload it created for it. An abandoned upload is
 * aborted by the sweep when it marks the reservation `expired` (lib/sweep), and in any
 * case by the bucket's lifecycle rule (AbortIncompleteMultipartUpload on incoming/).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListObjectsV2Command,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { awsErrorFields, awsErrorName } from '../aws/errors';
import type { Caller, SubmissionRecord } from '../ledger/types';
import { newSubmissionId } from './direct';
import { ApiError } from './errors';
import { fingerprint, withIdempotency } from './idempotency';
import { json, SUBMISSION_ID_HEADER } from './responses';
import { loadSubmission, submissionView } from './status';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';
import { parseJsonBody, type UploadRequest, uploadKey, uploadMetadata, urlExpiry } from './uploads';
import { isPlainObject } from './validate';
import type { CompletedUpload, MultipartUploadTicket, UploadPartUrl, UploadPartUrls } from './wire';

const MiB = 1024 * 1024;
/** S3: every part but the last is at least 5 MiB. */
export const S3_MIN_PART_BYTES = 5 * MiB;
/** S3: a part is at most 5 GiB. */
export const S3_MAX_PART_BYTES = 5 * 1024 * MiB;
/** S3: part numbers 1 to 10,000. */
export const S3_MAX_PARTS = 10_000;
/** S3's largest object: 5 TiB. */
export const MULTIPART_MAX_BYTES = 5 * 1024 * 1024 * MiB;
/**
 * The part size when the client names none: large enough that a part's request overhead
 * does not matter, small enough that a failed part costs little to send again and a few
 * parts in flight stay a few tens of MiB of buffers.
 */
export const DEFAULT_PART_BYTES = 16 * MiB;
/** Part URLs in the answer of POST /v1/uploads (its answer is kept with an Idempotency-Key). */
export const FIRST_PART_URLS = 32;
/** Part URLs one POST /v1/uploads/{id}/parts gives. */
export const MAX_PART_URLS_PER_CALL = 100;
/** The complete body: 10,000 parts of ~70 bytes of JSON each, with room. */
const MAX_COMPLETE_BODY_BYTES = 1024 * 1024;
/** An ETag as S3 writes it, quoted or not: printable ASCII without spaces or inner quotes. */
const ETAG = /^"?[\x21\x23-\x7e]{1,200}"?$/;

/**
 * The part size for a file of `size` bytes: the one asked for, checked against S3's
 * limits, or DEFAULT_PART_BYTES grown (in whole MiB) until 10,000 parts hold the file.
 */
export function planPartSize(size: number, asked?: unknown): number {
  if (asked === undefined || asked === null) {
    const least = Math.ceil(size / S3_MAX_PARTS / MiB) * MiB;
    return Math.max(DEFAULT_PART_BYTES, least);
  }
  if (
    typeof asked !== 'number' ||
    !Number.isSafeInteger(asked) ||
    asked < S3_MIN_PART_BYTES ||
    asked > S3_MAX_PART_BYTES
  )
    throw new ApiError(
      'InvalidPartSize',
      `PartSize must be an integer from ${S3_MIN_PART_BYTES} (5 MiB) to ${S3_MAX_PART_BYTES} (5 GiB) bytes`,
    );
  if (Math.ceil(size / asked) > S3_MAX_PARTS)
    throw new ApiError(
      'InvalidPartSize',
      `PartSize ${asked} cuts ${size} bytes into ${Math.ceil(size / asked)} parts; S3 takes at most ${S3_MAX_PARTS}: use at least ${Math.ceil(size / S3_MAX_PARTS)}`,
    );
  return asked;
}

/** Bytes of part `n` (1-based) of a plan. */
export function partBytes(size: number, partSize: number, n: number): number {
  return Math.min(partSize, size - (n - 1) * partSize);
}

async function presignParts(
  deps: ApiDeps,
  target: { key: string; uploadId: string; size: number; partSize: number },
  numbers: readonly number[],
): Promise<UploadPartUrl[]> {
  const signer = deps.presignS3 ?? deps.s3;
  return Promise.all(
    numbers.map(async (n) => ({
      PartNumber: n,
      Url: await getSignedUrl(
        signer,
        new UploadPartCommand({ Bucket: deps.bucket, Key: target.key, UploadId: target.uploadId, PartNumber: n }),
        { expiresIn: deps.config.uploadUrlTtlSeconds },
      ),
      Size: partBytes(target.size, target.partSize, n),
    })),
  );
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export async function createMultipartTicket(
  input: UploadRequest,
  partSize: number,
  deps: ApiDeps,
  caller?: Caller,
): Promise<MultipartUploadTicket> {
  const id = (deps.newId ?? newSubmissionId)('upload');
  const key = uploadKey(input.taskId, id, input.name);
  const metadata = uploadMetadata(input, id);
  const now = (deps.now ?? (() => new Date()))();
  const partCount = Math.ceil(input.size / partSize);
  const created = await deps.s3.send(
    new CreateMultipartUploadCommand({
      Bucket: deps.bucket,
      Key: key,
      ContentType: input.contentType,
      Metadata: metadata,
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
  const abandon = async (): Promise<void> => {
    await deps.s3
      .send(new AbortMultipartUploadCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId }))
      .catch((error: unknown) => deps.logger?.warn('could not abort the unreserved upload', awsErrorFields(error)));
  };
  let parts: UploadPartUrl[];
  let expiresAt: Date;
  try {
    parts = await presignParts(
      deps,
      { key, uploadId, size: input.size, partSize },
      range(1, Math.min(partCount, FIRST_PART_URLS)),
    );
    expiresAt = await urlExpiry(deps, now);
    // Reserved last, as a single PUT's: nothing unrecorded is handed out.
    await deps.ledger.reserve({
      id,
      source: 'upload',
      taskId: input.taskId,
      kind: input.kind,
      name: input.name,
      ...(input.desc !== undefined ? { desc: input.desc } : {}),
      object: { bucket: deps.bucket, key, size: input.size, contentType: input.contentType },
      multipart: { uploadId, partSize, partCount },
      ...(caller ? { caller } : {}),
    });
  } catch (error) {
    await abandon();
    throw error;
  }
  return {
    SubmissionId: id,
    Method: 'MULTIPART',
    UploadId: uploadId,
    PartSize: partSize,
    PartCount: partCount,
    Parts: parts,
    ExpiresAt: expiresAt.toISOString(),
    Key: key,
    Bucket: deps.bucket,
  };
}

interface OpenUpload {
  record: SubmissionRecord;
  key: string;
  size: number;
  multipart: NonNullable<SubmissionRecord['multipart']>;
  /** Still a reservation: its object has not arrived (it may be `expired`). */
  open: boolean;
}

async function loadUpload(id: string, deps: ApiDeps): Promise<OpenUpload> {
  const record = await loadSubmission(id, deps);
  const multipart = record.multipart;
  if (record.source !== 'upload' || !multipart || !record.object)
    throw new ApiError(
      'UploadNotMultipart',
      `Submission ${id.slice(0, 80)} is not a multipart upload (POST /v1/uploads with "Multipart": true creates one)`,
    );
  return {
    record,
    key: record.object.key,
    size: record.object.size ?? 0,
    multipart,
    open: record.submitStatus === 'pending' && record.attempts === 0,
  };
}

function closed(id: string, record: SubmissionRecord): ApiError {
  return new ApiError(
    'UploadClosed',
    record.error?.code === 'UploadAborted'
      ? `Upload ${id.slice(0, 80)} was aborted`
      : `Upload ${id.slice(0, 80)} is complete: its object arrived and the submission is ${record.status}`,
  );
}

function intList(value: unknown, name: string, max: number, code: 'InvalidPartNumbers'): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > max)
    throw new ApiError(code, `${name} must be a list of 1 to ${max} part numbers`);
  return value.map((n) => {
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new ApiError(code, `${name} holds integers only`);
    return n;
  });
}

/** POST /v1/uploads/{id}/parts `{"PartNumbers":[…]}`. */
export async function handleUploadParts(id: string, req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  const body = parseJsonBody(req, 'POST /v1/uploads/{id}/parts', 64 * 1024, 'a JSON list of part numbers');
  if (!isPlainObject(body))
    throw new ApiError('InvalidPartNumbers', 'The body must be a JSON object: {"PartNumbers":[1,2,…]}');
  const numbers = intList(body['PartNumbers'], 'PartNumbers', MAX_PART_URLS_PER_CALL, 'InvalidPartNumbers');
  const upload = await loadUpload(id, deps);
  const { partCount } = upload.multipart;
  const wrong = numbers.find((n) => n < 1 || n > partCount);
  if (wrong !== undefined)
    throw new ApiError(
      'InvalidPartNumbers',
      `Part ${wrong} is not a part of this upload: its parts are 1 to ${partCount}`,
    );
  if (new Set(numbers).size !== numbers.length)
    throw new ApiError('InvalidPartNumbers', 'PartNumbers names a part more than once');
  if (!upload.open) throw closed(id, upload.record);
  const parts = await presignParts(
    deps,
    { key: upload.key, uploadId: upload.multipart.uploadId, size: upload.size, partSize: upload.multipart.partSize },
    numbers,
  );
  const answer: UploadPartUrls = {
    SubmissionId: id,
    UploadId: upload.multipart.uploadId,
    Parts: parts,
    ExpiresAt: (await urlExpiry(deps, (deps.now ?? (() => new Date()))())).toISOString(),
  };
  return json(200, answer, { [SUBMISSION_ID_HEADER]: id });
}

/** The complete body: every part 1..partCount once, each with an ETag; in part order. */
export function validateCompleteParts(body: unknown, partCount: number): { PartNumber: number; ETag: string }[] {
  const shape = 'The body must be {"Parts":[{"PartNumber":1,"ETag":"…"},…]}, every part of the upload once';
  if (!isPlainObject(body) || !Array.isArray(body['Parts'])) throw new ApiError('InvalidParts', shape);
  const list = body['Parts'] as unknown[];
  if (list.length === 0 || list.length > S3_MAX_PARTS) throw new ApiError('InvalidParts', shape);
  const seen = new Map<number, string>();
  for (const item of list) {
    if (!isPlainObject(item)) throw new ApiError('InvalidParts', shape);
    const n = item['PartNumber'];
    const etag = item['ETag'];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > partCount)
      throw new ApiError('InvalidParts', `PartNumber must be an integer from 1 to ${partCount} (this upload's parts)`);
    if (typeof etag !== 'string' || !ETAG.test(etag))
      throw new ApiError('InvalidParts', `Part ${n}: ETag must be the ETag header S3 answered its PUT with`);
    if (seen.has(n)) throw new ApiError('InvalidParts', `Part ${n} is listed more than once`);
    seen.set(n, etag.startsWith('"') ? etag : `"${etag}"`);
  }
  if (seen.size !== partCount) {
    const missing = range(1, partCount).filter((n) => !seen.has(n));
    throw new ApiError(
      'InvalidParts',
      `The upload has ${partCount} parts; missing: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`,
    );
  }
  return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
}

/** S3's refusals of a CompleteMultipartUpload, as the API answers them. */
function completeError(error: unknown, id: string): ApiError | undefined {
  const name = awsErrorName(error);
  const message = (error as Error)?.message?.slice(0, 200) ?? name;
  switch (name) {
    case 'InvalidPart':
      return new ApiError(
        'InvalidPart',
        `S3 refused a part: it was not uploaded, or its ETag is not the one given (${message})`,
        { cause: error },
      );
    case 'InvalidPartOrder':
      return new ApiError('InvalidParts', `S3 refused the part list (${message})`, { cause: error });
    case 'EntityTooSmall':
      return new ApiError(
        'EntityTooSmall',
        `S3 refused a part under 5 MiB that is not the last one (${message}); PUT each part with exactly its Size`,
        { cause: error },
      );
    case 'NoSuchUpload':
      return new ApiError(
        'UploadNotFound',
        `S3 holds no multipart upload for ${id.slice(0, 80)} any more (aborted, or cleaned up after it expired): create a new upload`,
        { cause: error },
      );
    default:
      return undefined;
  }
}

/** POST /v1/uploads/{id}/complete. */
export async function handleCompleteUpload(id: string, req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  const body = parseJsonBody(req, 'POST /v1/uploads/{id}/complete', MAX_COMPLETE_BODY_BYTES, "the parts' ETags");
  const upload = await loadUpload(id, deps);
  const parts = validateCompleteParts(body, upload.multipart.partCount);
  return withIdempotency(
    req,
    deps,
    () => fingerprint(`POST /v1/uploads/{id}/complete ${id}`, parts),
    { submissionId: id },
    async () => {
      const done: CompletedUpload = { SubmissionId: id, Bucket: deps.bucket, Key: upload.key, Size: upload.size };
      // The object already arrived (an earlier complete whose answer was lost): say so again.
      if (!upload.open && upload.record.error?.code !== 'UploadAborted')
        return json(200, done, { [SUBMISSION_ID_HEADER]: id });
      if (!upload.open) throw closed(id, upload.record);
      try {
        const out = await deps.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: deps.bucket,
            Key: upload.key,
            UploadId: upload.multipart.uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
        deps.logger?.info('multipart upload completed', { uploadId: upload.multipart.uploadId, parts: parts.length });
        return json(200, { ...done, ...(out.ETag ? { ETag: out.ETag } : {}) }, { [SUBMISSION_ID_HEADER]: id });
      } catch (error) {
        const mapped = completeError(error, id);
        // Ceph RGW answers a completion of an upload it no longer holds with 500
        // ("This multipart completion is already in progress"): look for the object too.
        if (!mapped || mapped.code === 'UploadNotFound') {
          // Completed by an earlier attempt (the SDK's retry of a call whose answer timed
          // out, or a concurrent call): the object is there under its key, or the intake
          // already took it in.
          const now = await loadUpload(id, deps);
          if (!now.open && now.record.error?.code !== 'UploadAborted')
            return json(200, done, { [SUBMISSION_ID_HEADER]: id });
          if (now.open && (await objectExists(deps, upload.key, upload.size)))
            return json(200, done, { [SUBMISSION_ID_HEADER]: id });
        }
        throw mapped ?? error;
      }
    },
  );
}

/** Whether the upload's object exists with its planned size (listed, never read). */
async function objectExists(deps: ApiDeps, key: string, size: number): Promise<boolean> {
  try {
    const out = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: key, MaxKeys: 1 }));
    return (out.Contents ?? []).some((o) => o.Key === key && o.Size === size);
  } catch (error) {
    deps.logger?.warn('could not list the upload key after NoSuchUpload', awsErrorFields(error));
    return false;
  }
}

/** POST /v1/uploads/{id}/abort: the parts are deleted and the submission ends `failed` `UploadAborted`. */
export async function handleAbortUpload(id: string, deps: ApiDeps): Promise<ApiResponse> {
  const upload = await loadUpload(id, deps);
  if (upload.record.error?.code === 'UploadAborted') return json(200, submissionView(upload.record));
  if (!upload.open) throw closed(id, upload.record);
  try {
    await deps.s3.send(
      new AbortMultipartUploadCommand({ Bucket: deps.bucket, Key: upload.key, UploadId: upload.multipart.uploadId }),
    );
  } catch (error) {
    // Gone already: completed (its object is on its way to the intake) or cleaned up.
    if (awsErrorName(error) !== 'NoSuchUpload') throw error;
    const now = await loadUpload(id, deps);
    if (!now.open) throw closed(id, now.record);
    throw new ApiError(
      'UploadNotFound',
      `S3 holds no multipart upload for ${id.slice(0, 80)}: it was completed (its object is on its way) or already cleaned up`,
      { cause: error },
    );
  }
  // The upload can no longer complete, so no object event will race this write.
  const failed = await deps.ledger.markFailed(id, {
    code: 'UploadAborted',
    message: 'The multipart upload was aborted by its client (POST /v1/uploads/{id}/abort)',
  });
  deps.logger?.info('multipart upload aborted', { submissionId: id, uploadId: upload.multipart.uploadId });
  return json(200, submissionView(failed));
}
