/**
 * What API Gateway does in front of an AWS_IAM method, for the local stack's IAM API:
 * verify the request's AWS Signature Version 4 (service `execute-api`, the stack's
 * region) by signing it again with the real @smithy/signature-v4 and the caller's secret
 * key, then apply the resource policy's principals. Refusals carry API Gateway's own
 * response type, error type and message (docs/aws-behaviour.md, "AWS_IAM methods").
 *
 * Known key pairs stand in for IAM: each maps an access key id to its secret, an optional
 * session token and the principal ARN API Gateway would put in `requestContext.identity`.
 * Identity-based IAM policies are not evaluated locally: a principal the resource policy
 * allows is allowed.
 */
import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../../lib/aws/sha256';

export const EXECUTE_API_SERVICE = 'execute-api';
/** How far X-Amz-Date may be from the server's clock before AWS answers "Signature expired". */
export const SIGV4_CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface KnownAwsKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** The principal: `arn:aws:iam::<account>:user/<name>` or `arn:aws:sts::<account>:assumed-role/<role>/<session>`. */
  arn: string;
}

export interface SigV4Request {
  method: string;
  /** The path as received (still percent-encoded), without the query. */
  rawPath: string;
  search: string;
  /** Node's rawHeaders: name, value, name, value… */
  rawHeaders: readonly string[];
  body: Buffer;
}

export interface SigV4Identity {
  arn: string;
  accountId: string;
  accessKeyId: string;
  /** `requestContext.identity.caller`: the principal's unique id locally stood in by its name. */
  caller: string;
}

