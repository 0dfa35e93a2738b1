/**
 * Content-addressed storage of callback bodies: the key ends with the SHA-256 of the
 * exact bytes, so a replay of the same body is the same key and is stored once.
 *
 * "Once" is enforced twice, because local servers differ: HeadObject first (s3rver
 * ignores `If-None-Match`), then PutObject with `IfNoneMatch: '*'` (AWS and Ceph RGW
 * answer 412 when a concurrent delivery won the race). Without s3:ListBucket, S3 answers
 * a HEAD of a missing key with 403 rather than 404; both mean "not there yet" here, and
 * the conditional put still decides.
 *
 * Keys: `results/<TaskID>/<dataId>/<sha256>.<ext>`, `results/_unknown-task/<dataId>/…`
 * when only the data id is known, `results/_unmatched/<sha256>.<ext>` without a data id,
 * (`_emitted/` held the event markers of earlier versions; events are now claimed in
 * the ledger, handle.ts). Segments coming
 * from the body are percent-encoded WTF-8 (lib/storage/wtf8.ts: reversible, lone
 * surrogates included), and a leading `_` is encoded, so no TaskID can land in the
 * `_…` folders this module reserves. Ids whose key would exceed S3's 1024 bytes are
 * filed under `_unmatched/` with that reason rather than truncated.
 */
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { encodeKeySegment } from '../storage/wtf8';
import { RESULTS_PREFIX } from '../storage/prefixes';
import { StorageUnavailableError } from './errors';
import { awsErrorName, awsHttpStatus, isAwsError, s3ObjectAbsence } from '../aws/errors';

export const UNMATCHED_PREFIX = `${RESULTS_PREFIX}_unmatched/`;
export const EMITTED_PREFIX = `${RESULTS_PREFIX}_emitted/`;
const UNKNOWN_TASK = '_unknown-task';

export interface StoredObject {
  bucket: string;
  key: string;
  /** `s3://bucket/key` */
  uri: string;
}

export interface StoreOutcome extends StoredObject {
  /** True when the same body was already stored (a replay). */
  duplicate: boolean;
  /** When the body was first received (a replay keeps the first time). */
  receivedAt: string;
}

/** A key segment from untrusted text: reversible (`decodeKeySegment`), never `.`/`..` or `_…`. */
export function keySegment(value: string): string {
  const out = encodeKeySegment(value);
  // `_` and `.` are literal in the safe alphabet; escaped here so no id reaches the
  // reserved `_…` folders or walks up a level. `%5F`/`%2E` still decode to the same id.
  if (out.startsWith('_') || out === '.' || out === '..')
    return `%${out.charCodeAt(0).toString(16).toUpperCase()}${out.slice(1)}`;
  return out;
}

/** Why a body with ids was still filed under `_unmatched/` (kept in its `unmatched-reason` metadata). */
export type UnmatchedReason = 'no-data-id' | 'data-id-too-long' | 'key-too-long' | 'malformed-json';

export interface Placement {
  key: string;
  /** Set when the body is filed under `_unmatched/`. */
  unmatched?: UnmatchedReason;
}

/** S3 keys are at most 1024 bytes of UTF-8; encoded keys are ASCII, so characters = bytes. */
export const MAX_S3_KEY_BYTES = 1024;

export function placeResult(
  sha256: string,
  extension: string,
  ids: { taskId?: string; dataId?: string } = {},
  reason: UnmatchedReason = 'no-data-id',
): Placement {
  const unmatched = (why: UnmatchedReason): Placement => ({
    key: `${UNMATCHED_PREFIX}${sha256}.${extension}`,
    unmatched: why,
  });
  if (!ids.dataId) return unmatched(reason);
  const task = ids.taskId ? keySegment(ids.taskId) : UNKNOWN_TASK;
  const key = `${RESULTS_PREFIX}${task}/${keySegment(ids.dataId)}/${sha256}.${extension}`;
  // Truncating would map two ids to one folder: an id that does not fit is kept unmatched.
  return key.length > MAX_S3_KEY_BYTES ? unmatched('key-too-long') : { key };
}

export function resultKey(sha256: string, extension: string, ids: { taskId?: string; dataId?: string } = {}): string {
  return placeResult(sha256, extension, ids).key;
}

export const s3Uri = (bucket: string, key: string) => `s3://${bucket}/${key}`;

/** The object's metadata, or undefined when it is not there (404, or 403 without ListBucket). */
export async function headObject(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<Record<string, string> | undefined> {
  try {
    const out = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const metadata = { ...(out.Metadata ?? {}) };
    if (!metadata['received-at'] && out.LastModified) metadata['received-at'] = out.LastModified.toISOString();
    return metadata;
  } catch (error) {
    // A hidden key (403, no s3:ListBucket) is "not there yet" too: the conditional put decides.
    if (s3ObjectAbsence(error) !== undefined) return undefined;
    throw new StorageUnavailableError(`HeadObject failed: ${awsErrorName(error)}`);
  }
}

export interface PutOnceInput {
  bucket: string;
  key: string;
  body: Uint8Array;
  contentType: string;
  receivedAt: string;
  metadata?: Record<string, string>;
}

/** Puts the object unless it exists; reports a replay with the first receipt time. */
export async function putOnce(s3: S3Client, input: PutOnceInput): Promise<StoreOutcome> {
  const { bucket, key } = input;
  const base = { bucket, key, uri: s3Uri(bucket, key) };
  const existing = await headObject(s3, bucket, key);
  if (existing) return { ...base, duplicate: true, receivedAt: existing['received-at'] ?? input.receivedAt };
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: input.body,
        ContentType: input.contentType,
        IfNoneMatch: '*',
        Metadata: { ...input.metadata, 'received-at': input.receivedAt },
      }),
    );
    return { ...base, duplicate: false, receivedAt: input.receivedAt };
  } catch (error) {
    if (awsHttpStatus(error) === 412 || isAwsError(error, 'PreconditionFailed')) {
      // A concurrent delivery of the same body stored it first.
      const winner = await headObject(s3, bucket, key).catch(() => undefined);
      return { ...base, duplicate: true, receivedAt: winner?.['received-at'] ?? input.receivedAt };
    }
    // 409 ConditionalRequestConflict (a concurrent conditional write) lands here too: retryable.
    throw new StorageUnavailableError(`PutObject failed: ${awsErrorName(error)}`);
  }
}
