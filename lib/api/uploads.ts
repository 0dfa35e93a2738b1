/**
 * POST /v1/uploads: a presigned PUT URL for files too large for a direct submission.
 * The IVA fields are bound to the object as signed `x-amz-meta-iva-*` headers, so the
 * uploaded object carries everything the object-created function needs (section 1 of
 * the product contract), and a client cannot PUT under that URL without them.
 *
 * With `"Multipart": true`, or a Size over one PUT's 5 GiB, the answer is an S3
 * multipart upload instead (multipart-uploads.ts): the metadata is set once, at
 * CreateMultipartUpload, and the parts go to presigned UploadPart URLs.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { IMAGE_MAX_BYTES } from '../config';
import { headerSafe } from '../storage/metadata';
import { INCOMING_PREFIX } from '../storage/prefixes';
import { redactPresignedUrl } from '../storage/presign';
import type { MediaKind } from '../iva/types';
import type { Caller } from '../ledger/types';
import { decodeBody, header } from './body';
import { newSubmissionId } from './direct';
import { ApiError } from './errors';
import { createMultipartTicket, MULTIPART_MAX_BYTES, planPartSize } from './multipart-uploads';
import type { MultipartUploadTicket, UploadTicket } from './wire';
import { json, SUBMISSION_ID_HEADER } from './responses';
import { fingerprint, withIdempotency } from './idempotency';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';
import { checkAlgoParamConf, checkDesc, checkKind, checkName, checkTaskId } from '../submission/validate';
import { field, isPlainObject } from './validate';

/** S3's largest single PUT; a presigned URL cannot do multipart uploads. */
export const VIDEO_MAX_BYTES = 5 * 1024 * 1024 * 1024;
/** S3 user metadata: keys + values, UTF-8 bytes, at most 2 KB. */
export const S3_METADATA_MAX_BYTES = 2048;
const MAX_UPLOAD_REQUEST_BYTES = 64 * 1024;
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** type/subtype with optional parameters, printable ASCII only (it is signed as a header). */
const MIME = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;[\x20-\x7e]*)?$/;

export interface UploadRequest {
  taskId: string;
  kind: MediaKind;
  name: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
  contentType: string;
  size: number;
  /** Set when the file goes up as an S3 multipart upload: every part but the last has partSize bytes. */
  multipart?: { partSize: number };
}

function str(body: Record<string, unknown>, ...names: string[]): unknown {
  for (const n of names) if (body[n] !== undefined && body[n] !== null) return body[n];
  return undefined;
}

export function validateUploadRequest(body: unknown): UploadRequest {
  if (!isPlainObject(body))
    throw new ApiError(
      'InvalidJson',
      'The body must be a JSON object: {"TaskID","Kind":"image"|"video","Name","Size","ContentType"?,"Desc"?,"AlgoParamConf"?,"Multipart"?,"PartSize"?}',
    );
  const taskId = field(() => checkTaskId(str(body, 'TaskID'), 'TaskID', ' the file belongs to'));
  const kind = field(() => checkKind(str(body, 'Kind', 'kind'), 'Kind'));
  const name = field(() => checkName(str(body, 'Name'), 'Name'));
  const desc = field(() => checkDesc(str(body, 'Desc'), 'Desc'));
  const algo = field(() => checkAlgoParamConf(str(body, 'AlgoParamConf'), 'AlgoParamConf'));
  const contentType = str(body, 'ContentType') ?? DEFAULT_CONTENT_TYPE;
  if (typeof contentType !== 'string' || !MIME.test(contentType))
    throw new ApiError(
      'InvalidContentTypeField',
      'ContentType must be a MIME type such as "video/mp4" or "image/jpeg"',
    );
  const size = str(body, 'Size');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1)
    throw new ApiError('InvalidSize', 'Size must be the file size in bytes, a positive integer');
  if (kind === 'image' && size > IMAGE_MAX_BYTES)
    throw new ApiError(
      'ImageTooLarge',
      `The image is ${size} bytes; IVA accepts images up to ${IMAGE_MAX_BYTES} bytes (50 MB)`,
    );
  const askedMultipart = str(body, 'Multipart');
  if (askedMultipart !== undefined && typeof askedMultipart !== 'boolean')
    throw new ApiError('InvalidMultipart', 'Multipart must be true (S3 multipart upload) or false (one PUT)');
  const askedPartSize = str(body, 'PartSize');
  if (askedPartSize !== undefined && askedMultipart === false)
    throw new ApiError('InvalidMultipart', 'PartSize is for multipart uploads: drop it, or send "Multipart": true');
  const multipart = askedMultipart ?? (askedPartSize !== undefined || size > VIDEO_MAX_BYTES);
  if (!multipart && size > VIDEO_MAX_BYTES)
    throw new ApiError(
      'FileTooLarge',
      `The video is ${size} bytes; one presigned PUT carries at most ${VIDEO_MAX_BYTES} bytes (5 GiB, S3's single-upload limit): leave Multipart out or send "Multipart": true`,
    );
  if (size > MULTIPART_MAX_BYTES)
    throw new ApiError(
      'FileTooLarge',
      `The video is ${size} bytes; S3 stores objects of at most ${MULTIPART_MAX_BYTES} bytes (5 TiB)`,
    );
  return {
    taskId,
    kind,
    name,
    contentType,
    size,
    ...(multipart ? { multipart: { partSize: planPartSize(size, askedPartSize) } } : {}),
    ...(desc !== undefined ? { desc } : {}),
    ...(algo !== undefined ? { algoParamConf: algo } : {}),
  };
}

