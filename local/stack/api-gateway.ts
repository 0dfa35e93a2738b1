/**
 * The HTTP front of the local stack: an API Gateway REST API emulation with the routes,
 * API-key rule, binary media types, payload limits and gateway responses of the
 * deployed stack (infra/stack.ts createApi / addIvaGatewayResponses). Each request
 * becomes a Lambda proxy event (REST payload v1) exactly as API Gateway builds it, and
 * the proxy result is mapped back to HTTP.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { checkDirectBodySize, directMaxBytesFromEnv } from '../../lib/api/size-guard';
import {
  gatewayErrorBody,
  gatewayErrorHeaders,
  ROUTE_NOT_FOUND_CODE,
  ROUTE_NOT_FOUND_MESSAGE,
  ROUTE_NOT_FOUND_STATUS,
} from '../../lib/http/route-not-found';
import { closeServer, listen, urlOf } from '../servers/http-close';
import { invoke, LambdaTimeoutError, type LocalFunction } from './lambda';

/** API Gateway's own limit on a request payload. */
export const API_GATEWAY_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;
/** Lambda's limit on a synchronous invocation payload (the whole event JSON). */
export const LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

export type RouteTarget = 'directSubmit' | 'resultCallback';

export interface Route {
  method: string;
  /** API Gateway resource template, e.g. `/v1/submissions/{id}`. */
  resource: string;
  target: RouteTarget;
  apiKeyRequired: boolean;
  /** Behind the Content-Length size guard (infra/stack.ts SizeGuard authorizer). */
  sizeGuarded?: boolean;
}

/** Same resources and methods as infra/stack.ts. */
export const ROUTES: readonly Route[] = [
  { method: 'POST', resource: '/v1/images', target: 'directSubmit', apiKeyRequired: true, sizeGuarded: true },
  { method: 'POST', resource: '/v1/videos', target: 'directSubmit', apiKeyRequired: true, sizeGuarded: true },
  { method: 'POST', resource: '/v1/uploads', target: 'directSubmit', apiKeyRequired: true },
  { method: 'GET', resource: '/v1/submissions', target: 'directSubmit', apiKeyRequired: true },
  { method: 'GET', resource: '/v1/submissions/{id}', target: 'directSubmit', apiKeyRequired: true },
  { method: 'GET', resource: '/v1/submissions/{id}/result', target: 'directSubmit', apiKeyRequired: true },
  { method: 'GET', resource: '/v1/submissions/{id}/results', target: 'directSubmit', apiKeyRequired: true },
  { method: 'GET', resource: '/v1/submissions/{id}/results/{resultId}', target: 'directSubmit', apiKeyRequired: true },
  { method: 'POST', resource: '/v1/submissions/{id}/resolve', target: 'directSubmit', apiKeyRequired: true },
  { method: 'GET', resource: '/v1/tasks/{taskId}/submissions', target: 'directSubmit', apiKeyRequired: true },
  { method: 'POST', resource: '/', target: 'directSubmit', apiKeyRequired: true, sizeGuarded: true },
  { method: 'POST', resource: '/callbacks/{secret}', target: 'resultCallback', apiKeyRequired: false },
];

/** The deployed gateway responses' messages (infra/stack.ts ACCESS_DENIED, INTEGRATION_FAILURE). */
export const REQUEST_TOO_LARGE_MESSAGE =
  'Request body too large for direct submission (files over about 4.5 MB). Call POST /v1/uploads to get a presigned upload URL instead.';
export const INTEGRATION_FAILURE_MESSAGE =
  'The request could not be handed to the function. The usual cause is a body over 4.5 MB, too large for a direct submission: send large files with POST /v1/uploads (presigned upload URL). If the body was small, retry later.';

