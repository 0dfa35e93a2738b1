/**
 * All errors of the callback package. Each carries the HTTP status and the stable code
 * the callback route answers with (`{ "error": { "code", "message" } }`). Messages never
 * contain the secret, the path, or the body.
 */

export abstract class CallbackError extends Error {
  abstract readonly code: string;
  abstract readonly httpStatus: number;
}

/**
 * Wrong or missing secret. 404, not 401/403: an unauthenticated caller cannot tell the
 * callback route from a path that does not exist, so probing reveals nothing.
 */
export class NotFoundError extends CallbackError {
  override readonly name = 'NotFoundError';
  readonly code = 'NotFound';
  readonly httpStatus = 404;
  constructor() {
    super('Not found');
  }
}

export class EmptyBodyError extends CallbackError {
  override readonly name = 'EmptyBodyError';
  readonly code = 'EmptyBody';
  readonly httpStatus = 400;
  constructor() {
    super('The callback body is empty');
  }
}

/** The body said it was JSON and is not. It is still stored (under results/_unmatched/) first. */
export class MalformedJsonError extends CallbackError {
  override readonly name = 'MalformedJsonError';
  readonly code = 'MalformedJson';
  readonly httpStatus = 400;
  constructor(readonly stored?: string) {
    super(`The body is declared as JSON but does not parse${stored ? `; it was kept as ${stored}` : ''}`);
  }
}

export class PayloadTooLargeError extends CallbackError {
  override readonly name = 'PayloadTooLargeError';
  readonly code = 'PayloadTooLarge';
  readonly httpStatus = 413;
  constructor(limit: number) {
    super(`The callback body is larger than ${limit} bytes`);
  }
}

/** 503 family: nothing (or not everything) was done, and a retry by IVA is safe and wanted. */
export abstract class RetryableCallbackError extends CallbackError {
  readonly httpStatus = 503;
}

export class SecretUnavailableError extends RetryableCallbackError {
  override readonly name = 'SecretUnavailableError';
  readonly code = 'SecretUnavailable';
  constructor() {
    super('The callback secret could not be read; retry later');
  }
}

export class StorageUnavailableError extends RetryableCallbackError {
  override readonly name = 'StorageUnavailableError';
  readonly code = 'StorageUnavailable';
  constructor(readonly reason: string) {
    super('The callback could not be stored; retry later');
  }
}

/** Stored, but the ledger update failed: a retry re-records it (same key, original time). */
export class LedgerUnavailableError extends RetryableCallbackError {
  override readonly name = 'LedgerUnavailableError';
  readonly code = 'LedgerUnavailable';
  constructor(readonly reason: string) {
    super('The callback was stored but could not be recorded; retry later');
  }
}

/** Stored and recorded, but the event was not accepted: a retry emits it (see handle.ts). */
export class EventPublishError extends RetryableCallbackError {
  override readonly name = 'EventPublishError';
  readonly code = 'EventPublishFailed';
  constructor(readonly reason: string) {
    super('The callback was stored but its event could not be published; retry later');
  }
}
