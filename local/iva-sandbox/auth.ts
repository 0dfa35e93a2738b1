/**
 * Server-side check of the Volcengine HMAC-SHA256 signature, rebuilt from exactly what
 * was received (the client's SignedHeaders, the received query and body) so a client
 * that signs one thing and sends another is caught here, not in production.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { parseAuthorization, type Query, type VolcCredentials } from '../../lib/signer/index';
import { SandboxError } from './errors';
import { officialSignature } from './official-signature';

export interface VerifyInput {
  method: string;
  path: string;
  query: Query;
  headers: IncomingHttpHeaders;
  /** Hex SHA-256 of the body bytes actually received. */
  bodySha256: string;
  credentials: ReadonlyMap<string, VolcCredentials>;
  region: string;
  service: string;
  maxSkewMs: number;
  now: number;
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** `YYYYMMDDTHHMMSSZ` → epoch ms, or undefined when malformed. */
export function parseXDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : ms;
}

/** Returns the verified access key id, or throws the gateway's error. */
export function verifySignature(input: VerifyInput): string {
  const authorization = headerValue(input.headers, 'authorization');
  if (!authorization)
    throw new SandboxError('MissingAuthenticationToken', 401, 'The request has no Authorization header.');
  const auth = parseAuthorization(authorization);
  if (!auth) {
    throw new SandboxError(
      'InvalidAuthorization',
      400,
      'The Authorization header is malformed: expected "HMAC-SHA256 Credential=AK/yyyymmdd/region/service/request, SignedHeaders=…, Signature=…".',
    );
  }
  const credentials = input.credentials.get(auth.accessKeyId);
  if (!credentials)
    throw new SandboxError('InvalidAccessKey', 401, 'The access key id in the Authorization header is not known.');

  const xDate = headerValue(input.headers, 'x-date');
  if (!xDate) throw new SandboxError('InvalidTimestamp', 400, 'The X-Date header is missing.');
  const signedAt = parseXDate(xDate);
  if (signedAt === undefined)
    throw new SandboxError('InvalidTimestamp', 400, `X-Date "${xDate}" is not in the YYYYMMDDTHHMMSSZ format.`);
  const skew = Math.abs(input.now - signedAt);
  if (skew > input.maxSkewMs) {
    throw new SandboxError(
      'InvalidTimestamp',
      400,
      `X-Date ${xDate} is ${Math.round(skew / 1000)} s away from the server time; at most ${Math.round(input.maxSkewMs / 1000)} s is accepted.`,
    );
  }
  if (auth.shortDate !== xDate.slice(0, 8)) {
    throw new SandboxError(
      'InvalidCredential',
      400,
      `The credential scope date ${auth.shortDate} does not match X-Date ${xDate}.`,
    );
  }
  if (auth.region !== input.region || auth.service !== input.service) {
    throw new SandboxError(
      'InvalidCredential',
      400,
      `The credential scope is for region "${auth.region}" and service "${auth.service}"; this endpoint is region "${input.region}", service "${input.service}".`,
    );
  }

  if (credentials.sessionToken) {
    const token = headerValue(input.headers, 'x-security-token');
    if (!token || !safeEqual(token, credentials.sessionToken)) {
      throw new SandboxError(
        'InvalidSecretToken',
        401,
        'X-Security-Token is missing or does not match the session token of these credentials.',
      );
    }
    if (!auth.signedHeaders.includes('x-security-token')) {
      throw new SandboxError('InvalidSecretToken', 401, 'X-Security-Token must be listed in SignedHeaders.');
    }
  }

  const declaredSha = headerValue(input.headers, 'x-content-sha256');
  if (declaredSha !== undefined && declaredSha.toLowerCase() !== input.bodySha256) {
    throw new SandboxError(
      'SignatureDoesNotMatch',
      401,
      'X-Content-Sha256 does not match the SHA-256 of the body received.',
    );
  }

  const expected = officialSignature({
    method: input.method,
    path: input.path,
    query: input.query,
    header: (name) => headerValue(input.headers, name),
    signedHeaders: auth.signedHeaders,
    bodySha256: input.bodySha256,
    region: auth.region,
    service: auth.service,
    accessKeyId: auth.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
    xDate,
  });
  if (!safeEqual(expected, auth.signature)) {
    throw new SandboxError(
      'SignatureDoesNotMatch',
      401,
      'The request signature does not match the signature computed by the server.',
    );
  }
  return auth.accessKeyId;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
