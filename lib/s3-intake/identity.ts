/**
 * Which upload an S3 event is, and under which submission id it is recorded: what the
 * HEAD answer says about the object, the id derived from its identity, and whether an
 * `iva-submission-id` claimed by its metadata is really this upload's. Pure, except
 * `claimSubmissionId`, which reads the ledger it is given.
 */
import type { Ledger, ObjectRef, SubmissionRecord, SubmissionSource } from '../ledger/types';
import { decodeMetadataValue } from '../storage/metadata';
import type { ObjectCreatedRecord } from './events';
import type { RecordLog } from './record-log';
import {
  derivedSubmissionId,
  isPlausibleSubmissionId,
  META,
  type ObjectFacts,
  objectIdentity,
  stripQuotes,
} from './rules';

/** The part of a HeadObject answer the intake reads. */
export interface HeadFacts {
  ETag?: string;
  ContentLength?: number;
  ContentType?: string;
  Metadata?: Record<string, string>;
}

export interface ObservedObject {
  /** What the ledger records about the object. */
  objectRef: ObjectRef;
  /**
   * Overwritten since the event (unversioned bucket): the newer upload has its own event,
   * and a URL signed now would serve its bytes under this upload's id.
   */
  overwritten: boolean;
  /** This upload's metadata: none when overwritten (the newer object's is not this upload's). */
  metadata: Record<string, string>;
  /** The HEAD answer's ETag when it describes this upload (not when overwritten). */
  headETag?: string;
  /** What the rules read (rules.ts decide); undefined when the object is gone. */
  facts?: ObjectFacts;
}

/** What the event and the HEAD answer (undefined: the object is gone) say about this upload. */
export function observeObject(record: ObjectCreatedRecord, head: HeadFacts | undefined): ObservedObject {
  const objectRef: ObjectRef = { bucket: record.bucket, key: record.key };
  if (record.versionId) objectRef.versionId = record.versionId;
  if (record.sequencer) objectRef.sequencer = record.sequencer;
  const eTag = record.eTag ?? (head?.ETag ? stripQuotes(head.ETag) : undefined);
  if (eTag) objectRef.eTag = eTag;
  const overwritten =
    head !== undefined &&
    !record.versionId &&
    record.eTag !== undefined &&
    head.ETag !== undefined &&
    stripQuotes(head.ETag) !== stripQuotes(record.eTag);
  const metadata = overwritten ? {} : (head?.Metadata ?? {});
  if (!head) return { objectRef, overwritten, metadata };
  if (overwritten) return { objectRef, overwritten, metadata, facts: { key: record.key, metadata } };
  if (head.ContentLength !== undefined) objectRef.size = head.ContentLength;
  if (head.ContentType) objectRef.contentType = head.ContentType;
  return {
    objectRef,
    overwritten,
    metadata,
    ...(head.ETag !== undefined ? { headETag: head.ETag } : {}),
    facts: { key: record.key, metadata, contentType: head.ContentType, size: head.ContentLength },
  };
}

/** The id derived from the upload's identity (version, else sequencer, else ETag). */
export function derivedIdOf(record: ObjectCreatedRecord, headETag: string | undefined): string {
  const identity =
    objectIdentity({ versionId: record.versionId, sequencer: record.sequencer, eTag: record.eTag ?? headETag }) ??
    'unknown';
  return derivedSubmissionId(record.bucket, record.key, identity);
}

/**
 * Whether the ledger record named by an object's `iva-submission-id` was already used by
 * another upload (the upload URL used twice, or the metadata copied to another object).
 */
export function belongsToOtherUpload(
  existing: SubmissionRecord,
  current: ObjectCreatedRecord,
  headETag?: string,
): boolean {
  const o = existing.object;
  if (o?.bucket && o.bucket !== current.bucket) return true;
  if (o?.key && o.key !== current.key) return true;
  // A matching version or sequencer proves the same upload; a different one proves another.
  for (const [recorded, seen] of [
    [o?.versionId, current.versionId],
    [o?.sequencer, current.sequencer],
  ] as const) {
    if (recorded && seen) return recorded !== seen;
  }
  // Equal ETags only say "same bytes" (a re-upload may repeat them): the time check decides.
  const seenETag = current.eTag ?? headETag;
  if (o?.eTag && seenETag && stripQuotes(o.eTag) !== stripQuotes(seenETag)) return true;
  // No recorded identity: an upload that happened after the record was settled is a new one.
  if (existing.submitStatus !== 'pending' && current.eventTime) {
    const settledAt = existing.submittedAt ?? existing.updatedAt;
    if (settledAt && Date.parse(current.eventTime) > Date.parse(settledAt)) return true;
  }
  return false;
}

export interface SubmissionIdentity {
  id: string;
  source: SubmissionSource;
}

/**
 * The submission id this upload is recorded under: the one its `iva-submission-id`
 * metadata claims when the upload route reserved it for this upload, else the derived one.
 */
export async function claimSubmissionId(
  record: ObjectCreatedRecord,
  observed: Pick<ObservedObject, 'metadata' | 'headETag'>,
  ledger: Pick<Ledger, 'get'>,
  log: Pick<RecordLog, 'info' | 'warn'>,
): Promise<SubmissionIdentity> {
  const derived = { id: derivedIdOf(record, observed.headETag), source: 's3' as const };
  const raw = observed.metadata[META.submissionId];
  if (raw === undefined) return derived;
  const claimed = decodeMetadataValue(raw).trim();
  if (!isPlausibleSubmissionId(claimed)) {
    log.warn('Ignoring malformed iva-submission-id metadata', { claimedLength: claimed.length });
    return derived;
  }
  const existing = await ledger.get(claimed);
  if (!existing) {
    // Only the upload route sets it, after reserving it: an unknown one was set by hand.
    log.warn('iva-submission-id names no reserved submission; using the derived id', {
      claimedSubmissionId: claimed,
    });
    return derived;
  }
  if (belongsToOtherUpload(existing, record, observed.headETag)) {
    log.info('iva-submission-id already used by another upload; this upload is a new submission', {
      claimedSubmissionId: claimed,
    });
    return derived;
  }
  return { id: claimed, source: 'upload' };
}
