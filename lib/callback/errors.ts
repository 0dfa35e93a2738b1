/**
 * All errors of the callback package. Each carries the HTTP status and the stable code
 * the callback route answers with (`{ "error": { "code", "message" } }`). Messages never
 * contain the secret, the path, or the body.
 */

import { BridgeError } from '../errors';

export abstract class CallbackError extends BridgeError {
  /** The status the callback route answers with. */
  declare readonly httpStatus: number;
  constructor(code: string, message: string, httpStatus: number, options: { retryable?: boolean } = {}) {
    super(code, message, { httpStatus, ...options });
  }
}

/**
 * Wrong or missing secret. 404, not 401/403: an unauthenticated caller cannot tell the
 * callback route from a path that does not exist, so probing reveals nothing.
 */
export class NotFoundError extends CallbackError {
  override readonly name = 'NotFoundError';
  constructor() {
    super('NotFound', 'Not found', 404);
  }
}

export class EmptyBodyError extends CallbackError {
  override readonly name = 'EmptyBodyError';
  constructor() {
    super('EmptyBody', 'The callback body is empty', 400);
  }
}

/** The body said it was JSON and is not. It is still stored (under results/_unmatched/) first. */
export class MalformedJsonError extends CallbackError {
  override readonly name = 'MalformedJsonError';
  constructor(readonly stored?: string) {
    super(
      'MalformedJson',
      `The body is declared as JSON but does not parse${stored ? `; it was kept as ${stored}` : ''}`,
      400,
    );
  }
}

export class PayloadTooLargeError extends CallbackError {
  override readonly name = 'PayloadTooLargeError';
  constructor(limit: number) {
    super('PayloadTooLarge', `The callback body is larger than ${limit} bytes`, 413);
  }
}

/**
 * 503 family: nothing (or not everything) was done, and a retry by IVA is safe and wanted.
 * Each code answers with its fixed message; `reason` says what failed, for the log line
 * only (never in the answer).
 */
const RETRY_LATER = {
  SecretUnavailable: 'The callback secret could not be read; retry later',
  StorageUnavailable: 'The callback could not be stored; retry later',
  // Stored, but the ledger update failed: a retry re-records it (same key, original time).
  LedgerUnavailable: 'The callback was stored but could not be recorded; retry later',
  // Stored and recorded, but the event was not accepted: a retry emits it (see handle.ts).
  EventPublishFailed: 'The callback was stored but its event could not be published; retry later',
  // Another delivery of the same body holds its event claim right now.
  EventInProgress: 'The same callback is being processed by another delivery; retry later',
} as const;

export abstract class RetryableCallbackError extends CallbackError {
  constructor(
    code: keyof typeof RETRY_LATER,
    readonly reason?: string,
  ) {
    super(code, RETRY_LATER[code], 503, { retryable: true });
  }
}

export class SecretUnavailableError extends RetryableCallbackError {
  override readonly name = 'SecretUnavailableError';
  constructor() {
    super('SecretUnavailable');
  }
}

export class StorageUnavailableError extends RetryableCallbackError {
  override readonly name = 'StorageUnavailableError';
  constructor(reason: string) {
    super('StorageUnavailable', reason);
  }
}

export class LedgerUnavailableError extends RetryableCallbackError {
  override readonly name = 'LedgerUnavailableError';
  constructor(reason: string) {
    super('LedgerUnavailable', reason);
  }
}

export class EventPublishError extends RetryableCallbackError {
  override readonly name = 'EventPublishError';
  constructor(reason: string) {
    super('EventPublishFailed', reason);
  }
}

export class EventInProgressError extends RetryableCallbackError {
  override readonly name = 'EventInProgressError';
  constructor() {
    super('EventInProgress');
  }
}
