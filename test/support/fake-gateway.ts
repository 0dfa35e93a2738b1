/**
 * A small stand-in for Volcengine's gateway, for client tests over real HTTP: verifies
 * the signature as a server would (from the received SignedHeaders, with lib/signer),
 * parses the multipart body with busboy, records every call, and can be scripted to
 * answer errors, delay, or drop the connection. Not the IVA sandbox (local/iva-sandbox).
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import { officialSignature } from '../../local/iva-sandbox/official-signature';
import { parseAuthorization, sha256Hex, type Query } from '../../lib/signer/index';

export interface Part {
  name: string;
  /** Present for file parts. */
  filename?: string;
  contentType?: string;
  data: Buffer;
}

export interface SignatureCheck {
  ok: boolean;
  reason?: string;
  accessKeyId?: string;
  signedHeaders: string[];
  xDate?: string;
  /** X-Content-Sha256 equals the SHA-256 of the bytes received. */
  bodyHashOk: boolean;
}

export interface GatewayCall {
  /** 1-based order of arrival. */
  n: number;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: Buffer;
  signature: SignatureCheck;
  /** In arrival order. */
  parts: Part[];
  multipartError?: string;
  /** The `Request` field parsed, when it is JSON. */
  request?: Record<string, unknown>;
  /** The client's port: equal across calls when a keep-alive connection was reused. */
  remotePort: number;
}

export interface Reply {
  status?: number;
  /** JSON document to answer. */
  json?: unknown;
  /** Raw text to answer instead of JSON. */
  raw?: string;
  /** Wait before answering (after reading the body). */
  delayMs?: number;
  /** Destroy the socket: before reading the body, or after reading it instead of answering. */
  drop?: 'before-body' | 'after-body';
}

export interface FakeGatewayOptions {
  /** Access key id → secret key; looked up per request so a test can rotate secrets. */
  secrets: Record<string, string> | ((accessKeyId: string) => string | undefined);
  region?: string;
  service?: string;
  /** Answer InvalidTimestamp when X-Date is further than this from the gateway's clock. */
  maxSkewMs?: number;
}

export interface FakeGateway {
  url: string;
  calls: GatewayCall[];
  /** Replies used in order for the next calls; afterwards the default behaviour answers. */
  queue(...replies: Reply[]): void;
  /** Custom answers: return undefined to fall back to the queue and the default. */
  respond: ((call: GatewayCall) => Reply | undefined) | undefined;
  /** Forgets calls, queued replies and `respond`. */
  reset(): void;
  close(): Promise<void>;
}

export function ivaError(code: string, message: string, status: number, requestId = `req-${code}`): Reply {
  return { status, json: { ResponseMetadata: { RequestId: requestId, Error: { Code: code, Message: message } } } };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function toQuery(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    out[key] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export function verifySignature(
  method: string,
  path: string,
  query: Query,
  headers: IncomingHttpHeaders,
  body: Buffer,
  lookup: (accessKeyId: string) => string | undefined,
  region: string,
  service: string,
): SignatureCheck {
  const declared = header(headers, 'x-content-sha256');
  const bodyHashOk = declared === sha256Hex(body);
  const auth = parseAuthorization(header(headers, 'authorization'));
  const xDate = header(headers, 'x-date');
  if (!auth) return { ok: false, reason: 'malformed Authorization', signedHeaders: [], xDate, bodyHashOk };
  const base = { accessKeyId: auth.accessKeyId, signedHeaders: auth.signedHeaders, xDate, bodyHashOk };
  if (!xDate || xDate.slice(0, 8) !== auth.shortDate)
    return { ok: false, reason: 'X-Date does not match the credential scope', ...base };
  if (auth.region !== region || auth.service !== service)
    return { ok: false, reason: 'wrong region or service', ...base };
  if (!auth.signedHeaders.includes('x-date') || !auth.signedHeaders.includes('host'))
    return { ok: false, reason: 'host and x-date must be signed', ...base };
  const secret = lookup(auth.accessKeyId);
  if (secret === undefined) return { ok: false, reason: 'unknown access key', ...base };
  const missing = auth.signedHeaders.find((name) => header(headers, name) === undefined);
  if (missing) return { ok: false, reason: `signed header ${missing} missing`, ...base };
  const expected = officialSignature({
    method,
    path,
    query,
    header: (name) => header(headers, name),
    signedHeaders: auth.signedHeaders,
    bodySha256: declared ?? sha256Hex(''),
    region: auth.region,
    service: auth.service,
    accessKeyId: auth.accessKeyId,
    secretAccessKey: secret,
    xDate,
  });
  return expected === auth.signature ? { ok: true, ...base } : { ok: false, reason: 'signature mismatch', ...base };
}

function parseMultipart(headers: IncomingHttpHeaders, body: Buffer): Promise<{ parts: Part[]; error?: string }> {
  return new Promise((resolve) => {
    const parts: Part[] = [];
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers, defParamCharset: 'utf8', preservePath: true });
    } catch (error) {
      resolve({ parts, error: (error as Error).message });
      return;
    }
    bb.on('file', (name, stream, info) => {
      const part: Part = { name, filename: info.filename, contentType: info.mimeType, data: Buffer.alloc(0) };
      parts.push(part);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        part.data = Buffer.concat(chunks);
      });
    });
    bb.on('field', (name, value) => parts.push({ name, data: Buffer.from(value, 'utf8') }));
    bb.on('error', (error) => resolve({ parts, error: (error as Error).message }));
    bb.on('close', () => resolve({ parts }));
    bb.end(body);
  });
}

