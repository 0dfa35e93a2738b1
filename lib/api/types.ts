/**
 * The HTTP API's own request/response types: plain data, no Lambda types. The handler
 * (functions/direct-submit) turns API Gateway events into these and back.
 */
import type { ObservabilityDeps } from '../observability';
import type { Caller, Ledger } from '../ledger/types';
import type { IvaClient } from '../iva/types';
import type { SubmissionEventPublisher } from '../callback/events';
import type { S3Client } from '@aws-sdk/client-s3';

export interface ApiRequest {
  method: string;
  /**
   * The request path as the client sent it, without stage, e.g. `/v1/images` (behind a
   * custom domain it still carries the base path mapping's prefix). Routing reads
   * `resource` when present; `path` is the fallback and what messages quote.
   */
  path: string;
  /** The API Gateway resource template that matched, e.g. `/v1/submissions/{id}`. */
  resource?: string;
  /**
   * When API Gateway received the request (epoch ms, `requestContext.requestTimeEpoch`).
   * Its 29 s integration timeout also covers the body transfer and a cold start, so time
   * budgets count from here, not from handler entry.
   */
  receivedAtMs?: number;
  /** Header names lower-cased; repeated headers joined by `, `. */
  headers: Readonly<Record<string, string>>;
  /** Every value of each query parameter, in order. */
  query: Readonly<Record<string, readonly string[]>>;
  /** Path parameters API Gateway already extracted (decoded), when the resource had some. */
  pathParameters?: Readonly<Record<string, string>>;
  /** The body as the gateway delivered it: base64 text (binary media types) or plain text. */
  body?: { text: string; base64: boolean };
  /**
   * The body SHA-256 (hex) the client's signature covers, as the API's authorizer verified
   * it (`requestContext.authorizer.bodySha256`): the body must hash to it. Absent when no
   * authorizer ran (tests, the callback route).
   */
  signedBodySha256?: string;
  /**
   * Who is calling, as API Gateway established it (the authorizer's verified client key,
   * or the IAM API's SigV4 principal); recorded on the submissions it creates.
   */
  caller?: Caller;
  /** Our RequestId for errors we answer ourselves (the gateway's or Lambda's request id). */
  requestId: string;
  /** ms left before the function must have answered. */
  remainingMs: () => number;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A key pair cache whose refresh() re-reads a rotated secret. */
export interface CredentialsRefresher {
  refresh(): Promise<unknown>;
}

export interface ApiConfig {
  /** Largest decoded body for direct submissions. */
  directMaxBytes: number;
  uploadUrlTtlSeconds: number;
  /** What the success metadata reports, like IVA: `iva` / `cn-north-1`. */
  ivaService: string;
  ivaRegion: string;
  /** Never wait on IVA past this, whatever Lambda allows (API Gateway cuts at 29 s). */
  maxBudgetMs?: number;
  /** Kept back from Lambda's remaining time to answer and record (default 1 500 ms). */
  budgetMarginMs?: number;
}

/** `logger` and `metrics` (lib/observability): silent by default; the handler passes Powertools'. */
export interface ApiDeps extends ObservabilityDeps {
  ledger: Ledger;
  iva: IvaClient;
  /** Refreshed when IVA refuses our keys (rotation). */
  credentials?: CredentialsRefresher;
  s3: S3Client;
  /**
   * Signs the upload URLs when set (an assumed-role session with a known expiry, so
   * ExpiresAt is the URL's real end); default `s3`.
   */
  presignS3?: S3Client;
  bucket: string;
  config: ApiConfig;
  /** Idempotency-Key records; none → the header is ignored. */
  idempotency?: import('../ledger/idempotency').IdempotencyStore;
  /** The intake queue, where resubmit sends an S3 event of the object again; none → 503 ResubmitUnavailable. */
  intakeQueue?: Pick<import('../s3-intake/redelivery').QueuePort, 'send'>;
  /** Announces submissions left `uncertain` (EventBridge); none → not announced. */
  events?: SubmissionEventPublisher;
  /** Submission id factory (default `api_`/`upl_` + random UUID). */
  newId?: (source: 'api' | 'upload') => string;
  now?: () => Date;
}
