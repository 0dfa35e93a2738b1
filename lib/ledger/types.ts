import type { MediaKind } from '../iva/types';

/**
 * What users see. `pending` until IVA accepted it, then `submitted`, then the callback
 * decides. `uncertain`: the request may have reached IVA but its answer was lost (the
 * connection dropped or timed out after the body was sent); nothing resubmits it until
 * its owner resolves it (see lib/iva/README.md, "Which failures are ambiguous").
 */
export type SubmissionStatus = 'pending' | 'submitted' | 'completed' | 'failed' | 'uncertain' | 'overdue' | 'expired';
// `overdue`: submitted, and no final callback within the sweep's overdue time (a later
// final callback still completes it). `expired`: an upload URL was issued and never used
// before it expired (an upload that still arrives is processed). Both set by lib/sweep.
export type SubmissionSource = 's3' | 'api' | 'upload';

/** The part of the status the submitting functions own. */
export type SubmitStatus = 'pending' | 'submitted' | 'failed' | 'uncertain';

/** A callback's verdict: final (`completed`/`failed`) or still running (`progress`). */
export type ResultStatus = 'completed' | 'failed' | 'progress';

export interface ObjectRef {
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
  sequencer?: string;
  size?: number;
  contentType?: string;
}

/**
 * An upload reserved as an S3 multipart upload (POST /v1/uploads with parts): the
 * CreateMultipartUpload's id and the plan its part URLs follow.
 */
export interface MultipartInfo {
  uploadId: string;
  /** Bytes of every part but the last. */
  partSize: number;
  partCount: number;
}

export interface SubmissionError {
  code: string;
  message: string;
  requestId?: string;
}

/** Why a submission is `uncertain`: the ambiguous failure and when it happened. */
export interface UncertainInfo {
  /** The IVA client's code for the ambiguous failure, e.g. `ConnectionLostAfterSend`, `TimeoutAfterSend`. */
  code: string;
  message: string;
  /** When the attempt whose fate is unknown began sending (ISO 8601), when known. */
  sentAt?: string;
  /** When that attempt failed (ISO 8601). */
  failedAt: string;
}

/** How the owner resolved an `uncertain` submission. */
export interface Resolution {
  /** `submitted`/`failed`: declared by the owner; `resubmitted`: sent to IVA again. */
  action: 'submitted' | 'failed' | 'resubmitted';
  at: string;
  /** Free text from the owner, at most 1 000 characters. */
  note?: string;
}

export interface ResultRef {
  status: ResultStatus;
  /** The status string exactly as IVA sent it, when it sent one. */
  rawStatus?: string;
  /** `s3://bucket/results/...` of the stored body. */
  location: string;
  receivedAt: string;
}

/**
 * Who asked for a submission over the API, as API Gateway established it: a client key
 * the client-auth authorizer verified (lib/client-auth), or an AWS principal whose SigV4
 * signature API Gateway verified on the IAM API (`requestContext.identity`). Absent for
 * S3 uploads (the bucket's writer is not known) and records written before it existed.
 */
export type Caller =
  | { auth: 'client-key'; client: string; accessKeyId: string }
  | { auth: 'iam'; arn: string; accountId?: string; accessKeyId?: string };

export interface SubmissionRecord {
  id: string;
  source: SubmissionSource;
  status: SubmissionStatus;
  submitStatus: SubmitStatus;
  taskId?: string;
  kind?: MediaKind;
  name?: string;
  desc?: string;
  object?: ObjectRef;
  /** IVA's ImageID or VideoID. */
  dataId?: string;
  /** IVA's RequestId of the accepted submission (or of the failure). */
  requestId?: string;
  /** Why it failed (permanent), or the last retryable error while still pending. */
  error?: SubmissionError;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  submittedAt?: string;
  result?: ResultRef;
  /** Set while one container is submitting it; another delivery backs off until it passes. */
  leaseUntil?: string;
  /** When the sweep found no final result in time (status `overdue` until one arrives). */
  overdueAt?: string;
  /** When the sweep found the reserved upload never used (status `expired`). */
  expiredAt?: string;
  /** Set when it became `uncertain`; kept after a resolution, as history. */
  uncertain?: UncertainInfo;
  /** Set when its owner resolved it from `uncertain`. */
  resolution?: Resolution;
  /** Who submitted it over the API (direct or upload URL). */
  caller?: Caller;
  /** A multipart upload's reservation (kept after the object arrives, as history). */
  multipart?: MultipartInfo;
}

export interface BeginInput {
  id: string;
  source: SubmissionSource;
  taskId?: string;
  kind?: MediaKind;
  name?: string;
  desc?: string;
  object?: ObjectRef;
  caller?: Caller;
  /** Only `reserve` stores it. */
  multipart?: MultipartInfo;
}

export type BeginOutcome =
  /** This caller holds the lease and must submit (or record why not). */
  | { action: 'proceed'; record: SubmissionRecord }
  /** Already submitted or failed: a duplicate delivery, nothing to do. */
  | { action: 'duplicate'; record: SubmissionRecord }
  /** Another container holds a live lease on it right now. */
  | { action: 'busy'; record: SubmissionRecord };

export interface SubmittedInput {
  dataId: string;
  requestId: string;
  kind: MediaKind;
}

export type ResolveInput =
  /** IVA has it: the owner found it (e.g. its result arrived, or IVA's console lists it). */
  | { status: 'submitted'; dataId?: string; requestId?: string; kind?: MediaKind; note?: string }
  /** IVA does not have it and it is not to be sent again. */
  | { status: 'failed'; note?: string };

