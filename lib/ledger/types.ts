import type { MediaKind } from '../iva/types';

/** What users see. `pending` until IVA accepted it, then `submitted`, then the callback decides. */
export type SubmissionStatus = 'pending' | 'submitted' | 'completed' | 'failed';
export type SubmissionSource = 's3' | 'api' | 'upload';

/** The part of the status the submitting functions own. */
export type SubmitStatus = 'pending' | 'submitted' | 'failed';

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

export interface SubmissionError {
  code: string;
  message: string;
  requestId?: string;
}

export interface ResultRef {
  status: ResultStatus;
  /** The status string exactly as IVA sent it, when it sent one. */
  rawStatus?: string;
  /** `s3://bucket/results/...` of the stored body. */
  location: string;
  receivedAt: string;
}

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
}

export interface BeginInput {
  id: string;
  source: SubmissionSource;
  taskId?: string;
  kind?: MediaKind;
  name?: string;
  desc?: string;
  object?: ObjectRef;
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

export interface ResultInput {
  dataId: string;
  taskId?: string;
  kind?: MediaKind;
  status: ResultStatus;
  rawStatus?: string;
  location: string;
  receivedAt: string;
}

export interface ResultOutcome {
  /** The submission the data id belongs to, if its record is known yet. */
  submission?: SubmissionRecord;
  /** False when a newer callback for the same data id was already recorded. */
  applied: boolean;
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
  recordResult(input: ResultInput): Promise<ResultOutcome>;
  get(id: string): Promise<SubmissionRecord | undefined>;
  getByDataId(dataId: string): Promise<SubmissionRecord | undefined>;
  listByTask(taskId: string, options?: { limit?: number; cursor?: string }): Promise<Page<SubmissionRecord>>;
}
