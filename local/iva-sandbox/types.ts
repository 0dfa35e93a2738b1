import type { VolcCredentials } from '../../lib/signer/index';
import type { ParsedSubmission, SandboxKind } from './multipart';

export type SandboxAction = 'AddAsyncTaskImageData' | 'AddAsyncTaskVideoData';
export type CallbackStatus = 'success' | 'failed';

export interface RateLimit {
  perSecond: number;
  burst?: number;
}

export interface IvaSandboxOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Keys the sandbox accepts; default DEFAULT_SANDBOX_CREDENTIALS. */
  credentials?: VolcCredentials | readonly VolcCredentials[];
  /** Credential scope the signature must use; defaults cn-north-1 / iva like the real gateway. */
  region?: string;
  service?: string;
  /** Largest accepted distance between X-Date and the server clock (default 15 min). */
  maxSkewMs?: number;
  /** Where results are POSTed after a submission; none → no callbacks. */
  callbackUrl?: string;
  /** Delay between accepting a submission and its first callback attempt (default 50 ms). */
  callbackDelayMs?: number;
  /** `failed` makes every callback report an analysis failure (default `success`). */
  callbackStatus?: CallbackStatus;
  /** Delivery attempts per callback, the first included (default 4). */
  callbackAttempts?: number;
  /** Backoff before the 2nd attempt, doubled each time (default 100 ms). */
  callbackBackoffMs?: number;
  /** Per-attempt timeout of a callback POST (default 5 s). */
  callbackTimeoutMs?: number;
  /** Labels reported in a success callback; default one "sandbox" label. */
  labels?: (submission: Submission) => CallbackLabel[];
  /** IVA's image limit (default 50 MB, lib/config IMAGE_MAX_BYTES). */
  imageMaxBytes?: number;
  /** Bodies beyond this are refused without parsing (default 128 MB). */
  maxBodyBytes?: number;
  /** Timeout for fetching a Source=url object (default 30 s). */
  downloadTimeoutMs?: number;
  /**
   * IVA's flow limit, as a token bucket: `perSecond` submissions a second, `burst` at once
   * (default perSecond). A submission over it gets IVA's 429 `FlowLimitExceeded`. Default: none.
   */
  rateLimit?: RateLimit;
  /** Server clock, for skew checks and the flow limit's refill (default Date.now). */
  now?: () => number;
  /** One line per notable event; nothing secret is passed to it. Default: silent. */
  log?: (line: string) => void;
}

export interface CallbackLabel {
  Name: string;
  Confidence: number;
}

/** What the gateway accepted: the parsed request, with its bytes flattened and its ids. */
export interface Submission extends Omit<ParsedSubmission, 'file'> {
  action: SandboxAction;
  kind: SandboxKind;
  /** The file part's bytes (Source=file) or the downloaded bytes (Source=url). */
  file?: Buffer;
  fileName?: string;
  fileContentType?: string;
  size: number;
  sha256: string;
  /** ImageID or VideoID. */
  dataId: string;
  requestId: string;
  accessKeyId: string;
  receivedAt: string;
}

/** A submission as the control endpoint lists it: no bytes. */
export type SubmissionSummary = Omit<Submission, 'file'>;

export type Fault =
  /** Answer this gateway error instead of processing the request. */
  | { count?: number; code: string; httpStatus: number; message?: string }
  /** Process normally, but answer only after this delay. */
  | { count?: number; delayMs: number }
  /**
   * Destroy the socket without answering. With `afterAccept`, the submission is
   * recorded (and called back) first: the "accepted but the answer was lost" case.
   */
  | { count?: number; drop: true; afterAccept?: boolean };

export interface SandboxRequest {
  method: string;
  path: string;
  action?: string;
  requestId: string;
  receivedAt: string;
  /** Filled when answered. */
  httpStatus?: number;
  /** The error code answered, if any. */
  code?: string;
  fault?: 'error' | 'delay' | 'drop';
  dropped?: boolean;
}

export interface CallbackDelivery {
  taskId: string;
  dataId: string;
  attempt: number;
  url: string;
  ok: boolean;
  /** The receiver's HTTP status; absent when it could not be reached. */
  httpStatus?: number;
  error?: string;
  body: string;
  at: string;
}

export interface SandboxEvents {
  submission: [Submission];
  callback: [CallbackDelivery];
  request: [SandboxRequest];
}
