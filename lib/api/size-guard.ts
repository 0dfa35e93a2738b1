/**
 * The size check run by the API's REQUEST authorizer (functions/size-guard) before a
 * direct multipart submission reaches Lambda. API Gateway base64-encodes multipart
 * bodies, so a raw body over DIRECT_MAX_BYTES (4.5 MB) becomes a Lambda event over
 * 6 MB: the invoke then fails and API Gateway answers a bare 502. Only the declared
 * `Content-Length` is available before the body is forwarded, so that is what is judged.
 *
 * Pure: no Lambda types, no I/O.
 */
import { DEFAULTS, ENV, number, type Env } from '../config';

export type HeaderMap = Readonly<Record<string, string | undefined>>;

export type SizeDecision =
  /** The declared raw body fits. */
  | { kind: 'allow'; contentLength: number; maxBytes: number }
  /** Over the limit: answered 413 naming POST /v1/uploads, Lambda never invoked. */
  | { kind: 'deny-too-large'; contentLength: number; maxBytes: number }
  /**
   * No usable Content-Length (chunked upload, or a malformed value). Let it through:
   * direct-submit measures the decoded body itself and answers 413 PayloadTooLarge, and
   * a body too big for the Lambda payload ends in the INTEGRATION_FAILURE response,
   * which names POST /v1/uploads too.
   *
   * A malformed value is not denied: the authorizer's only deny answer is the 413
   * gateway response, which would misdescribe it, and API Gateway's front end refuses
   * broken framing before an authorizer ever runs.
   */
  | { kind: 'allow-unknown'; reason: 'missing' | 'malformed'; maxBytes: number };

/** The limit the authorizer enforces: the same variable and default as direct-submit. */
export function directMaxBytesFromEnv(env: Env = process.env): number {
  return number(env, ENV.directMaxBytes, DEFAULTS.directMaxBytes);
}

/** Header lookup by name, whatever case the client (or HTTP/1 vs HTTP/2) used. */
function headerValue(headers: HeaderMap | null | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted && typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * Parses a Content-Length value. A list of identical values ("42, 42", from a header
 * sent twice) counts as one (RFC 9110 §8.6); differing values or anything but digits is
 * malformed. Huge digit strings parse to numbers over any limit, which is the right answer.
 */
export function parseContentLength(raw: string): number | undefined {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) return undefined;
  const first = parts[0] as string;
  if (parts.some((p) => Number(p) !== Number(first))) return undefined;
  return Number(first);
}

export function checkDirectBodySize(headers: HeaderMap | null | undefined, maxBytes: number): SizeDecision {
  const raw = headerValue(headers, 'content-length');
  if (raw === undefined || raw.trim() === '') return { kind: 'allow-unknown', reason: 'missing', maxBytes };
  const contentLength = parseContentLength(raw);
  if (contentLength === undefined) return { kind: 'allow-unknown', reason: 'malformed', maxBytes };
  // Same comparison as direct-submit's decoded-body check (lib/api/body.ts): at the limit is fine.
  if (contentLength > maxBytes) return { kind: 'deny-too-large', contentLength, maxBytes };
  return { kind: 'allow', contentLength, maxBytes };
}
