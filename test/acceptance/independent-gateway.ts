/**
 * An independent stand-in for Volcengine's IVA gateway, for acceptance tests only.
 *
 * Deliberately shares NO code with lib/ or local/: local/iva-sandbox verifies signatures
 * with lib/signer, so a mistake made in both would pass there. Here the signature is
 * recomputed by the vendor's own Node signer (`@volcengine/openapi/lib/base/sign.js`),
 * the body hash by node:crypto, the multipart by busboy, and the rules come straight
 * from docs/iva-api.md. It is stricter than the vendor page where the page
 * is silent (unknown Request fields, a file part with Source=url): a reviewer's own
 * gateway may be just as strict, so the product must not depend on leniency.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import busboy from 'busboy';

const require = createRequire(import.meta.url);

interface OfficialRequest {
  region: string;
  method: string;
  pathname: string;
  params: Record<string, string | string[]>;
  headers: Record<string, string>;
  body?: unknown;
}
interface OfficialSigner {
  canonicalString(): string;
  signature(
    credentials: { accessKeyId: string; secretKey: string; sessionToken?: string },
    datetime: string,
  ): { toString(): string };
}
type OfficialSignerClass = new (
  request: OfficialRequest,
  service: string,
  options?: { bodySha256?: string },
) => OfficialSigner;

/** The vendor's signer, loaded as the CommonJS module it is. */
const Signer = (require('@volcengine/openapi/lib/base/sign.js') as { default: OfficialSignerClass }).default;

export const IVA_VERSION = '2022-05-13';
export const IMAGE_MAX_BYTES = 50 * 1024 * 1024;
/** The vendor's signer refuses to sign these: a SignedHeaders list naming one cannot be verified with it. */
const OFFICIAL_UNSIGNABLE = new Set([
  'authorization',
  'content-type',
  'content-length',
  'user-agent',
  'presigned-expires',
  'expect',
]);
const MAX_SKEW_MS = 15 * 60 * 1000;

const ACTIONS = {
  AddAsyncTaskImageData: { kind: 'image', key: 'Image', part: 'ImageFile', id: 'ImageID' },
  AddAsyncTaskVideoData: { kind: 'video', key: 'Video', part: 'VideoFile', id: 'VideoID' },
} as const;
type Action = keyof typeof ACTIONS;

export interface GatewayKey {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests with this key must carry (and sign) exactly this X-Security-Token. */
  sessionToken?: string;
}

export interface GatewayOptions {
  keys: GatewayKey[];
  region?: string;
  service?: string;
  /** Where accepted submissions are reported, as `{TaskID, ImageID|VideoID, Status}`. */
  callbackUrl?: string;
  callbackDelayMs?: number;
}

export interface PartInfo {
  name: string;
  /** Present for file parts only. */
  filename?: string;
  mimeType: string;
  isFile: boolean;
}

export interface AcceptedSubmission {
  action: Action;
  kind: 'image' | 'video';
  taskId: string;
  name: string;
  source: 'url' | 'file';
  url?: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
  /** The data IVA would analyse: the file part, or what Url downloaded. */
  bytes: Buffer;
  sha256: string;
  downloadStatus?: number;
  fileName?: string;
  fileContentType?: string;
  /** Parts in wire order. */
  parts: PartInfo[];
  requestJson: string;
  accessKeyId: string;
  signedHeaders: string[];
  sessionToken?: string;
  dataId: string;
  requestId: string;
}

export interface SeenRequest {
  method: string;
  url: string;
  status: number;
  code?: string;
  injected: boolean;
}

export interface CallbackAttempt {
  url: string;
  body: Record<string, string>;
  status?: number;
  error?: string;
}

class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Header values as they came over the wire (names lower-cased; repeats joined like Node does). */
function wireHeaders(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    out.set(name, out.has(name) ? `${out.get(name)}, ${value}` : value);
  }
  return out;
}

const AUTH_RE =
  /^HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

interface MultipartResult {
  fields: Map<string, string[]>;
  files: { field: string; filename: string | undefined; mimeType: string; bytes: Buffer }[];
  parts: PartInfo[];
}