export interface ApiGatewayOptions {
  port?: number;
  stage?: string;
  region?: string;
  /** Accepted `x-api-key` values. */
  apiKeys: readonly string[];
  functions: Record<RouteTarget, LocalFunction>;
  binaryMediaTypes?: readonly string[];
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
  routes: readonly Route[] = ROUTES,
): { route: Route; pathParameters: Record<string, string> } | undefined {
  const segments = splitPath(rawPath);
  for (const route of routes) {
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
      path: `/${input.stage}${input.rawPath}`,
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

/** The deployed stack's gateway responses put API Gateway's own errors in IVA's error shape. */
function gatewayError(res: ServerResponse, status: number, requestId: string, code: string, message: string): void {
  const text = gatewayErrorBody(requestId, code, message);
  res.writeHead(status, {
    ...gatewayErrorHeaders(code),
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId,
  });
  res.end(text);
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

export async function startApiGateway(options: ApiGatewayOptions): Promise<LocalApiGateway> {
  const stage = options.stage ?? 'prod';
  // As infra/stack.ts: every body binary, so every body reaches the functions byte for byte.
  const binaryMediaTypes = options.binaryMediaTypes ?? ['*/*'];
  const log = options.log ?? ((): void => undefined);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://local.invalid');
    const rawPath = (req.url ?? '/').split('?')[0] || '/';
    const method = req.method ?? 'GET';
    if (options.control && (await options.control(req, res, url))) return;

    const requestId = randomUUID();
    const matched = matchRoute(method, rawPath);
    const declared = Number(req.headers['content-length'] ?? NaN);
    const { bytes, size } = await readBody(req, API_GATEWAY_MAX_PAYLOAD_BYTES);
    // Logs name the route template, never the raw path: callback paths hold a secret.
    const label = matched ? `${method} ${matched.route.resource}` : `${method} (no route)`;
    const done = (status: number, extra = ''): void =>
      log(`api: ${label} → ${status} in ${Date.now() - started} ms${extra ? ` ${extra}` : ''}`);

    if (!matched) {
      gatewayError(res, ROUTE_NOT_FOUND_STATUS, requestId, ROUTE_NOT_FOUND_CODE, ROUTE_NOT_FOUND_MESSAGE);
      return done(404);
    }
    const apiKey = typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined;
    if (matched.route.apiKeyRequired && (!apiKey || !options.apiKeys.includes(apiKey))) {
      gatewayError(res, 403, requestId, 'InvalidApiKey', 'Missing or invalid x-api-key header.');
      return done(403);
    }
    if (size > API_GATEWAY_MAX_PAYLOAD_BYTES || declared > API_GATEWAY_MAX_PAYLOAD_BYTES) {
      gatewayError(res, 413, requestId, 'PayloadTooLarge', REQUEST_TOO_LARGE_MESSAGE);
      return done(413, `(body ${size} bytes over API Gateway's 10 MB)`);
    }
    if (matched.route.sizeGuarded) {
      // The deployed size-guard authorizer: the same decision on the same header.
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]),
      );
      const decision = checkDirectBodySize(headers, directMaxBytesFromEnv());
      if (decision.kind === 'deny-too-large') {
        gatewayError(res, 413, requestId, 'PayloadTooLarge', REQUEST_TOO_LARGE_MESSAGE);
        return done(413, `(Content-Length ${decision.contentLength} over the direct limit ${decision.maxBytes})`);
      }
    }
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
    const eventBytes = Buffer.byteLength(JSON.stringify(event));
    if (eventBytes > LAMBDA_MAX_PAYLOAD_BYTES) {
      // What AWS does when the invoke payload is over 6 MB (a body without Content-Length).
      gatewayError(res, 502, requestId, 'IntegrationFailure', INTEGRATION_FAILURE_MESSAGE);
      return done(502, `(event ${eventBytes} bytes over Lambda's 6 MB)`);
    }

    const fn = options.functions[matched.route.target];
    let result: unknown;
    try {
      result = await invoke(fn, event, options.region);
    } catch (err) {
      if (err instanceof LambdaTimeoutError) {
        gatewayError(res, 504, requestId, 'InternalServiceTimeout', 'Endpoint request timed out');
        return done(504, `(${fn.name} timed out)`);
      }
      log(`api: ${fn.name} threw: ${(err as Error)?.message ?? String(err)}`);
      gatewayError(res, 502, requestId, 'InternalError', 'Internal server error');
      return done(502);
    }
    if (!isProxyResult(result)) {
      log(`api: ${fn.name} returned a malformed Lambda proxy response`);
      gatewayError(res, 502, requestId, 'InternalError', 'Internal server error');
      return done(502);
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
      if (!res.headersSent && !res.destroyed)
        gatewayError(res, 500, randomUUID(), 'InternalError', 'Internal server error');
    });
  });
  // Large multipart bodies take a while on a shared machine; API Gateway itself allows 29 s.
  server.requestTimeout = 120_000;
  const address = await listen(server, options.port ?? 0);
  return { url: urlOf(address), close: () => closeServer(server) };
}