export async function startFakeGateway(options: FakeGatewayOptions): Promise<FakeGateway> {
  const region = options.region ?? 'cn-north-1';
  const service = options.service ?? 'iva';
  const lookup =
    typeof options.secrets === 'function'
      ? options.secrets
      : (ak: string) => (options.secrets as Record<string, string>)[ak];
  const calls: GatewayCall[] = [];
  const queued: Reply[] = [];
  let count = 0;

  const gateway: FakeGateway = {
    url: '',
    calls,
    queue: (...replies) => void queued.push(...replies),
    respond: undefined,
    reset: () => {
      calls.length = 0;
      queued.length = 0;
      gateway.respond = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const n = ++count;
    const url = new URL(req.url ?? '/', 'http://gateway');
    const peek = queued[0];
    if (peek?.drop === 'before-body') {
      queued.shift();
      calls.push({
        n,
        method: req.method ?? '',
        path: url.pathname,
        query: toQuery(url.searchParams),
        headers: req.headers,
        body: Buffer.alloc(0),
        signature: { ok: false, reason: 'dropped', signedHeaders: [], bodyHashOk: false },
        parts: [],
        remotePort: req.socket.remotePort ?? 0,
      });
      req.socket.destroy();
      return;
    }
    const body = await readBody(req);
    const query = toQuery(url.searchParams);
    const signature = verifySignature(
      req.method ?? '',
      url.pathname,
      query,
      req.headers,
      body,
      lookup,
      region,
      service,
    );
    const { parts, error } = await parseMultipart(req.headers, body);
    const call: GatewayCall = {
      n,
      method: req.method ?? '',
      path: url.pathname,
      query,
      headers: req.headers,
      body,
      signature,
      parts,
      remotePort: req.socket.remotePort ?? 0,
    };
    if (error) call.multipartError = error;
    const requestField = parts.find((part) => part.name === 'Request' && part.filename === undefined);
    if (requestField) {
      try {
        call.request = JSON.parse(requestField.data.toString('utf8')) as Record<string, unknown>;
      } catch {
        // left undefined: the default answer reports it
      }
    }
    calls.push(call);

    const reply = gateway.respond?.(call) ?? queued.shift() ?? defaultReply(call);
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    if (reply.drop) {
      req.socket.destroy();
      return;
    }
    const text = reply.raw ?? JSON.stringify(reply.json ?? {});
    res.writeHead(reply.status ?? 200, { 'Content-Type': reply.raw !== undefined ? 'text/html' : 'application/json' });
    res.end(text);
  }

  function defaultReply(call: GatewayCall): Reply {
    const action = typeof call.query['Action'] === 'string' ? call.query['Action'] : '';
    if (options.maxSkewMs !== undefined && call.signature.xDate) {
      const x = call.signature.xDate;
      const sent = Date.parse(
        `${x.slice(0, 4)}-${x.slice(4, 6)}-${x.slice(6, 8)}T${x.slice(9, 11)}:${x.slice(11, 13)}:${x.slice(13, 15)}Z`,
      );
      if (!(Math.abs(sent - Date.now()) <= options.maxSkewMs))
        return ivaError('InvalidTimestamp', 'X-Date is too far from the server time', 403);
    }
    if (!call.signature.ok)
      return ivaError('SignatureDoesNotMatch', `signature check failed: ${call.signature.reason}`, 401);
    if (!call.signature.bodyHashOk)
      return ivaError('InvalidParameter', 'X-Content-Sha256 does not match the body', 400);
    if (call.multipartError || !call.request)
      return ivaError('InvalidParameter', 'Request field missing or not JSON', 400);
    const kind =
      action === 'AddAsyncTaskImageData' ? 'Image' : action === 'AddAsyncTaskVideoData' ? 'Video' : undefined;
    if (!kind) return ivaError('InvalidActionOrVersion', `unknown action ${action}`, 404);
    return {
      status: 200,
      json: {
        ResponseMetadata: {
          RequestId: `req-${call.n}`,
          Action: action,
          Version: call.query['Version'],
          Service: service,
          Region: region,
        },
        Result: { [`${kind}ID`]: `${kind.toLowerCase()}-${call.n}` },
      },
    };
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          ResponseMetadata: { RequestId: 'fake-crash', Error: { Code: 'InternalError', Message: String(error) } },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gateway.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return gateway;
}
