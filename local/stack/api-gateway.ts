/**
 * The HTTP front of the local stack: an API Gateway REST API emulation with the routes,
 * API keys, authorizer, binary media types and gateway responses of the synthesized
 * template (local/stack/template.ts), and API Gateway's fixed limits. Each request
 * becomes a Lambda proxy event (REST payload v1) exactly as API Gateway builds it, and
 * the proxy result is mapped back to HTTP.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listen, urlOf } from '../servers/http-close';
import { invoke, LambdaTimeoutError, type LocalFunction } from './lambda';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsHttpStatus } from '../../lib/aws/errors';
import { type KnownAwsKey, verifySigV4 } from './sigv4';
import type { CfnValue, TemplateGatewayResponse, TemplateRoute, TemplateS3Integration } from './template';

/** API Gateway's own limit on a request payload. */
export const API_GATEWAY_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;
/** Lambda's limit on a synchronous invocation payload (the whole event JSON). */
export const LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

export type Route = TemplateRoute;

/** The deployed gateway responses' messages (infra/stack.ts; the local gateway renders the template's). */
export const REQUEST_TOO_LARGE_MESSAGE =
  'Request body too large for direct submission (files over about 4.5 MB). Call POST /v1/uploads to get a presigned upload URL instead.';
export const INTEGRATION_FAILURE_MESSAGE =
  'The request could not be handed to the function. The usual cause is a body over 4.5 MB, too large for a direct submission: send large files with POST /v1/uploads (presigned upload URL). If the body was small, retry later.';

/** API Gateway's default status and message per response type, used where the template sets none. */
const RESPONSE_DEFAULTS: Record<string, { status: number; message: string; errorType: string }> = {
  MISSING_AUTHENTICATION_TOKEN: {
    status: 403,
    message: 'Missing Authentication Token',
    errorType: 'MissingAuthenticationTokenException',
  },
  INVALID_API_KEY: { status: 403, message: 'Forbidden', errorType: 'ForbiddenException' },
  ACCESS_DENIED: {
    status: 403,
    message: 'User is not authorized to access this resource',
    errorType: 'AccessDeniedException',
  },
  UNAUTHORIZED: { status: 401, message: 'Unauthorized', errorType: 'UnauthorizedException' },
  // AWS_IAM methods (local/stack/sigv4.ts gives the message and error type of each refusal).
  INVALID_SIGNATURE: { status: 403, message: 'Forbidden', errorType: 'InvalidSignatureException' },
  EXPIRED_TOKEN: {
    status: 403,
    message: 'The security token included in the request is expired',
    errorType: 'ExpiredTokenException',
  },
  REQUEST_TOO_LARGE: { status: 413, message: 'Request Too Long', errorType: 'RequestTooLargeException' },
  INTEGRATION_FAILURE: { status: 502, message: 'Internal server error', errorType: 'InternalServerErrorException' },
  INTEGRATION_TIMEOUT: {
    status: 504,
    message: 'Endpoint request timed out',
    errorType: 'InternalServerErrorException',
  },
  AUTHORIZER_FAILURE: { status: 500, message: 'Internal server error', errorType: 'AuthorizerConfigurationException' },
  AUTHORIZER_CONFIGURATION_ERROR: {
    status: 500,
    message: 'Internal server error',
    errorType: 'AuthorizerConfigurationException',
  },
  DEFAULT_4XX: { status: 400, message: 'Bad Request', errorType: 'BadRequestException' },
  DEFAULT_5XX: { status: 500, message: 'Internal server error', errorType: 'InternalServerErrorException' },
};

/** Which DEFAULT_* a response type falls back to when the template has no response of its own. */
const defaultFamily = (type: string): string =>
  (RESPONSE_DEFAULTS[type]?.status ?? 500) >= 500 ? 'DEFAULT_5XX' : 'DEFAULT_4XX';