export interface ResultInput {
  dataId: string;
  /**
   * Identity of the stored body (the callback uses its SHA-256): one history entry and
   * one event claim per result id. Defaults to `location`.
   */
  resultId?: string;
  taskId?: string;
  kind?: MediaKind;
  status: ResultStatus;
  rawStatus?: string;
  location: string;
  receivedAt: string;
}

export type EventClaim = 'claimed' | 'busy' | 'published' | 'missing';

export interface ResultOutcome {
  /** The submission the data id belongs to, if its record is known yet. */
  submission?: SubmissionRecord;
  /** False when the data id's current result outranks this one (RESULT_ORDER), or on some replays. */
  applied: boolean;
  /** The result the data id shows after this call. */
  shown?: ResultRef;
}

export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  cursor?: string;
}

export interface Ledger {
  begin(input: BeginInput, options?: { leaseMs?: number }): Promise<BeginOutcome>;
  /** Creates a `pending` record with no lease (an upload URL was issued; the object comes later). */
  reserve(input: BeginInput): Promise<SubmissionRecord>;
  markSubmitted(id: string, input: SubmittedInput): Promise<SubmissionRecord>;
  markFailed(
    id: string,
    error: SubmissionError,
    fields?: Partial<Pick<BeginInput, 'taskId' | 'kind' | 'name' | 'desc'>>,
  ): Promise<SubmissionRecord>;
  /** A retryable failure: stays `pending`, keeps the error, releases the lease. */
  markRetrying(id: string, error: SubmissionError): Promise<SubmissionRecord>;
  /**
   * An ambiguous failure: IVA may have it. `uncertain`, with the cause in `uncertain` and
   * `error`, lease released. `begin` treats it like `failed` (a redelivery is a duplicate),
   * so nothing submits it again until `reopenUncertain` or `resolveUncertain`.
   */
  markUncertain(id: string, info: UncertainInfo): Promise<SubmissionRecord>;
  /** The owner's verdict on an `uncertain` submission; SubmissionNotUncertainError otherwise. */
  resolveUncertain(id: string, input: ResolveInput): Promise<SubmissionRecord>;
  /**
   * The owner asks to send an `uncertain` submission again: back to `pending` with a lease
   * for the caller (attempts + 1), `resolution.action = resubmitted`. Exactly one of
   * concurrent callers wins; the others get SubmissionNotUncertainError.
   */
  reopenUncertain(id: string, options?: { leaseMs?: number; note?: string }): Promise<SubmissionRecord>;
  /**
   * Adds the result to the data id's history (once per result id) and applies it when it
   * outranks the current one: any final (`completed`/`failed`) beats any `progress`; among
   * finals the FIRST received wins; among `progress` the latest. Ties: by location.
   */
  recordResult(input: ResultInput): Promise<ResultOutcome>;
  /**
   * Marks a `submitted` submission without a final result as overdue, once: the record
   * when this call marked it, undefined when it was not eligible or already marked.
   */
  markOverdue(id: string): Promise<SubmissionRecord | undefined>;
  /** Marks a reserved upload never used (pending, 0 attempts) as expired, once; as markOverdue. */
  markExpired(id: string): Promise<SubmissionRecord | undefined>;
  /**
   * A direct submission (`api`) still `pending`: the invocation handling it stopped (its
   * timeout, a crash) between taking the record and recording IVA's answer, so IVA may or
   * may not have it. Makes it `uncertain` with `info`, once: the record when this call
   * changed it, undefined when it was not eligible any more.
   */
  markAbandoned(id: string, info: UncertainInfo): Promise<SubmissionRecord | undefined>;
  /** Takes a mark back (its announcement failed), so the next sweep tries again. */
  unmark(id: string, mark: 'overdue' | 'expired'): Promise<void>;
  /**
   * Sweep candidates, a page at a time: `submitted` without a final result, submitted
   * before `submittedBefore`, not yet overdue; reserved uploads created before
   * `reservedBefore`, never used, not yet expired; direct submissions still `pending`
   * that began before `abandonedBefore`.
   */
  sweepCandidates(input: {
    submittedBefore: string;
    reservedBefore: string;
    abandonedBefore: string;
    cursor?: Record<string, unknown>;
  }): Promise<{
    overdue: SubmissionRecord[];
    expired: SubmissionRecord[];
    abandoned: SubmissionRecord[];
    cursor?: Record<string, unknown>;
  }>;
  /** Every result recorded for a data id, oldest first (receipt time, then location). */
  resultHistory(dataId: string): Promise<ResultRef[]>;
  /**
   * Claims the right to publish one result's event: `claimed` for exactly one caller at
   * a time (until `leaseMs` passes without `markResultEventPublished`), `busy` while
   * another holds it, `published` once done, `missing` when the result is not recorded.
   */
  claimResultEvent(dataId: string, resultId: string, options: { leaseMs: number }): Promise<EventClaim>;
  markResultEventPublished(dataId: string, resultId: string): Promise<void>;
  /** Gives a claim back (the publish failed), so the next delivery can claim at once. */
  releaseResultEvent(dataId: string, resultId: string): Promise<void>;
  get(id: string): Promise<SubmissionRecord | undefined>;
  getByDataId(dataId: string): Promise<SubmissionRecord | undefined>;
  listByTask(taskId: string, options?: { limit?: number; cursor?: string }): Promise<Page<SubmissionRecord>>;
  /**
   * Every submission in one status, across tasks (those with no TaskID included), newest
   * first: how an owner finds refusals (`failed`), `uncertain` ones, or what still waits.
   */
  listByStatus(
    status: SubmissionStatus,
    options?: { limit?: number; cursor?: string },
  ): Promise<Page<SubmissionRecord>>;
}
