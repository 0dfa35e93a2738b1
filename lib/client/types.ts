/** The HTTP API's shapes as the client library returns them (README "Status", "Results over HTTPS"). */
import type { ResultItem } from '../api/wire';

export type {
  CompletedUpload,
  MultipartUploadTicket,
  ResultItem,
  UploadPartUrl,
  UploadPartUrls,
  UploadTicket,
} from '../api/wire';

export type MediaKind = 'image' | 'video';

/**
 * `pending` → `submitted` → `completed` | `failed`; `uncertain` when IVA may or may not
 * have taken it (its owner resolves it); later releases may add states such as
 * `overdue` or `expired`, so unknown strings are passed through.
 */
export type SubmissionStatus = 'pending' | 'submitted' | 'completed' | 'failed' | 'uncertain' | (string & {});

/** States after which nothing changes by itself: waiting stops there. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed', 'uncertain', 'expired']);

export interface Submission {
  SubmissionId: string;
  Status: SubmissionStatus;
  Source: 's3' | 'api' | 'upload';
  TaskID?: string;
  Kind?: MediaKind;
  Name?: string;
  Desc?: string;
  ImageID?: string;
  VideoID?: string;
  RequestId?: string;
  Error?: { Code: string; Message: string; RequestId?: string };
  Attempts?: number;
  CreatedAt?: string;
  UpdatedAt?: string;
  SubmittedAt?: string;
  Result?: { Status: string; RawStatus?: string; Location: string; ReceivedAt: string };
  Object?: { Bucket: string; Key: string; VersionId?: string; Size?: number };
  [field: string]: unknown;
}

/** The owner's verdict on an `uncertain` submission (POST /v1/submissions/{id}/resolve). */
export type Resolution =
  /** IVA has it; give its id, if known, so its result links to this submission. */
  | { Status: 'submitted'; ImageID?: string; VideoID?: string; DataID?: string; RequestId?: string; Note?: string }
  /** IVA does not have it, and it is not to be sent again. */
  | { Status: 'failed'; Note?: string };

export interface SubmissionPage {
  Items: Submission[];
  NextCursor?: string;
}

export interface ResultList {
  SubmissionId: string;
  Status: SubmissionStatus;
  ResultStatus?: string;
  Items: ResultItem[];
}

export interface ResultBody {
  resultId: string | undefined;
  contentType: string;
  bytes: Uint8Array;
}

/** What a send produced: the submission to follow. */
export interface Sent {
  submissionId: string;
  /** `direct`: POST /v1/images|videos; `upload`: POST /v1/uploads + PUT; `multipart`: POST /v1/uploads + parts + complete. */
  route: 'direct' | 'upload' | 'multipart';
  kind: MediaKind;
  /** IVA's ImageID/VideoID when known at once (direct route). */
  dataId?: string;
  /** IVA's RequestId (direct route). */
  requestId?: string;
}