export interface ApiGatewayOptions {
  port?: number;
  stage?: string;
  region?: string;
  /** Accepted API key values (usage plan keys). */
  apiKeys: readonly string[];
  /** The template's ApiKeySourceType: `AUTHORIZER` takes the key from the authorizer's usageIdentifierKey. */
  apiKeySource?: 'HEADER' | 'AUTHORIZER';
  /** The template's methods. */
  routes: readonly Route[];
  /** The template's gateway responses, by response type. */
  gatewayResponses?: Readonly<Record<string, TemplateGatewayResponse>>;
  /**
   * AWS_IAM methods (the IAM API): the known AWS key pairs and the resource policy's
   * principals (local/stack/sigv4.ts). Required when a route is AWS_IAM.
   */
  iam?: { keyOf(accessKeyId: string): KnownAwsKey | undefined; principals: readonly string[] };
  /** Functions by key (route targets and authorizers). */
  functions: Readonly<Record<string, LocalFunction>>;
  binaryMediaTypes?: readonly string[];
  /**
   * Runs the template's S3 service integrations (the callback inbox) against the local
   * S3: the integration URI resolved to the local bucket, the PUT made with the local
   * keys (the integration's role is not evaluated: NOT_DERIVED).
   */
  s3?: { client: S3Client; resolveUri(uri: CfnValue): string };
  /** Extra non-API routes (e.g. `/__local/*`); return true when handled. */
  control?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;
  log?: (line: string) => void;
}

export interface LocalApiGateway {
  url: string;
  close(): Promise<void>;
}

/** REST payload v1 event (structurally `aws-lambda`'s APIGatewayProxyEvent). */
export interface RestProxyEvent {
  resource: string;
  path: string;
  httpMethod: string;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters: Record<string, string> | null;
  multiValueQueryStringParameters: Record<string, string[]> | null;
  pathParameters: Record<string, string> | null;
  stageVariables: null;
  requestContext: Record<string, unknown> & { requestId: string; stage: string; identity: Record<string, unknown> };
  body: string | null;
  isBase64Encoded: boolean;
}

interface ProxyResult {
  statusCode: number;
  headers?: Record<string, string | number | boolean>;
  multiValueHeaders?: Record<string, (string | number | boolean)[]>;
  body?: string;
  isBase64Encoded?: boolean;
}

/** Matches a raw (still percent-encoded) path against the routes' templates. */
export function matchRoute(
  method: string,
  rawPath: string,
  routes: readonly Route[],
): { route: Route; pathParameters: Record<string, string> } | undefined {
  const segments = splitPath(rawPath);
  // API Gateway prefers a literal path part over a {parameter} at the same level.
  const ordered = [...routes].sort((a, b) => specificity(b.resource) - specificity(a.resource));
  for (const route of ordered) {
    if (route.method !== method) continue;
    const template = splitPath(route.resource);
    if (template.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < template.length; i++) {
      const t = template[i]!;
      const s = segments[i]!;
      if (t.startsWith('{') && t.endsWith('}')) {
        // REST APIs hand path parameters to Lambda decoded, `path` itself stays encoded.
        const decoded = safeDecode(s);
        if (decoded === undefined || decoded === '') {
          ok = false;
          break;
        }
        params[t.slice(1, -1)] = decoded;
      } else if (t !== s) {
        ok = false;
        break;
      }
    }
    if (ok) return { route, pathParameters: params };
  }
  return undefined;
}