function parseMultipart(headers: IncomingMessage['headers'], body: Buffer): Promise<MultipartResult> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers, limits: { fileSize: IMAGE_MAX_BYTES * 4 } });
    } catch (error) {
      reject(new GatewayError(400, 'InvalidParameter', `body is not multipart/form-data: ${(error as Error).message}`));
      return;
    }
    const result: MultipartResult = { fields: new Map(), files: [], parts: [] };
    const pending: Promise<void>[] = [];
    bb.on('field', (name, value, info) => {
      result.parts.push({ name, mimeType: info.mimeType, isFile: false });
      result.fields.set(name, [...(result.fields.get(name) ?? []), value]);
    });
    bb.on('file', (name, stream, info) => {
      result.parts.push({
        name,
        ...(info.filename !== undefined ? { filename: info.filename } : {}),
        mimeType: info.mimeType,
        isFile: true,
      });
      const chunks: Buffer[] = [];
      pending.push(
        new Promise((done) => {
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            result.files.push({
              field: name,
              filename: info.filename,
              mimeType: info.mimeType,
              bytes: Buffer.concat(chunks),
            });
            done();
          });
        }),
      );
    });
    bb.on('error', (error) =>
      reject(new GatewayError(400, 'InvalidParameter', `malformed multipart body: ${(error as Error).message}`)),
    );
    bb.on('close', () => {
      void Promise.all(pending).then(() => resolve(result));
    });
    bb.end(body);
  });
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  !!value && typeof value === 'object' && !Array.isArray(value);