export type SigV4Outcome =
  | { ok: true; identity: SigV4Identity }
  | { ok: false; responseType: string; errorType: string; message: string; accessKeyId?: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';

const refuse = (responseType: string, errorType: string, message: string, accessKeyId?: string): SigV4Outcome => ({
  ok: false,
  responseType,
  errorType,
  message,
  ...(accessKeyId ? { accessKeyId } : {}),
});

/** `20261203T090000Z` → Date. */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const amzDate = (date: Date): string =>
  date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

export function accountOf(arn: string): string {
  return /^arn:[^:]+:(?:iam|sts)::(\d{12}):/.exec(arn)?.[1] ?? '';
}

/**
 * Whether a resource policy principal allows this caller: the same ARN, the caller's
 * account (`arn:…:iam::<account>:root` or the bare account id, which delegate to that
 * account's IAM policies, not evaluated locally), or the role an assumed-role session
 * belongs to.
 */
export function principalAllows(principal: string, callerArn: string): boolean {
  if (principal === '*' || principal === callerArn) return true;
  const account = accountOf(callerArn);
  if (principal === account) return true;
  const root = /^arn:[^:]+:iam::(\d{12}):root$/.exec(principal);
  if (root) return root[1] === account;
  const role = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(principal);
  const session = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\//.exec(callerArn);
  return Boolean(role && session && role[1] === session[1] && role[2] === session[2] && role[3] === session[3]);
}

/** API Gateway's IncompleteSignatureException text: one sentence per missing part, then the header itself. */
function incomplete(
  parts: { credential: boolean; signature: boolean; signedHeaders: boolean; date: boolean },
  header: string,
) {
  const missing = [
    parts.credential ? '' : "Authorization header requires 'Credential' parameter.",
    parts.signature ? '' : "Authorization header requires 'Signature' parameter.",
    parts.signedHeaders ? '' : "Authorization header requires 'SignedHeaders' parameter.",
    parts.date ? '' : "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
  ].filter(Boolean);
  return refuse(
    'MISSING_AUTHENTICATION_TOKEN',
    'IncompleteSignatureException',
    `${missing.join(' ')} Authorization=${header}`,
  );
}

export interface VerifyOptions {
  region: string;
  keyOf(accessKeyId: string): KnownAwsKey | undefined;
  /** AWS principals of the resource policy (resolved). */
  principals: readonly string[];
  /** `arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>`, for the AccessDenied message. */
  methodArn: string;
  now?: () => Date;
}

/** Verifies one request as API Gateway does for an AWS_IAM method behind a resource policy. */
export async function verifySigV4(req: SigV4Request, options: VerifyOptions): Promise<SigV4Outcome> {
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    headers.set(name, headers.has(name) ? `${headers.get(name)},${value}` : value);
  }
  const header = headers.get('authorization');
  if (header === undefined || header.trim() === '')
    return refuse(
      'MISSING_AUTHENTICATION_TOKEN',
      'MissingAuthenticationTokenException',
      'Missing Authentication Token',
    );

  // `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  const params = new Map<string, string>();
  for (const pair of (space < 0 ? '' : header.slice(space + 1)).split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) params.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  const dateHeader = headers.get('x-amz-date');
  const sigv4 = algorithm === ALGORITHM;
  const parts = {
    credential: sigv4 && params.has('Credential'),
    signature: sigv4 && params.has('Signature'),
    signedHeaders: sigv4 && params.has('SignedHeaders'),
    date: dateHeader !== undefined,
  };
  if (!parts.credential || !parts.signature || !parts.signedHeaders || !parts.date) return incomplete(parts, header);

  const scope = params.get('Credential')!.split('/');
  const [accessKeyId, scopeDate, scopeRegion, scopeService, terminator] = scope;
  if (scope.length !== 5 || !accessKeyId || terminator !== 'aws4_request')
    return refuse(
      'MISSING_AUTHENTICATION_TOKEN',
      'IncompleteSignatureException',
      `Credential=${params.get('Credential')} is not <access key id>/<YYYYMMDD>/<region>/${EXECUTE_API_SERVICE}/aws4_request. Authorization=${header}`,
    );
  if (scopeRegion !== options.region)
    return refuse(
      'INVALID_SIGNATURE',
      'InvalidSignatureException',
      `Credential should be scoped to a valid region. Credential should be scoped to correct service: '${EXECUTE_API_SERVICE}'.`,
      accessKeyId,
    );
  if (scopeService !== EXECUTE_API_SERVICE)
    return refuse(
      'INVALID_SIGNATURE',
      'InvalidSignatureException',
      `Credential should be scoped to correct service: '${EXECUTE_API_SERVICE}'. `,
      accessKeyId,
    );
  const signedAt = parseAmzDate(dateHeader!);
  if (!signedAt || scopeDate !== dateHeader!.slice(0, 8))
    return refuse(
      'INVALID_SIGNATURE',
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${dateHeader!.slice(0, 8)}', from '${dateHeader}'.`,
      accessKeyId,
    );
  const now = options.now?.() ?? new Date();
  if (Math.abs(now.getTime() - signedAt.getTime()) > SIGV4_CLOCK_SKEW_MS) {
    const early = signedAt.getTime() < now.getTime();
    const bound = new Date(now.getTime() + (early ? -1 : 1) * SIGV4_CLOCK_SKEW_MS);
    return refuse(
      'INVALID_SIGNATURE',
      'InvalidSignatureException',
      `Signature ${early ? 'expired' : 'not yet current'}: ${dateHeader} is now ${early ? 'earlier' : 'later'} than ${amzDate(bound)} (${amzDate(now)} ${early ? '-' : '+'} 5 min.)`,
      accessKeyId,
    );
  }

  const key = options.keyOf(accessKeyId);
  const token = headers.get('x-amz-security-token');
  if (!key || (key.sessionToken ?? undefined) !== (token ?? undefined))
    return refuse(
      'INVALID_SIGNATURE',
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
      accessKeyId,
    );

  // Sign the request again, over exactly the headers the client says it signed, with the
  // body as received (SigV4 covers the payload: a declared x-amz-content-sha256 must be it).
  const bodyHash = createHash('sha256').update(req.body).digest('hex');
  const declaredHash = headers.get('x-amz-content-sha256');
  const signedNames = params.get('SignedHeaders')!.split(';');
  const toSign: Record<string, string> = {};
  for (const name of signedNames) {
    const value = headers.get(name);
    if (value !== undefined) toSign[name] = value;
  }
  const mismatch = refuse(
    'INVALID_SIGNATURE',
    'InvalidSignatureException',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    accessKeyId,
  );
  if (!signedNames.includes('host') || Object.keys(toSign).length !== signedNames.length) return mismatch;
  if (declaredHash !== undefined && declaredHash !== bodyHash) return mismatch;
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(req.search)) {
    const existing = query[k];
    query[k] = existing === undefined ? v : Array.isArray(existing) ? [...existing, v] : [existing, v];
  }
  const signer = new SignatureV4({
    service: EXECUTE_API_SERVICE,
    region: options.region,
    credentials: {
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      ...(key.sessionToken ? { sessionToken: key.sessionToken } : {}),
    },
    sha256: NodeSha256,
  });
  let expected: string | undefined;
  try {
    const path = req.rawPath
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/');
    const signed = await signer.sign(
      {
        method: req.method,
        protocol: 'http:',
        hostname: (headers.get('host') ?? '').replace(/:\d+$/, ''),
        path,
        query,
        headers: toSign,
        body: req.body,
      },
      { signingDate: signedAt, signableHeaders: new Set(signedNames) },
    );
    const authorization = Object.entries(signed.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
    const signedHeadersOut = /SignedHeaders=([^,]+)/.exec(authorization ?? '')?.[1];
    if (signedHeadersOut !== params.get('SignedHeaders')) return mismatch;
    expected = /Signature=([0-9a-f]{64})/.exec(authorization ?? '')?.[1];
  } catch {
    return mismatch;
  }
  if (!expected || expected !== params.get('Signature')) return mismatch;

  // The resource policy: only its principals get past it.
  if (!options.principals.some((p) => principalAllows(p, key.arn)))
    return refuse(
      'ACCESS_DENIED',
      'AccessDeniedException',
      `User: ${key.arn} is not authorized to perform: execute-api:Invoke on resource: ${options.methodArn} because no resource-based policy allows the execute-api:Invoke action`,
      accessKeyId,
    );
  return {
    ok: true,
    identity: {
      arn: key.arn,
      accountId: accountOf(key.arn),
      accessKeyId,
      caller: key.arn.split(/[:/]/).slice(-1)[0] ?? key.arn,
    },
  };
}