function specificity(resource: string): number {
  return splitPath(resource).reduce((n, part, i) => n + (part.startsWith('{') ? 0 : 2 ** (16 - i)), 0);
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** Query parameters as API Gateway passes them: decoded, last value wins in the single map. */
function queryOf(search: string): { single: Record<string, string> | null; multi: Record<string, string[]> | null } {
  const params = new URLSearchParams(search);
  const multi: Record<string, string[]> = {};
  const single: Record<string, string> = {};
  for (const [k, v] of params) {
    const values = multi[k] ?? [];
    values.push(v);
    multi[k] = values;
    single[k] = v; // the last value wins
  }
  if (Object.keys(multi).length === 0) return { single: null, multi: null };
  return { single, multi };
}

function isBinary(contentType: string | undefined, binaryMediaTypes: readonly string[]): boolean {
  if (binaryMediaTypes.includes('*/*')) return true;
  if (!contentType) return false;
  const mime = contentType.split(';')[0]!.trim().toLowerCase();
  return binaryMediaTypes.some((t) => {
    const pattern = t.toLowerCase();
    if (pattern === '*/*') return true;
    if (pattern.endsWith('/*')) return mime.startsWith(pattern.slice(0, -1));
    return mime === pattern;
  });
}

/** `dd/MMM/yyyy:HH:mm:ss +0000`, API Gateway's requestTime. */
function requestTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} +0000`;
}

export interface BuildEventInput {
  method: string;
  rawPath: string;
  search: string;
  rawHeaders: string[];
  body: Buffer;
  route: Route;
  pathParameters: Record<string, string>;
  stage: string;
  sourceIp: string;
  localPort: number;
  apiKey?: string;
  binaryMediaTypes: readonly string[];
  requestId: string;
}

export function buildProxyEvent(input: BuildEventInput): RestProxyEvent {
  const now = new Date();
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const add = (name: string, value: string): void => {
    headers[name] = value;
    const values = multiValueHeaders[name] ?? [];
    values.push(value);
    multiValueHeaders[name] = values;
  };
  for (let i = 0; i + 1 < input.rawHeaders.length; i += 2) add(input.rawHeaders[i]!, input.rawHeaders[i + 1]!);
  // Headers API Gateway adds in front of every integration.
  add('X-Amzn-Trace-Id', `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`);
  add('X-Forwarded-For', input.sourceIp);
  add('X-Forwarded-Port', String(input.localPort));
  add('X-Forwarded-Proto', 'http');

  const contentType = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
  const binary = isBinary(contentType, input.binaryMediaTypes);
  const query = queryOf(input.search);
  const userAgent = Object.entries(headers).find(([k]) => k.toLowerCase() === 'user-agent')?.[1] ?? null;
  const host = Object.entries(headers).find(([k]) => k.toLowerCase() === 'host')?.[1] ?? '127.0.0.1';
  return {
    resource: input.route.resource,
    path: input.rawPath,
    httpMethod: input.method,
    headers,
    multiValueHeaders,
    queryStringParameters: query.single,
    multiValueQueryStringParameters: query.multi,
    pathParameters: Object.keys(input.pathParameters).length ? input.pathParameters : null,
    stageVariables: null,
    requestContext: {
      resourceId: 'local',
      resourcePath: input.route.resource,
      httpMethod: input.method,
      extendedRequestId: randomBytes(8).toString('base64').replace(/=+$/, ''),
      requestTime: requestTime(now),
      // The path as the client sent it: the local API is served like a custom domain
      // without a base path (no stage prefix in its URL), so that is the raw path.
      path: input.rawPath,
      accountId: '000000000000',
      protocol: 'HTTP/1.1',
      stage: input.stage,
      domainPrefix: host.split(':')[0],
      requestTimeEpoch: now.getTime(),
      requestId: input.requestId,
      identity: {
        cognitoIdentityPoolId: null,
        accountId: null,
        cognitoIdentityId: null,
        caller: null,
        principalOrgId: null,
        accessKey: null,
        cognitoAuthenticationType: null,
        cognitoAuthenticationProvider: null,
        userArn: null,
        userAgent,
        user: null,
        sourceIp: input.sourceIp,
        apiKey: input.apiKey ?? null,
        apiKeyId: input.apiKey ? 'local-api-key' : null,
        clientCert: null,
      },
      domainName: host,
      deploymentId: 'local',
      apiId: 'local',
    },
    body: input.body.length === 0 ? null : binary ? input.body.toString('base64') : input.body.toString('utf8'),
    isBase64Encoded: binary && input.body.length > 0,
  };
}

interface GatewayAnswer {
  /** Status when neither the template nor the type's default should decide (a function error is 502). */
  status?: number;
  contentType?: string;
  authorizer?: Record<string, unknown>;
  message?: string;
  /** `x-amzn-ErrorType` when it is not the response type's default (SigV4 refusals). */
  errorType?: string;
}

/**
 * API Gateway's own answer of one response type, rendered from the template's gateway
 * response (or its DEFAULT_4XX / DEFAULT_5XX, or API Gateway's default when the template
 * has neither): status, headers, body template with `$context` values filled in.
 */
export function renderGatewayResponse(
  responses: Readonly<Record<string, TemplateGatewayResponse>>,
  type: string,
  requestId: string,
  answer: GatewayAnswer = {},
): { status: number; headers: Record<string, string>; body: string } {
  const family = defaultFamily(type);
  const defaults = RESPONSE_DEFAULTS[type] ?? RESPONSE_DEFAULTS[family]!;
  const own = responses[type];
  const response = own ?? responses[family];
  const status = answer.status ?? own?.statusCode ?? defaults.status;
  const message = answer.message ?? defaults.message;
  const mime = answer.contentType?.split(';')[0]?.trim().toLowerCase();
  const template = response
    ? ((mime ? response.templates[mime] : undefined) ?? response.templates['application/json'])
    : undefined;
  const body = template
    ? template
        .replace(/\$context\.requestId/g, requestId)
        .replace(/\$context\.error\.messageString/g, JSON.stringify(message))
        .replace(/\$context\.error\.message/g, message)
        .replace(/\$context\.error\.responseType/g, type)
        .replace(/\$context\.authorizer\.(\w+)/g, (_, key: string) => String(answer.authorizer?.[key] ?? ''))
    : JSON.stringify({ message });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amzn-errortype': answer.errorType ?? defaults.errorType,
  };
  for (const [k, v] of Object.entries(response?.headers ?? {})) headers[k.toLowerCase()] = v;
  return { status, headers, body };
}

function isProxyResult(value: unknown): value is ProxyResult {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.statusCode === 'number' &&
    Number.isInteger(r.statusCode) &&
    (r.body === undefined || r.body === null || typeof r.body === 'string')
  );
}

function sendProxyResult(res: ServerResponse, result: ProxyResult, requestId: string): void {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
  for (const [k, values] of Object.entries(result.multiValueHeaders ?? {}))
    headers[k.toLowerCase()] = values.map(String);
  const body = result.body
    ? result.isBase64Encoded
      ? Buffer.from(result.body, 'base64')
      : Buffer.from(result.body, 'utf8')
    : Buffer.alloc(0);
  headers['content-length'] = String(body.length);
  headers['x-amzn-requestid'] = requestId;
  headers['content-type'] ??= 'application/json';
  res.writeHead(result.statusCode, headers);
  res.end(body);
}

/** Reads the body; past `max` bytes it keeps draining but stops storing. */
function readBody(req: IncomingMessage, max: number): Promise<{ bytes: Buffer; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    });
    req.on('end', () => resolve({ bytes: size <= max ? Buffer.concat(chunks) : Buffer.alloc(0), size }));
    req.on('error', reject);
  });
}

/** Ids worth a log line from a JSON answer; never URLs (presigned ones carry signatures). */
function idsIn(body: Buffer): string {
  if (body.length === 0 || body.length > 64 * 1024) return '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return '';
  }
  const wanted = /^(SubmissionId|submissionId|ImageID|VideoID|TaskID|taskId|Status|status|Code|RequestId)$/;
  const found: string[] = [];
  const walk = (value: unknown, depth: number): void => {
    if (depth > 3 || typeof value !== 'object' || value === null || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      if (wanted.test(k) && (typeof v === 'string' || typeof v === 'number')) found.push(`${k}=${String(v)}`);
      else walk(v, depth + 1);
    }
  };
  walk(parsed, 0);
  return found.slice(0, 8).join(' ');
}

/** A mapping source's value: a method request header or path parameter, a context variable, or a 'literal'. */
function mappedValue(
  source: string,
  request: { headers: Record<string, string>; pathParameters: Record<string, string> },
  context: Record<string, string>,
): string | undefined {
  const literal = /^'(.*)'$/.exec(source);
  if (literal) return literal[1];
  if (source.startsWith('method.request.header.')) {
    const name = source.slice('method.request.header.'.length).toLowerCase();
    return Object.entries(request.headers).find(([k]) => k.toLowerCase() === name)?.[1];
  }
  if (source.startsWith('method.request.path.'))
    return request.pathParameters[source.slice('method.request.path.'.length)];
  if (source.startsWith('context.')) return context[source.slice('context.'.length)];
  throw new Error(`request parameter source ${source} is not emulated`);
}

/**
 * One S3 service integration call, as API Gateway makes it: path and headers from the
 * request parameter mappings, the body untouched (binary passthrough), then the
 * integration response whose selection pattern matches S3's status (else the default).
 */
export async function runS3Integration(
  integration: TemplateS3Integration,
  s3: NonNullable<ApiGatewayOptions['s3']>,
  input: {
    body: Buffer;
    headers: Record<string, string>;
    pathParameters: Record<string, string>;
    context: Record<string, string>;
  },
): Promise<{ status: number; headers: Record<string, string>; body: string; s3Status: number; key: string }> {
  if (integration.httpMethod !== 'PUT')
    throw new Error(`S3 integration ${integration.httpMethod}: only PUT is emulated`);
  const uri = s3.resolveUri(integration.uri);
  const at = uri.indexOf(':s3:path/');
  if (at < 0) throw new Error(`S3 integration URI ${uri} is not a path URI`);
  const pathParams: Record<string, string> = {};
  const headers: Record<string, string> = {};
  for (const [target, source] of Object.entries(integration.requestParameters)) {
    const value = mappedValue(source, input, input.context);
    if (value === undefined) continue; // an absent optional header is not sent on
    if (target.startsWith('integration.request.path.'))
      pathParams[target.slice('integration.request.path.'.length)] = value;
    else if (target.startsWith('integration.request.header.'))
      headers[target.slice('integration.request.header.'.length).toLowerCase()] = value;
    else throw new Error(`request parameter ${target} is not emulated`);
  }
  const path = uri
    .slice(at + ':s3:path/'.length)
    .replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(pathParams[name] ?? ''));
  const slash = path.indexOf('/');
  const bucket = path.slice(0, slash);
  const key = decodeURIComponent(path.slice(slash + 1));
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = value;
    else if (name !== 'content-type') throw new Error(`S3 integration header ${name} is not emulated`);
  }
  let s3Status = 200;
  try {
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: input.body,
        ...(headers['content-type'] ? { ContentType: headers['content-type'] } : {}),
        Metadata: metadata,
      }),
    );
  } catch (err) {
    s3Status = awsHttpStatus(err) ?? 500;
  }
  const chosen =
    integration.responses.find(
      (r) => r.selectionPattern !== undefined && new RegExp(`^(?:${r.selectionPattern})$`).test(String(s3Status)),
    ) ?? integration.responses.find((r) => r.selectionPattern === undefined);
  if (!chosen) throw new Error(`no integration response for S3 status ${s3Status}`);
  const template = chosen.templates['application/json'] ?? '';
  const body = template.replace(/\$context\.(\w+)/g, (_, name: string) => input.context[name] ?? '');
  const out: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(chosen.headers)) out[k.toLowerCase()] = v;
  return { status: chosen.statusCode, headers: out, body, s3Status, key };
}

export async function startApiGateway(options: ApiGatewayOptions): Promise<LocalApiGateway> {
  const stage = options.stage ?? 'prod';
  // As infra/stack.ts: every body binary, so every body reaches the functions byte for byte.
  const binaryMediaTypes = options.binaryMediaTypes ?? ['*/*'];
  const log = options.log ?? ((): void => undefined);

  const responses = options.gatewayResponses ?? {};
  const answer = (res: ServerResponse, type: string, requestId: string, extra: GatewayAnswer = {}): number => {
    const r = renderGatewayResponse(responses, type, requestId, extra);
    res.writeHead(r.status, {
      ...r.headers,
      'content-length': Buffer.byteLength(r.body),
      'x-amzn-requestid': requestId,
    });
    res.end(r.body);
    return r.status;
  };

  /** The REQUEST authorizer: undefined when it allows (with its context), else the answer given. */
  const authorize = async (
    route: Route,
    req: IncomingMessage,
    res: ServerResponse,
    event: RestProxyEvent,
  ): Promise<
    | { allowed: true; context: Record<string, unknown>; usageIdentifierKey?: string }
    | { allowed: false; status: number; why: string }
  > => {
    const authorizer = route.authorizer!;
    const contentType = event.headers['content-type'] ?? event.headers['Content-Type'];
    const missing = authorizer.identityHeaders.filter((h) => req.headers[h] === undefined || req.headers[h] === '');
    if (missing.length > 0) {
      // API Gateway answers without invoking the authorizer when an identity source is absent.
      return {
        allowed: false,
        status: answer(res, 'UNAUTHORIZED', event.requestContext.requestId, { contentType }),
        why: `no ${missing.join(', ')} for the authorizer`,
      };
    }
    const fn = options.functions[authorizer.functionKey];
    if (!fn) throw new Error(`authorizer function ${authorizer.functionKey} is not running`);
    const { body: _body, isBase64Encoded: _b64, ...rest } = event;
    const authEvent = {
      type: 'REQUEST',
      methodArn: `arn:aws:execute-api:${options.region ?? 'us-east-1'}:000000000000:local/${event.requestContext.stage}/${event.httpMethod}${route.resource}`,
      ...rest,
    };
    let result: unknown;
    try {
      result = await invoke(fn, authEvent, options.region);
    } catch (err) {
      const unauthorized = (err as Error)?.message === 'Unauthorized';
      return {
        allowed: false,
        status: answer(res, unauthorized ? 'UNAUTHORIZED' : 'AUTHORIZER_FAILURE', event.requestContext.requestId, {
          contentType,
        }),
        why: `authorizer ${unauthorized ? 'refused' : `failed: ${(err as Error)?.message}`}`,
      };
    }
    const r = (result ?? {}) as {
      principalId?: string;
      policyDocument?: { Statement?: { Effect?: string }[] };
      context?: Record<string, unknown>;
      usageIdentifierKey?: string;
    };
    const statements = r.policyDocument?.Statement ?? [];
    const allowed = statements.length > 0 && statements.every((st) => st.Effect === 'Allow');
    if (allowed)
      return {
        allowed: true,
        context: { ...(r.context ?? {}), principalId: r.principalId ?? 'client' },
        ...(typeof r.usageIdentifierKey === 'string' ? { usageIdentifierKey: r.usageIdentifierKey } : {}),
      };
    return {
      allowed: false,
      status: answer(res, 'ACCESS_DENIED', event.requestContext.requestId, {
        contentType,
        authorizer: r.context ?? {},
      }),
      why: `authorizer denied (${Object.entries(r.context ?? {})
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ')})`,
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://local.invalid');
    const rawPath = (req.url ?? '/').split('?')[0] || '/';
    const method = req.method ?? 'GET';
    if (options.control && (await options.control(req, res, url))) return;

    const requestId = randomUUID();
    const matched = matchRoute(method, rawPath, options.routes);
    const declared = Number(req.headers['content-length'] ?? NaN);
    const contentType = typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : undefined;
    const { bytes, size } = await readBody(req, API_GATEWAY_MAX_PAYLOAD_BYTES);
    // Logs name the route template, never the raw path: callback paths hold a secret.
    const label = matched ? `${method} ${matched.route.resource}` : `${method} (no route)`;
    const done = (status: number, extra = ''): void =>
      log(`api: ${label} → ${status} in ${Date.now() - started} ms${extra ? ` ${extra}` : ''}`);

    if (!matched) return done(answer(res, 'MISSING_AUTHENTICATION_TOKEN', requestId, { contentType }));
    if (size > API_GATEWAY_MAX_PAYLOAD_BYTES || declared > API_GATEWAY_MAX_PAYLOAD_BYTES)
      return done(
        answer(res, 'REQUEST_TOO_LARGE', requestId, { contentType }),
        `(body ${Math.max(size, declared || 0)} bytes over API Gateway's 10 MB)`,
      );
    let apiKey =
      options.apiKeySource === 'AUTHORIZER'
        ? undefined
        : typeof req.headers['x-api-key'] === 'string'
          ? req.headers['x-api-key']
          : undefined;
    const event = buildProxyEvent({
      method,
      rawPath,
      search: url.search,
      rawHeaders: req.rawHeaders,
      body: bytes,
      route: matched.route,
      pathParameters: matched.pathParameters,
      stage,
      sourceIp: req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1',
      localPort: req.socket.localPort ?? 0,
      apiKey: matched.route.apiKeyRequired ? apiKey : undefined,
      binaryMediaTypes,
      requestId,
    });
    // AWS_IAM: API Gateway verifies the SigV4 signature and applies the resource policy;
    // the function then finds the principal in requestContext.identity.
    if (matched.route.authorizationType === 'AWS_IAM') {
      if (!options.iam) throw new Error(`${label} is AWS_IAM but the gateway knows no AWS keys`);
      const outcome = await verifySigV4(
        { method, rawPath, search: url.search, rawHeaders: req.rawHeaders, body: bytes },
        {
          region: options.region ?? 'us-east-1',
          keyOf: options.iam.keyOf,
          principals: options.iam.principals,
          methodArn: `arn:aws:execute-api:${options.region ?? 'us-east-1'}:000000000000:local/${stage}/${method}${matched.route.resource}`,
        },
      );
      if (!outcome.ok)
        return done(
          answer(res, outcome.responseType, requestId, {
            contentType,
            message: outcome.message,
            errorType: outcome.errorType,
          }),
          `(${outcome.errorType}${outcome.accessKeyId ? ` for ${outcome.accessKeyId}` : ''})`,
        );
      Object.assign(event.requestContext.identity, {
        userArn: outcome.identity.arn,
        accountId: outcome.identity.accountId,
        accessKey: outcome.identity.accessKeyId,
        caller: outcome.identity.caller,
        user: outcome.identity.caller,
      });
    }
    // API Gateway runs the authorizer before it checks the API key.
    if (matched.route.authorizer) {
      const decision = await authorize(matched.route, req, res, event);
      if (!decision.allowed) return done(decision.status, `(${decision.why})`);
      event.requestContext.authorizer = decision.context;
      if (options.apiKeySource === 'AUTHORIZER' && matched.route.apiKeyRequired) {
        apiKey = decision.usageIdentifierKey;
        event.requestContext.identity.apiKey = apiKey ?? null;
        event.requestContext.identity.apiKeyId = apiKey ? 'local-api-key' : null;
      }
    }
    if (matched.route.apiKeyRequired && (!apiKey || !options.apiKeys.includes(apiKey)))
      return done(answer(res, 'INVALID_API_KEY', requestId, { contentType }));
    if (matched.route.s3) {
      if (!options.s3) throw new Error('the template has an S3 integration but the gateway has no S3');
      let out: Awaited<ReturnType<typeof runS3Integration>>;
      try {
        out = await runS3Integration(matched.route.s3, options.s3, {
          body: bytes,
          headers: event.headers,
          pathParameters: matched.pathParameters,
          context: { requestId, requestTimeEpoch: String(event.requestContext.requestTimeEpoch) },
        });
      } catch (err) {
        log(`api: S3 integration failed: ${(err as Error)?.message ?? String(err)}`);
        return done(answer(res, 'INTEGRATION_FAILURE', requestId, { contentType }));
      }
      res.writeHead(out.status, {
        ...out.headers,
        'content-length': Buffer.byteLength(out.body),
        'x-amzn-requestid': requestId,
      });
      res.end(out.body);
      // The key is the request id (no secret in it); the body's size, not its bytes.
      return done(out.status, `(S3 ${out.s3Status}: ${out.key}, ${bytes.length} bytes)`);
    }
    const eventBytes = Buffer.byteLength(JSON.stringify(event));
    if (eventBytes > LAMBDA_MAX_PAYLOAD_BYTES) {
      // What AWS does when the invoke payload is over 6 MB (a body without Content-Length).
      return done(
        answer(res, 'INTEGRATION_FAILURE', requestId, { contentType }),
        `(event ${eventBytes} bytes over Lambda's 6 MB)`,
      );
    }

    const target = matched.route.target;
    const fn = target ? options.functions[target] : undefined;
    if (!fn) throw new Error(`function ${target ?? '(none)'} is not running`);
    let result: unknown;
    try {
      result = await invoke(fn, event, options.region);
    } catch (err) {
      if (err instanceof LambdaTimeoutError)
        return done(answer(res, 'INTEGRATION_TIMEOUT', requestId, { contentType }), `(${fn.name} timed out)`);
      log(`api: ${fn.name} threw: ${(err as Error)?.message ?? String(err)}`);
      return done(answer(res, 'DEFAULT_5XX', requestId, { contentType, status: 502 }));
    }
    if (!isProxyResult(result)) {
      log(`api: ${fn.name} returned a malformed Lambda proxy response`);
      return done(answer(res, 'DEFAULT_5XX', requestId, { contentType, status: 502 }));
    }
    sendProxyResult(res, result, requestId);
    const body = result.body
      ? result.isBase64Encoded
        ? Buffer.from(result.body, 'base64')
        : Buffer.from(result.body)
      : Buffer.alloc(0);
    done(result.statusCode, idsIn(body));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`api: unexpected error: ${(err as Error)?.message ?? String(err)}`);
      if (!res.headersSent && !res.destroyed) answer(res, 'DEFAULT_5XX', randomUUID());
    });
  });
  // Large multipart bodies take a while on a shared machine; API Gateway itself allows 29 s.
  server.requestTimeout = 120_000;
  const address = await listen(server, options.port ?? 0);
  return { url: urlOf(address), close: () => closeServer(server) };
}
