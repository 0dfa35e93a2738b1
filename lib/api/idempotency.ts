/**
 * `Idempotency-Key` on the submitting routes (POST /v1/images, /v1/videos, the vendor
 * route, /v1/uploads), after Stripe's convention and the IETF httpapi draft:
 *
 * - same key, same request → the first answer again (same status, SubmissionId, IVA ids),
 *   with `idempotent-replayed: true`, without calling IVA;
 * - same key, different request → 422 IdempotencyKeyReuse;
 * - the first request with that key still running → 409 IdempotencyKeyInFlight with
 *   Retry-After;
 * - keys are kept IDEMPOTENCY_TTL_SECONDS (24 h) after first use.
 *
 * "Same request" is the route plus what the request asks for once parsed (the Request
 * fields and the file's SHA-256), not the raw body: a client's multipart encoder picks a
 * new boundary on every retry. Only answers with a lasting effect are kept (status < 500:
 * submitted, uncertain, refused by IVA, an upload URL); a 5xx (IVA unavailable, our own
 * fault) forgets the key so that a retry with it runs again. Requests refused before
 * that (400s of validation) never touch the key.
 */
import { createHash } from 'node:crypto';
import type { IdempotencyStore, StoredResponse } from '../ledger/idempotency';
import { header } from './body';
import { ApiError } from './errors';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';
const MAX_KEY_CHARS = 255;

/** The key, if the request has one; 400 InvalidIdempotencyKey if it is not usable. */
export function idempotencyKeyOf(req: ApiRequest): string | undefined {
  const raw = header(req, IDEMPOTENCY_KEY_HEADER);
  if (raw === undefined) return undefined;
  // The IETF draft sends it as a structured-field string: "abc"; accept it bare too.
  const key = /^".*"$/.test(raw) ? raw.slice(1, -1) : raw;
  if (key === '' || key.length > MAX_KEY_CHARS || !/^[\x20-\x7e]+$/.test(key))
    throw new ApiError(
      'InvalidIdempotencyKey',
      `The Idempotency-Key header must be 1-${MAX_KEY_CHARS} printable ASCII characters (a UUID is a good choice)`,
    );
  return key;
}

/** JSON with object keys sorted, so that the same values always hash the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

export function fingerprint(route: string, parts: unknown, files: readonly (readonly Uint8Array[])[] = []): string {
  const hash = createHash('sha256').update(route).update('\n').update(canonicalJson(parts));
  for (const chunks of files) {
    const file = createHash('sha256');
    for (const chunk of chunks) file.update(chunk);
    hash.update('\n').update(file.digest('hex'));
  }
  return hash.digest('hex');
}

/**
 * Runs `run` at most once per key (within the window), answering repeats from the store.
 * Without a key, or without a store, it just runs.
 */
export async function withIdempotency(
  req: ApiRequest,
  deps: ApiDeps,
  print: () => string,
  options: { submissionId?: string },
  run: () => Promise<ApiResponse>,
): Promise<ApiResponse> {
  const key = idempotencyKeyOf(req);
  const store: IdempotencyStore | undefined = deps.idempotency;
  if (key === undefined || !store) return run();
  const claim = await store.claim(key, print(), {
    // The first request holds the key while its function can still answer.
    lockMs: Math.max(1_000, req.remainingMs()),
    ...(options.submissionId ? { submissionId: options.submissionId } : {}),
  });
  switch (claim.action) {
    case 'replay':
      deps.logger?.info('idempotent replay', { status: claim.response.status });
      return {
        status: claim.response.status,
        headers: { ...claim.response.headers, [IDEMPOTENT_REPLAYED_HEADER]: 'true' },
        body: claim.response.body,
      };
    case 'mismatch':
      throw new ApiError(
        'IdempotencyKeyReuse',
        'This Idempotency-Key was already used for a different request (another route, other fields or another file); use a new key for a new request',
      );
    case 'inFlight':
      throw new ApiError(
        'IdempotencyKeyInFlight',
        claim.stale
          ? `The first request with this Idempotency-Key did not finish${claim.submissionId ? `; see GET /v1/submissions/${claim.submissionId} for what became of it` : ''}`
          : 'The first request with this Idempotency-Key is still being processed; retry after the Retry-After seconds',
        { retryAfterSeconds: claim.retryAfterSeconds },
      );
    case 'proceed':
      break;
  }
  let response: ApiResponse;
  try {
    response = await run();
  } catch (error) {
    await store.release(key).catch(() => undefined);
    throw error;
  }
  try {
    if (response.status < 500) {
      const stored: StoredResponse = { status: response.status, headers: response.headers, body: response.body };
      await store.complete(key, stored);
    } else await store.release(key);
  } catch (error) {
    // The answer stands; a retry with this key then waits out the lock and sees the ledger.
    deps.logger?.error('could not record the Idempotency-Key outcome', { error: (error as Error).message });
  }
  return response;
}