/** One key segment: no separators, no control characters, no `.`/`..`, bounded length. */
export function sanitizeSegment(value: string, fallback = 'file'): string {
  let out = value
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f/\\]/g, '_')
    .trim();
  if (out === '.' || out === '..') out = out.replace(/\./g, '_');
  // Keys are at most 1024 bytes; leave room for the rest of the key.
  while (Buffer.byteLength(out, 'utf8') > 200) out = out.slice(0, -1);
  return out || fallback;
}

export function uploadKey(taskId: string, submissionId: string, name: string): string {
  return `${INCOMING_PREFIX}${sanitizeSegment(taskId, 'task')}/${submissionId}/${sanitizeSegment(name)}`;
}

export function uploadMetadata(input: UploadRequest, submissionId: string): Record<string, string> {
  const meta: Record<string, string> = {
    'iva-task-id': headerSafe(input.taskId),
    'iva-kind': input.kind,
    'iva-name': headerSafe(input.name),
    'iva-submission-id': submissionId,
  };
  if (input.desc !== undefined && input.desc !== '') meta['iva-desc'] = headerSafe(input.desc);
  if (input.algoParamConf !== undefined) meta['iva-algo-param-conf'] = headerSafe(JSON.stringify(input.algoParamConf));
  const bytes = Object.entries(meta).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (bytes > S3_METADATA_MAX_BYTES) {
    throw new ApiError(
      'MetadataTooLarge',
      `Name, Desc and AlgoParamConf together take ${bytes} bytes of object metadata; S3 allows ${S3_METADATA_MAX_BYTES}. Shorten them.`,
    );
  }
  return meta;
}

