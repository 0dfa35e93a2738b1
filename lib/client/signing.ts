/**
 * Signs requests to the iva-bridge API, two ways. By default in IVA's HMAC-SHA256 scheme (lib/signer; the API's
 * authorizer verifies it, lib/client-auth): X-Date, X-Content-Sha256 of the exact body
 * bytes, the host, the path as sent, the query, and a random `X-Nonce` (every signature
 * is accepted once, and two identical requests in the same second would otherwise sign
 * alike). A body is serialized here (a FormData gets its boundary) so the signed bytes
 * are the sent bytes; direct bodies are at most ~4.5 MB.
 *
 * With `aws` (`--auth iam`), AWS Signature Version 4 for service `execute-api` with the
 * caller's AWS credentials (the SDK's default provider chain unless given), for the
 * stack's IAM API (lib/client-auth/README.md, "Callers inside AWS: IAM (SigV4)").
 */
import { randomUUID } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../aws/sha256';
import { type Query, sign } from '../signer/index';

export interface ClientCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The credential scope the API expects (lib/config.ts CLIENT_AUTH_DEFAULTS): IVA's own. */
export const CLIENT_SCOPE = { region: 'cn-north-1', service: 'iva' } as const;

export interface SignedInit {
  url: string;
  init: RequestInit;
}

function queryOf(url: URL): Query {
  const out: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    out[k] ??= [];
    out[k].push(v);
  }
  return out;
}

/** The same request, with its body as bytes and the signature headers added. */
export async function signRequest(
  url: string,
  init: RequestInit,
  credentials: ClientCredentials,
  scope: { region: string; service: string } = CLIENT_SCOPE,
): Promise<SignedInit> {
  const target = new URL(url);
  const method = (init.method ?? 'GET').toUpperCase();
  // The caller's header names as given (a plain object keeps its case; a Headers object is lower-case).
  const headers: Record<string, string> =
    init.headers && !(init.headers instanceof Headers) && !Array.isArray(init.headers)
      ? { ...(init.headers as Record<string, string>) }
      : Object.fromEntries(new Headers(init.headers).entries());
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  let body: Uint8Array | undefined;
  if (init.body !== undefined && init.body !== null) {
    const serialized = new Request(target, { method, body: init.body, duplex: 'half' } as RequestInit);
    body = new Uint8Array(await serialized.arrayBuffer());
    const type = serialized.headers.get('content-type');
    if (type && !has('content-type')) headers['content-type'] = type;
  }
  headers['x-nonce'] = randomUUID();
  const query = queryOf(target);
  const signed = sign({
    method,
    host: target.host,
    path: target.pathname,
    query,
    headers,
    ...(body ? { body } : {}),
    credentials,
    region: scope.region,
    service: scope.service,
  });
  // fetch sends the URL's host itself (the same value that was signed).
  const { Host: _host, ...send } = signed.headers;
  return { url: target.href, init: { ...init, method, headers: send, ...(body ? { body } : {}) } };
}

/** AWS credentials, or the provider that yields them (refreshed as it sees fit). */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}
export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

/** SigV4 for the IAM API: the API's region and the caller's credentials (default: the SDK's provider chain). */
export interface AwsSigning {
  region: string;
  credentials?: AwsCredentials | AwsCredentialsProvider;
}

export const EXECUTE_API_SERVICE = 'execute-api';

/** `https://abc.execute-api.eu-west-1.amazonaws.com/prod/` → `eu-west-1` (undefined for other hosts). */
export function regionOfApiUrl(url: string): string | undefined {
  try {
    return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(new URL(url).hostname)?.[1];
  } catch {
    return undefined;
  }
}

/** The SDK's default credential provider chain (environment, profile, SSO, web identity, container, instance role). */
export async function defaultAwsCredentials(): Promise<AwsCredentialsProvider> {
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  return defaultProvider();
}

/** The same request, body as bytes, signed with SigV4 for execute-api (Authorization, X-Amz-Date, the session token). */
export async function signRequestSigV4(
  url: string,
  init: RequestInit,
  credentials: AwsCredentials | AwsCredentialsProvider,
  region: string,
): Promise<SignedInit> {
  const target = new URL(url);
  const method = (init.method ?? 'GET').toUpperCase();
  const headers: Record<string, string> = {};
  for (const [k, v] of new Headers(init.headers).entries()) headers[k] = v;
  let body: Uint8Array | undefined;
  if (init.body !== undefined && init.body !== null) {
    const serialized = new Request(target, { method, body: init.body, duplex: 'half' } as RequestInit);
    body = new Uint8Array(await serialized.arrayBuffer());
    const type = serialized.headers.get('content-type');
    if (type && headers['content-type'] === undefined) headers['content-type'] = type;
  }
  headers.host = target.host;
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of target.searchParams) {
    const existing = query[k];
    query[k] = existing === undefined ? v : Array.isArray(existing) ? [...existing, v] : [existing, v];
  }
  const signer = new SignatureV4({ service: EXECUTE_API_SERVICE, region, credentials, sha256: NodeSha256 });
  const signed = await signer.sign({
    method,
    protocol: target.protocol,
    hostname: target.hostname,
    ...(target.port ? { port: Number(target.port) } : {}),
    // Decoded: the signer encodes each segment itself, as API Gateway does on its side.
    path: target.pathname
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/'),
    query,
    headers,
    ...(body ? { body } : {}),
  });
  // fetch sends the URL's host itself (the same value that was signed).
  const { host: _host, ...send } = signed.headers as Record<string, string>;
  return { url: target.href, init: { ...init, method, headers: send, ...(body ? { body } : {}) } };
}

/** A `fetch` that signs every request with the client's access key. */
export function signingFetch(
  credentials: ClientCredentials,
  options: { fetch?: typeof fetch; scope?: { region: string; service: string } } = {},
): (url: string, init?: RequestInit) => Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  return async (url, init = {}) => {
    const signed = await signRequest(url, init, credentials, options.scope);
    return doFetch(signed.url, signed.init);
  };
}
