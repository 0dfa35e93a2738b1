import type { Readable } from 'node:stream';
import type { VolcCredentials } from '../signer/index';

export type MediaKind = 'image' | 'video';

/**
 * A file to send with Source=file, held the way the caller already holds it so the
 * client never copies it into a new body: one buffer, several views of one buffer
 * (busboy chunks), or a stream factory (called twice: once to hash, once to send).
 */
export type FileData =
  | Uint8Array
  | readonly Uint8Array[]
  | {
      size: number;
      open: () => Readable;
      /**
       * Hex SHA-256 of the file's bytes, checked on the hashing read. It cannot spare
       * that read: the signed hash covers the multipart framing around the file too.
       */
      sha256?: string;
    };

export type SubmitSource =
  | { type: 'url'; url: string }
  | { type: 'file'; data: FileData; filename?: string; contentType?: string };

export interface SubmitInput {
  kind: MediaKind;
  taskId: string;
  name: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
  source: SubmitSource;
}

export interface SubmitResult {
  kind: MediaKind;
  /** ImageID or VideoID. */
  dataId: string;
  requestId: string;
  /** HTTP attempts made, including the successful one. */
  attempts: number;
}

/** Told before each wait between attempts; only failures that sent nothing are retried. */
export interface RetryInfo {
  /** The attempt that just failed (1-based). */
  attempt: number;
  /** The wait before the next attempt. */
  delayMs: number;
  error: import('./errors').IvaError;
}

export interface SubmitOptions {
  /** Total time for all attempts and backoff, in ms. Defaults to the client's. */
  budgetMs?: number;
  signal?: AbortSignal;
  onRetry?: (info: RetryInfo) => void;
}

export type CredentialsProvider = VolcCredentials | (() => Promise<VolcCredentials>);

export interface IvaClientConfig {
  credentials: CredentialsProvider;
  /** Defaults: https://open.volcengineapi.com, cn-north-1, iva. */
  endpoint?: string;
  region?: string;
  service?: string;
  /**
   * Base per-attempt timeout in ms (default 20 000); each attempt adds the body's
   * size at `minThroughputBytesPerSecond`, and never outlives the call's budget.
   */
  timeoutMs?: number;
  /** The slowest upload an attempt waits for (default 512 KiB/s). */
  minThroughputBytesPerSecond?: number;
  /** Default total budget in ms when a call gives none (default 60 000). */
  budgetMs?: number;
  baseDelayMs?: number;
  /** A kept-alive connection idle longer than this is closed, not reused (default 4 000 ms). */
  maxIdleReuseMs?: number;
  /** Least budget left for a retry to start (default 1 000 ms); the first attempt always starts. */
  minAttemptMs?: number;
  maxDelayMs?: number;
  /**
   * Time used for X-Date (ms since epoch; default Date.now). After an InvalidTimestamp
   * the client corrects it by the gateway's Date header, so a skewed clock self-heals.
   */
  clock?: () => number;
}

export interface IvaClient {
  submit(input: SubmitInput, options?: SubmitOptions): Promise<SubmitResult>;
  /** Closes idle keep-alive connections (tests, CLI exit). Optional for fakes. */
  close?(): void;
}