/** A JSON body of at most `maxBytes`; `route` names the route in messages. */
export function parseJsonBody(
  req: ApiRequest,
  route = 'POST /v1/uploads',
  maxBytes = MAX_UPLOAD_REQUEST_BYTES,
  what = 'a small JSON description of the file',
): unknown {
  const contentType = header(req, 'content-type');
  if (contentType && !/^\s*(application\/([\w.+-]*\+)?json|text\/plain)\s*(;|$)/i.test(contentType)) {
    throw new ApiError(
      'UnsupportedMediaType',
      `${route} takes a JSON body (Content-Type: application/json), got "${contentType.slice(0, 100)}"`,
    );
  }
  const raw = decodeBody(
    req,
    maxBytes,
    (size) =>
      new ApiError(
        'PayloadTooLarge',
        `${route} takes ${what} (at most ${maxBytes} bytes, got ${size}); the file itself goes to the returned URL`,
      ),
  );
  try {
    // A UTF-8 byte order mark (Windows editors, PowerShell) is legal before JSON text (RFC 8259 §8.1).
    return JSON.parse(raw.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ApiError('InvalidJson', `The body is not valid JSON (${(error as Error).message.slice(0, 120)})`);
  }
}

/**
 * When URLs signed now by the upload signer stop working. A URL signed with session
 * credentials (an assumed role's) dies with them, whatever X-Amz-Expires says: report the
 * real end of its life, not the one asked for.
 */
export async function urlExpiry(deps: ApiDeps, now: Date): Promise<Date> {
  const ttl = deps.config.uploadUrlTtlSeconds;
  let expiresAt = new Date(now.getTime() + ttl * 1000);
  const identity = await (deps.presignS3 ?? deps.s3).config.credentials();
  if (identity.expiration && identity.expiration.getTime() < expiresAt.getTime()) {
    expiresAt = identity.expiration;
    deps.logger?.warn('upload URL lives shorter than UPLOAD_URL_TTL_SECONDS: its signing credentials expire first', {
      credentialsExpireAt: expiresAt.toISOString(),
      ttlSeconds: ttl,
    });
  }
  return expiresAt;
}

export async function createUploadTicket(input: UploadRequest, deps: ApiDeps, caller?: Caller): Promise<UploadTicket> {
  const id = (deps.newId ?? newSubmissionId)('upload');
  const key = uploadKey(input.taskId, id, input.name);
  const metadata = uploadMetadata(input, id);
  const ttl = deps.config.uploadUrlTtlSeconds;
  const now = (deps.now ?? (() => new Date()))();

  const command = new PutObjectCommand({
    Bucket: deps.bucket,
    Key: key,
    ContentType: input.contentType,
    Metadata: metadata,
  });
  const metaHeaders = Object.keys(metadata).map((k) => `x-amz-meta-${k}`);
  const signer = deps.presignS3 ?? deps.s3;
  const url = await getSignedUrl(signer, command, {
    expiresIn: ttl,
    // The presigner never signs Content-Type unless told to; metadata must stay
    // headers (signed, so required) rather than be hoisted into the query.
    signableHeaders: new Set(['content-type']),
    unhoistableHeaders: new Set(metaHeaders),
  });
  const headers: Record<string, string> = { 'Content-Type': input.contentType };
  for (const [k, v] of Object.entries(metadata)) headers[`x-amz-meta-${k}`] = v;
  const expiresAt = await urlExpiry(deps, now);
  // Reserved last: signing can fail (credentials), and a reservation whose URL was never
  // handed out would show as `pending` for ever. The URL alone is harmless unrecorded.
  await deps.ledger.reserve({
    id,
    source: 'upload',
    taskId: input.taskId,
    kind: input.kind,
    name: input.name,
    ...(input.desc !== undefined ? { desc: input.desc } : {}),
    object: { bucket: deps.bucket, key, size: input.size, contentType: input.contentType },
    ...(caller ? { caller } : {}),
  });
  return {
    SubmissionId: id,
    Url: url,
    Method: 'PUT',
    Headers: headers,
    ExpiresAt: expiresAt.toISOString(),
    Key: key,
    Bucket: deps.bucket,
  };
}

export async function handleCreateUpload(req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  const input = validateUploadRequest(parseJsonBody(req));
  return withIdempotency(
    req,
    deps,
    () => fingerprint(`${req.method.toUpperCase()} ${req.resource ?? req.path}`, input),
    {},
    () => issueUpload(input, deps, req.caller),
  );
}

async function issueUpload(input: UploadRequest, deps: ApiDeps, caller: Caller | undefined): Promise<ApiResponse> {
  const ticket: UploadTicket | MultipartUploadTicket = input.multipart
    ? await createMultipartTicket(input, input.multipart.partSize, deps, caller)
    : await createUploadTicket(input, deps, caller);
  deps.logger?.appendKeys({
    submissionId: ticket.SubmissionId,
    taskId: input.taskId,
    bucket: ticket.Bucket,
    key: ticket.Key,
  });
  deps.logger?.info(ticket.Method === 'PUT' ? 'upload URL issued' : 'multipart upload created', {
    ...(ticket.Method === 'PUT'
      ? { url: redactPresignedUrl(ticket.Url) }
      : { uploadId: ticket.UploadId, partSize: ticket.PartSize, partCount: ticket.PartCount }),
    size: input.size,
    kind: input.kind,
    expiresAt: ticket.ExpiresAt,
  });
  return json(200, ticket, { [SUBMISSION_ID_HEADER]: ticket.SubmissionId });
}