export class IndependentGateway {
  readonly submissions: AcceptedSubmission[] = [];
  readonly requests: SeenRequest[] = [];
  readonly callbacks: CallbackAttempt[] = [];
  callbackUrl: string | undefined;
  url = '';
  private readonly keys: Map<string, GatewayKey>;
  private readonly region: string;
  private readonly service: string;
  private readonly faults: { remaining: number; status: number; code: string }[] = [];
  private readonly server: Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly options: GatewayOptions) {
    this.keys = new Map(options.keys.map((k) => [k.accessKeyId, k]));
    this.region = options.region ?? 'cn-north-1';
    this.service = options.service ?? 'iva';
    this.callbackUrl = options.callbackUrl;
    this.server = createServer((req, res) => {
      const work = this.handle(req, res);
      this.inflight.add(work);
      void work.finally(() => this.inflight.delete(work));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The next `count` requests get this gateway error instead of being processed. */
  failNext(count: number, code: string, status: number): void {
    this.faults.push({ remaining: count, code, status });
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.allSettled([...this.inflight]);
  }

  private answer(
    res: ServerResponse,
    status: number,
    requestId: string,
    action: string,
    extra: { error?: { Code: string; Message: string }; result?: Record<string, string> },
  ): void {
    const doc = {
      ResponseMetadata: {
        RequestId: requestId,
        Action: action,
        Version: IVA_VERSION,
        Service: this.service,
        Region: this.region,
        ...(extra.error ? { Error: extra.error } : {}),
      },
      ...(extra.result ? { Result: extra.result } : {}),
    };
    const text = JSON.stringify(doc);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}${randomBytes(10).toString('hex').toUpperCase()}`;
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const action = url.searchParams.get('Action') ?? '';
    const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', status: 0, injected: false };
    this.requests.push(seen);
    try {
      const body = await readBody(req);
      const fault = this.faults[0];
      if (fault) {
        fault.remaining -= 1;
        if (fault.remaining <= 0) this.faults.shift();
        seen.injected = true;
        throw new GatewayError(fault.status, fault.code, `injected ${fault.code}`);
      }
      if (req.method !== 'POST') throw new GatewayError(405, 'MethodNotAllowed', `method ${req.method} is not allowed`);
      if (!(action in ACTIONS) || url.searchParams.get('Version') !== IVA_VERSION) {
        throw new GatewayError(
          404,
          'InvalidActionOrVersion',
          `unknown Action/Version ${action}/${url.searchParams.get('Version')}`,
        );
      }
      const spec = ACTIONS[action as Action];
      const auth = this.verify(req, url, body);
      const submission = await this.validate(spec, action as Action, req, body);
      const dataId = `${spec.kind === 'image' ? 'img' : 'vid'}-${randomBytes(8).toString('hex')}`;
      const accepted: AcceptedSubmission = { ...submission, ...auth, dataId, requestId };
      this.submissions.push(accepted);
      seen.status = 200;
      this.answer(res, 200, requestId, action, { result: { [spec.id]: dataId } });
      this.scheduleCallback({ TaskID: accepted.taskId, [spec.id]: dataId, Status: 'success' });
    } catch (error) {
      const e =
        error instanceof GatewayError ? error : new GatewayError(500, 'InternalError', (error as Error).message);
      seen.status = e.status;
      seen.code = e.code;
      if (!res.headersSent)
        this.answer(res, e.status, requestId, action, { error: { Code: e.code, Message: e.message } });
    }
  }

  /** Recomputes the signature with the vendor's signer over exactly the headers the client listed. */
  private verify(
    req: IncomingMessage,
    url: URL,
    body: Buffer,
  ): { accessKeyId: string; signedHeaders: string[]; sessionToken?: string } {
    const headers = wireHeaders(req);
    const authorization = headers.get('authorization');
    if (!authorization) throw new GatewayError(401, 'MissingAuthenticationToken', 'no Authorization header');
    const match = AUTH_RE.exec(authorization.trim());
    if (!match)
      throw new GatewayError(
        400,
        'InvalidAuthorization',
        'Authorization is not "HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"',
      );
    const [, accessKeyId, shortDate, region, service, signedList, signature] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const key = this.keys.get(accessKeyId);
    if (!key) throw new GatewayError(401, 'InvalidAccessKey', 'unknown access key id');
    if (region !== this.region || service !== this.service)
      throw new GatewayError(
        400,
        'InvalidCredential',
        `credential scope ${region}/${service} is not ${this.region}/${this.service}`,
      );

    const xDate = headers.get('x-date');
    if (!xDate || !/^\d{8}T\d{6}Z$/.test(xDate))
      throw new GatewayError(400, 'MissingRequestInfo', 'X-Date missing or not YYYYMMDDTHHMMSSZ');
    const when = Date.parse(
      `${xDate.slice(0, 4)}-${xDate.slice(4, 6)}-${xDate.slice(6, 8)}T${xDate.slice(9, 11)}:${xDate.slice(11, 13)}:${xDate.slice(13, 15)}Z`,
    );
    if (!Number.isFinite(when) || Math.abs(Date.now() - when) > MAX_SKEW_MS)
      throw new GatewayError(400, 'InvalidTimestamp', 'X-Date too far from the gateway clock');
    if (shortDate !== xDate.slice(0, 8))
      throw new GatewayError(401, 'SignatureDoesNotMatch', 'credential date differs from X-Date');

    const contentSha = headers.get('x-content-sha256');
    if (!contentSha || contentSha !== sha256(body))
      throw new GatewayError(401, 'SignatureDoesNotMatch', 'X-Content-Sha256 is not the SHA-256 of the body received');

    const signedHeaders = signedList.split(';');
    for (const required of ['host', 'x-date', 'x-content-sha256']) {
      if (!signedHeaders.includes(required))
        throw new GatewayError(401, 'SignatureDoesNotMatch', `${required} is not signed`);
    }
    const token = headers.get('x-security-token');
    if (key.sessionToken !== undefined || token !== undefined) {
      if (token === undefined)
        throw new GatewayError(401, 'MissingAuthenticationToken', 'this key needs X-Security-Token');
      if (token !== key.sessionToken)
        throw new GatewayError(401, 'InvalidSecretToken', 'X-Security-Token does not belong to this key');
      if (!signedHeaders.includes('x-security-token'))
        throw new GatewayError(401, 'SignatureDoesNotMatch', 'x-security-token is not signed');
    }
    const signedValues: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = headers.get(name);
      if (value === undefined)
        throw new GatewayError(401, 'SignatureDoesNotMatch', `signed header ${name} was not sent`);
      if (OFFICIAL_UNSIGNABLE.has(name))
        throw new GatewayError(
          401,
          'SignatureDoesNotMatch',
          `signed header ${name} cannot be verified with the official Node signer`,
        );
      // The vendor's signer reads the body hash from exactly `X-Content-Sha256` (case-sensitive
      // key); every other header it lower-cases itself.
      signedValues[name === 'x-content-sha256' ? 'X-Content-Sha256' : name] = value;
    }
    const params: Record<string, string | string[]> = {};
    for (const name of new Set(url.searchParams.keys())) {
      const values = url.searchParams.getAll(name);
      params[name] = values.length === 1 ? values[0]! : values;
    }
    const signer = new Signer(
      { region, method: req.method ?? 'POST', pathname: url.pathname, params, headers: signedValues },
      service,
      { bodySha256: contentSha },
    );
    const expected = signer
      .signature({ accessKeyId, secretKey: key.secretAccessKey, ...(token ? { sessionToken: token } : {}) }, xDate)
      .toString();
    if (expected !== signature)
      throw new GatewayError(
        401,
        'SignatureDoesNotMatch',
        'the request signature we calculated does not match the signature you provided',
      );
    return { accessKeyId, signedHeaders, ...(token ? { sessionToken: token } : {}) };
  }

  private async validate(
    spec: (typeof ACTIONS)[Action],
    action: Action,
    req: IncomingMessage,
    body: Buffer,
  ): Promise<Omit<AcceptedSubmission, 'accessKeyId' | 'signedHeaders' | 'sessionToken' | 'dataId' | 'requestId'>> {
    const bad = (message: string): GatewayError => new GatewayError(400, 'InvalidParameter', message);
    if (!/^multipart\/form-data\s*;/i.test(req.headers['content-type'] ?? ''))
      throw bad(`Content-Type must be multipart/form-data, got ${req.headers['content-type']}`);
    const form = await parseMultipart(req.headers, body);
    const requestFields = form.fields.get('Request') ?? [];
    if (form.files.some((f) => f.field === 'Request')) throw bad('Request must be a text field, not a file part');
    if (requestFields.length !== 1)
      throw new GatewayError(400, 'MissingParameter', `expected one Request field, got ${requestFields.length}`);
    const unknownFields = [...form.fields.keys()].filter((k) => k !== 'Request');
    if (unknownFields.length) throw bad(`unexpected fields: ${unknownFields.join(', ')}`);
    const requestJson = requestFields[0]!;
    let doc: unknown;
    try {
      doc = JSON.parse(requestJson);
    } catch {
      throw bad('Request is not valid JSON');
    }
    if (!isObject(doc)) throw bad('Request is not a JSON object');
    const extra = Object.keys(doc).filter((k) => !['TaskID', spec.key, 'AlgoParamConf'].includes(k));
    if (extra.length) throw bad(`unexpected Request keys: ${extra.join(', ')}`);
    if (typeof doc.TaskID !== 'string' || doc.TaskID === '')
      throw new GatewayError(400, 'MissingParameter', 'TaskID is required');
    const media = doc[spec.key];
    if (!isObject(media)) throw new GatewayError(400, 'MissingParameter', `${spec.key} is required`);
    const extraMedia = Object.keys(media).filter((k) => !['Name', 'Source', 'Url', 'Desc'].includes(k));
    if (extraMedia.length) throw bad(`unexpected ${spec.key} keys: ${extraMedia.join(', ')}`);
    if (typeof media.Name !== 'string' || media.Name === '')
      throw new GatewayError(400, 'MissingParameter', `${spec.key}.Name is required`);
    if (media.Desc !== undefined && typeof media.Desc !== 'string') throw bad('Desc must be a string');
    if (doc.AlgoParamConf !== undefined && !isObject(doc.AlgoParamConf)) throw bad('AlgoParamConf must be an object');

    const common = {
      action,
      kind: spec.kind,
      taskId: doc.TaskID,
      name: media.Name,
      ...(media.Desc !== undefined ? { desc: media.Desc as string } : {}),
      ...(doc.AlgoParamConf !== undefined ? { algoParamConf: doc.AlgoParamConf as Record<string, unknown> } : {}),
      parts: form.parts,
      requestJson,
    };
    if (media.Source === 'url') {
      if (form.files.length) throw bad('Source is url: no file part expected');
      if (typeof media.Url !== 'string' || !/^https?:\/\//.test(media.Url))
        throw new GatewayError(400, 'MissingParameter', 'Url (http or https) is required when Source is url');
      let response: Response;
      try {
        response = await fetch(media.Url, { signal: AbortSignal.timeout(10_000) });
      } catch (error) {
        throw bad(`Url could not be fetched: ${(error as Error).message}`);
      }
      const bytes = Buffer.from(await response.arrayBuffer());
      if (!response.ok) throw bad(`Url answered HTTP ${response.status}`);
      return {
        ...common,
        source: 'url',
        url: media.Url,
        bytes,
        sha256: sha256(bytes),
        downloadStatus: response.status,
      };
    }
    if (media.Source === 'file') {
      if (media.Url !== undefined) throw bad('Source is file: Url not expected');
      const wrong = form.files.filter((f) => f.field !== spec.part);
      if (wrong.length)
        throw bad(`unexpected file part ${wrong.map((f) => f.field).join(', ')}; expected ${spec.part}`);
      if (form.files.length !== 1)
        throw new GatewayError(400, 'MissingParameter', `expected one ${spec.part} part, got ${form.files.length}`);
      const file = form.files[0]!;
      if (spec.kind === 'image' && file.bytes.length > IMAGE_MAX_BYTES) throw bad('image over 50 MB');
      return {
        ...common,
        source: 'file',
        bytes: file.bytes,
        sha256: sha256(file.bytes),
        ...(file.filename !== undefined ? { fileName: file.filename } : {}),
        fileContentType: file.mimeType,
      };
    }
    throw bad(`Source must be "url" or "file", got ${JSON.stringify(media.Source)}`);
  }

  private scheduleCallback(body: Record<string, string>): void {
    const target = this.callbackUrl;
    if (!target) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.postCallback(target, body, 3);
    }, this.options.callbackDelayMs ?? 20);
    this.timers.add(timer);
  }

  private async postCallback(target: string, body: Record<string, string>, triesLeft: number): Promise<void> {
    const attempt: CallbackAttempt = { url: target, body };
    this.callbacks.push(attempt);
    try {
      const res = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      attempt.status = res.status;
      await res.arrayBuffer();
      if (res.ok || triesLeft <= 1) return;
    } catch (error) {
      attempt.error = (error as Error).message;
      if (triesLeft <= 1) return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.postCallback(target, body, triesLeft - 1);
    }, 200);
    this.timers.add(timer);
  }
}

export async function startIndependentGateway(options: GatewayOptions): Promise<IndependentGateway> {
  return new IndependentGateway(options).listen();
}
