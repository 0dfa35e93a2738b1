/**
 * Which object IVA is handed a URL to: the bytes the S3 event announced, never a later
 * upload to the same key.
 *
 * A versioned bucket (the stack's own) names the version in every event, and the URL
 * names it too: IVA fetches that version whenever it fetches. A bucket without
 * versioning (an existing bucket left unversioned, the local stack's s3rver) has only the
 * key: an overwrite between our HEAD and IVA's download (IVA fetches when it gets to
 * the task, possibly minutes later) would hand IVA the newer bytes under this upload's
 * id, and the newer upload's own event would then send the same bytes a second time.
 * So in an unversioned bucket the upload is first copied, server-side and only if its
 * ETag is still the event's (`x-amz-copy-source-if-match`), to `pinned/<submission id>`,
 * and IVA gets a URL to that copy. A 412 means the key was overwritten first: the newer
 * upload is a submission of its own, this one ends `ObjectOverwritten`.
 *
 * The cost, unversioned buckets only: one CopyObject per upload (server-side, no bytes
 * through Lambda) and the copy's storage until a lifecycle rule on `pinned/` expires it.
 * CopyObject takes at most 5 GiB; a larger upload in an unversioned bucket cannot be
 * pinned in one call and ends `VersioningRequired` (turn versioning on).
 */
import {
  CopyObjectCommand,
  type CopyObjectCommandOutput,
  DeleteObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { awsErrorName, awsHttpStatus, s3ObjectAbsence } from '../aws/errors';
import { PINNED_PREFIX } from '../storage/prefixes';
import type { SubmissionError } from '../ledger/types';
import type { ObjectVersionRef } from '../storage/presign';
import { OVERWRITTEN } from './policy';
import { stripQuotes } from './rules';

/** S3's largest CopyObject source. */
export const COPY_OBJECT_MAX_BYTES = 5 * 1024 ** 3;

export type PinOutcome =
  | { action: 'pinned'; ref: ObjectVersionRef; copied: boolean }
  | { action: 'fail'; failure: SubmissionError };

export interface PinInput {
  bucket: string;
  key: string;
  versionId?: string;
  /** The upload's ETag (from the event, else from the HEAD that matched it). */
  eTag?: string;
  size?: number;
}

/** `pinned/<id><.ext>`: the id is unique per upload; the extension helps IVA's type sniffing. */
export function pinnedKey(submissionId: string, key: string): string {
  const ext = /\.[A-Za-z0-9]{1,10}$/.exec(key)?.[0] ?? '';
  return `${PINNED_PREFIX}${submissionId}${ext.toLowerCase()}`;
}

/** Copies the path of a CopySource header: bucket, then the key with every segment URL-encoded. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

export async function pinObject(s3: S3Client, object: PinInput, submissionId: string): Promise<PinOutcome> {
  if (object.versionId)
    return {
      action: 'pinned',
      ref: { bucket: object.bucket, key: object.key, versionId: object.versionId },
      copied: false,
    };
  if (object.size !== undefined && object.size > COPY_OBJECT_MAX_BYTES)
    return {
      action: 'fail',
      failure: {
        code: 'VersioningRequired',
        message:
          'The bucket has no versioning and the object is over 5 GiB, so it cannot be copied in one call to pin the uploaded bytes; turn versioning on for the bucket',
      },
    };
  const key = pinnedKey(submissionId, object.key);
  let copied: CopyObjectCommandOutput;
  try {
    copied = await s3.send(
      new CopyObjectCommand({
        Bucket: object.bucket,
        Key: key,
        CopySource: copySource(object.bucket, object.key),
        ...(object.eTag ? { CopySourceIfMatch: `"${stripQuotes(object.eTag)}"` } : {}),
        MetadataDirective: 'COPY',
      }),
    );
  } catch (error) {
    if (awsHttpStatus(error) === 412 || awsErrorName(error) === 'PreconditionFailed')
      return { action: 'fail', failure: OVERWRITTEN };
    // 403 on a copy source is a real denial as often as a hidden 404: only a 404 is "gone".
    if (s3ObjectAbsence(error) === 'missing')
      return {
        action: 'fail',
        failure: { code: 'ObjectNotFound', message: 'The object was deleted before it could be submitted' },
      };
    throw error;
  }
  if (copiedOtherBytes(object.eTag, copied)) {
    await s3.send(new DeleteObjectCommand({ Bucket: object.bucket, Key: key }));
    return { action: 'fail', failure: OVERWRITTEN };
  }
  return { action: 'pinned', ref: { bucket: object.bucket, key }, copied: true };
}

/**
 * Some S3-compatible servers ignore `x-amz-copy-source-if-match` (Ceph RGW does, see
 * docs/local-s3.md), so the copy's own ETag is checked too: a single-part, unencrypted or
 * SSE-S3 object keeps its MD5 ETag through a copy. Multipart ETags (`…-N`) and KMS or
 * customer-key encryption change the ETag of any copy, so those rely on the condition alone.
 */
function copiedOtherBytes(expected: string | undefined, out: CopyObjectCommandOutput): boolean {
  const got = out.CopyObjectResult?.ETag;
  if (!expected || !got || expected.includes('-')) return false;
  if (out.SSECustomerAlgorithm || (out.ServerSideEncryption && out.ServerSideEncryption !== 'AES256')) return false;
  return stripQuotes(got) !== stripQuotes(expected);
}
