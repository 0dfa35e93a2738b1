/**
 * Verifies a client's request signed in IVA's own HMAC-SHA256 scheme (docs/iva-api.md,
 * "Signing"; the same canonical request as lib/signer), as the API's REQUEST authorizer
 * sees it: headers, path and query, never the body. The body is covered by the signed
 * `X-Content-Sha256` header (or, when that header is not signed, by the empty body's
 * hash, as the signers compute it); the verified hash goes to the function in the
 * authorizer context and direct-submit compares it with the body it received.
 *
 * Pure: no I/O besides the `secretOf` lookup the caller passes; no Lambda types.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  type ParsedAuthorization,
  type Query,
  canonicalQuery,
  expectedSignature,
  parseAuthorization,
  sha256Hex,
} from '../signer/index';

/** How far X-Date may be from the authorizer's clock, either way. */
export const CLOCK_SKEW_SECONDS = 15 * 60;
export const EMPTY_BODY_SHA256 = sha256Hex();

/** IVA's gateway codes (docs/iva-api.md, "Gateway error codes"): what a refusal answers. */
export const AUTH_ERROR_CODES = [
  'MissingSignature',
  'InvalidAuthorization',
  'InvalidCredential',
  'InvalidAccessKey',
  'SignatureDoesNotMatch',
  'InvalidTimestamp',
] as const;
export type AuthErrorCode = (typeof AUTH_ERROR_CODES)[number];

export interface AuthRefusal {
  ok: false;
  code: AuthErrorCode;
  message: string;
  accessKeyId?: string;
}

export interface AuthGrant {
  ok: true;
  accessKeyId: string;
  client: string;
  /** The hex SHA-256 the signature covers; the function checks the body against it. */
  bodySha256: string;
  /** The API key value whose usage plan counts this client (API Gateway key source AUTHORIZER). */
  usageKey: string;
  signature: string;
  /** X-Date as epoch seconds: the signature is stale CLOCK_SKEW_SECONDS after it. */
  signedAtSeconds: number;
}

export type AuthDecision = AuthGrant | AuthRefusal;

/** A client key as stored (lib/client-auth/keys.ts). */
export interface ClientKey {
  accessKeyId: string;
  secretAccessKey: string;
  client: string;
  usageKey: string;
}

export interface SignedRequestView {
  method: string;
  /** Candidate paths the client may have signed: the full request path first (with stage or base path), then the resource path. */
  paths: readonly string[];
  query: Query;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string>>;
}

export interface VerifyOptions {
  region: string;
  service: string;
  now: Date;
  /** The stored key of an access key id, or undefined when there is none (never issued, or revoked). */
  secretOf(accessKeyId: string): Promise<ClientKey | undefined>;
}

const refuse = (code: AuthErrorCode, message: string, accessKeyId?: string): AuthRefusal => ({
  ok: false,
  code,
  message,
  ...(accessKeyId ? { accessKeyId } : {}),
});

/** `YYYYMMDDTHHMMSSZ` → epoch seconds, or undefined. */
export function parseXDate(value: string | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function verifySignedRequest(request: SignedRequestView, options: VerifyOptions): Promise<AuthDecision> {
  const header = request.headers['authorization'];
  if (!header)
    return refuse(
      'MissingSignature',
      'The request is not signed: send an HMAC-SHA256 Authorization header (docs/iva-api.md, "Signing").',
    );
  const auth: ParsedAuthorization | undefined = parseAuthorization(header);
  if (!auth)
    return refuse(
      'InvalidAuthorization',
      'The Authorization header is not "HMAC-SHA256 Credential=<AK>/<yyyymmdd>/<region>/<service>/request, SignedHeaders=<list>, Signature=<hex>".',
    );
  const ak = auth.accessKeyId;
  if (auth.region !== options.region || auth.service !== options.service)
    return refuse(
      'InvalidCredential',
      `The credential scope must name region ${options.region} and service ${options.service}, got ${auth.region.slice(0, 32)}/${auth.service.slice(0, 32)}.`,
      ak,
    );
  if (!auth.signedHeaders.includes('x-date'))
    return refuse('InvalidAuthorization', 'SignedHeaders must include x-date.', ak);
  const xDate = request.headers['x-date'];
  const signedAt = parseXDate(xDate);
  if (signedAt === undefined) return refuse('InvalidTimestamp', 'X-Date must be the UTC time as YYYYMMDDTHHMMSSZ.', ak);
  if (xDate?.slice(0, 8) !== auth.shortDate)
    return refuse('InvalidCredential', 'The credential scope date is not the date of X-Date.', ak);
  const skew = Math.abs(options.now.getTime() / 1000 - signedAt);
  if (skew > CLOCK_SKEW_SECONDS)
    return refuse(
      'InvalidTimestamp',
      `X-Date is ${Math.round(skew)} s from the server's clock (at most ${CLOCK_SKEW_SECONDS} s): check the clock and sign again with a fresh X-Date.`,
      ak,
    );
  for (const name of auth.signedHeaders) {
    if (request.headers[name] === undefined)
      return refuse('InvalidAuthorization', `Signed header ${name.slice(0, 64)} is not in the request.`, ak);
  }
  const signedHash = auth.signedHeaders.includes('x-content-sha256') ? request.headers['x-content-sha256'] : undefined;
  if (signedHash !== undefined && !/^[0-9a-f]{64}$/.test(signedHash))
    return refuse('InvalidAuthorization', 'X-Content-Sha256 must be the hex SHA-256 of the body.', ak);
  const bodySha256 = signedHash ?? EMPTY_BODY_SHA256;

  const key = await options.secretOf(ak);
  if (!key) return refuse('InvalidAccessKey', `The access key ${ak.slice(0, 64)} does not exist or was revoked.`, ak);
  const query = canonicalQuery(request.query);
  const matches = request.paths.some((path) =>
    sameHex(
      expectedSignature(
        {
          method: request.method,
          path,
          query: {},
          header: (name) => request.headers[name],
          bodySha256,
        },
        auth,
        key.secretAccessKey,
        xDate,
        query,
      ),
      auth.signature,
    ),
  );
  if (!matches)
    return refuse(
      'SignatureDoesNotMatch',
      'The signature does not match: check the secret key and sign the method, path, query, signed headers and body hash as sent.',
      ak,
    );
  return {
    ok: true,
    accessKeyId: ak,
    client: key.client,
    bodySha256,
    usageKey: key.usageKey,
    signature: auth.signature,
    signedAtSeconds: signedAt,
  };
}
