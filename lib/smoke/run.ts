/**
 * `npm run smoke`: drives a running iva-bridge (a deployed stack, or `npm start`) from
 * outside, through every path, and reports each behaviour the code relies on as one
 * table row: what is expected, what was observed. Only the discovery of the target
 * differs between a deployed stack (lib/smoke/aws.ts) and the local one (lib/smoke/local.ts).
 *
 * It submits small random files: run it against a stack in sandbox mode or the local
 * stack, where IVA is the sandbox (against the real IVA they are billed and refused).
 */
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DEFAULTS } from '../config';
import { INCOMING_PREFIX } from '../storage/prefixes';
import { type ClientCredentials, signingFetch } from '../client/signing';

export interface ResultEvent {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
}

/** Result events seen since the capture started. */
export interface EventCapture {
  events(): Promise<ResultEvent[]>;
  stop(): Promise<void>;
}

export interface SmokeTarget {
  /** `local` or `aws:<stack name>`: printed above the table. */
  name: string;
  /**
   * Which IVA the target calls: `sandbox` (npm start, or a `-c ivaMode=sandbox` stack) accepts
   * the run's random files and calls back; `vendor` (Volcengine) refuses and bills them.
   */
  ivaMode: 'sandbox' | 'vendor';
  /** The sandbox's URL when the stack reports it (IvaSandboxUrl output). */
  ivaEndpoint?: string;
  /** Base URL of the API, without a trailing slash (stage included). */
  apiUrl: string;
  apiKey: string;
  /** A client access key the run signs with (the API authenticates every request by its signature). */
  credentials: ClientCredentials;
  /** Undoes what the target set up for the run (a temporary client key). */
  close?(): Promise<void>;
  /** The callback URL registered with IVA (holds the secret: never printed). */
  callbackUrl: string;
  bucket: string;
  s3: S3Client;
  /** Starts capturing iva-bridge result events (EventBridge). */
  captureEvents(): Promise<EventCapture>;
}

export interface SmokeRow {
  behaviour: string;
  expected: string;
  observed: string;
  ok: boolean;
}

export interface SmokeOptions {
  /** How long to wait for asynchronous outcomes (S3 event → IVA → callback → event). */
  waitMs?: number;
  /** The direct body limit of the target (DIRECT_MAX_BYTES). */
  directMaxBytes?: number;
  log?: (line: string) => void;
}

interface Answer {
  status: number;
  code?: string;
  message?: string;
  json?: Record<string, unknown>;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    const error = (json.ResponseMetadata as { Error?: { Code?: string; Message?: string } } | undefined)?.Error;
    return { status: res.status, json, ...(error?.Code ? { code: error.Code, message: error.Message } : {}) };
  } catch {
    return { status: res.status, message: text.slice(0, 120) };
  }
}

const show = (a: Answer): string => `${a.status}${a.code ? ` ${a.code}` : a.message ? ` "${a.message}"` : ''}`;

/** A multipart body of exactly `size` bytes (IVA's format: a Request field and an ImageFile part). */
export async function multipartOfSize(
  size: number,
  taskId: string,
): Promise<{ body: Uint8Array; contentType: string }> {
  const encode = async (fileBytes: number) => {
    const form = new FormData();
    form.append('Request', JSON.stringify({ TaskID: taskId, Image: { Name: 'smoke.jpg', Source: 'file' } }));
    form.append('ImageFile', new Blob([new Uint8Array(randomBytes(fileBytes))], { type: 'image/jpeg' }), 'smoke.jpg');
    const res = new Response(form);
    return { body: new Uint8Array(await res.arrayBuffer()), contentType: res.headers.get('content-type') ?? '' };
  };
  // The boundary has a fixed length, so the framing around the file is constant.
  const framing = (await encode(0)).body.length;
  const out = await encode(Math.max(0, size - framing));
  if (out.body.length !== size) throw new Error(`multipart body is ${out.body.length} bytes, wanted ${size}`);
  return out;
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function runSmoke(target: SmokeTarget, options: SmokeOptions = {}): Promise<SmokeRow[]> {
  const waitMs = options.waitMs ?? 120_000;
  const limit = options.directMaxBytes ?? DEFAULTS.directMaxBytes;
  const log = options.log ?? (() => undefined);
  const rows: SmokeRow[] = [];
  const row = (behaviour: string, expected: string, observed: string, ok: boolean) => {
    rows.push({ behaviour, expected, observed, ok });
    log(`${ok ? 'ok  ' : 'FAIL'} ${behaviour}: ${observed}`);
  };
  const run = `smoke-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  /** Signed with the run's key; `key` null sends it unsigned (with only the API key), `wrong` signs with a wrong secret. */
  type Signing = 'signed' | 'wrong' | null;
  const api = (path: string, init: RequestInit = {}, key: Signing = 'signed') =>
    key === null
      ? fetch(`${target.apiUrl}${path}`, {
          ...init,
          headers: { 'x-api-key': target.apiKey, ...(init.headers as Record<string, string>) },
        })
      : signingFetch(
          key === 'wrong' ? { ...target.credentials, secretAccessKey: 'not-the-secret' } : target.credentials,
        )(`${target.apiUrl}${path}`, init);
  const post = async (path: string, size: number, taskId: string, key: Signing = 'signed') => {
    const form = await multipartOfSize(size, taskId);
    return answer(
      await api(path, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } }, key),
    );
  };
  const submission = async (id: string) => {
    const a = await answer(await api(`/v1/submissions/${encodeURIComponent(id)}`));
    return a.status === 200 ? (a.json as { Status?: string; SubmissionId?: string }) : undefined;
  };
  const settled = (id: string) =>
    until(async () => {
      const s = await submission(id);
      return s?.Status === 'completed' || s?.Status === 'failed' ? s.Status : undefined;
    }, waitMs);

  const capture = await target.captureEvents();
  try {
    // ------------------------------------------------------------ direct submission
    const task = `${run}-direct`;
    const direct = await post('/v1/images', 64 * 1024, task);
    const directId = (direct.json?.Result as { SubmissionId?: string } | undefined)?.SubmissionId;
    row(
      'Direct multipart submission (64 KB) reaches IVA',
      '200 with ImageID and SubmissionId',
      show(direct) + (directId ? ' with SubmissionId' : ''),
      direct.status === 200 && directId !== undefined,
    );
    const directStatus = directId ? await submission(directId) : undefined;
    row(
      'GET /v1/submissions/{id} (status route)',
      '200, Status submitted or completed',
      directStatus ? `200, ${directStatus.Status}` : 'not found',
      directStatus?.Status === 'submitted' || directStatus?.Status === 'completed',
    );
    const listing = await answer(await api(`/v1/tasks/${encodeURIComponent(task)}/submissions`));
    const items = (listing.json?.Items as unknown[] | undefined)?.length ?? 0;
    row(
      'GET /v1/tasks/{TaskID}/submissions (task listing)',
      '200 listing the submission',
      `${listing.status}, ${items} item(s)`,
      listing.status === 200 && items === 1,
    );

    // ------------------------------------------------------------ callbacks and events
    const directEnd = directId ? await settled(directId) : undefined;
    row(
      'IVA callback → result stored → submission completed',
      'completed (sandbox)',
      directEnd ?? `not settled within ${waitMs / 1000} s`,
      directEnd === 'completed',
    );
    const event = directId
      ? await until(
          async () => (await capture.events()).find((e) => e.detail.submissionId === directId),
          Math.min(waitMs, 30_000),
        )
      : undefined;
    row(
      'Result announced on EventBridge (source iva-bridge)',
      'one "IVA Result Stored" event for the submission',
      event ? `${event.detailType}, status ${String(event.detail.status)}` : 'none seen',
      event?.detailType === 'IVA Result Stored',
    );

    // ------------------------------------------------------------ sizes around the limits
    const atLimit = await post('/v1/images', limit, `${run}-limit`);
    row(
      `Body of exactly DIRECT_MAX_BYTES (${limit} B)`,
      '200 (fits: its base64 event stays under Lambda 6 MB)',
      show(atLimit),
      atLimit.status === 200,
    );
    const over = await post('/v1/images', limit + 1, `${run}-over`);
    // The authorizer's size guard answers 403 PayloadTooLarge; direct-submit's own 413 quotes the measured size.
    const byGuard = over.status === 403;
    row(
      `Body of DIRECT_MAX_BYTES + 1 B`,
      'PayloadTooLarge naming POST /v1/uploads (403 from the authorizer, or 413 from direct-submit)',
      show(over),
      (over.status === 403 || over.status === 413) &&
        over.code === 'PayloadTooLarge' &&
        over.message?.includes('/v1/uploads') === true,
    );
    row(
      'Content-Length reaches the client-auth authorizer (binary media type)',
      'either: yes = 403 before any function, no = direct-submit answers 413',
      byGuard ? 'yes (the authorizer answered)' : 'no (direct-submit measured the body)',
      over.status === 403 || over.status === 413,
    );
    for (const size of [6_000_000, 11_000_000]) {
      const big = await post('/v1/images', size, `${run}-big`);
      row(
        `Body of ${size / 1_000_000} MB`,
        size > 10 * 1024 * 1024
          ? "413 (API Gateway's own, above its 10 MB)"
          : '403/413 PayloadTooLarge: use POST /v1/uploads',
        show(big),
        big.status === 413 ||
          (size <= 10 * 1024 * 1024 &&
            ((big.status === 403 && big.code === 'PayloadTooLarge') ||
              (big.status === 502 && big.code === 'IntegrationFailure'))),
      );
    }

    // ------------------------------------------------------------ large file: /v1/uploads
    const size = 6_000_000;
    const ticket = await answer(
      await api('/v1/uploads', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          TaskID: `${run}-upload`,
          Kind: 'image',
          Name: 'big.jpg',
          ContentType: 'image/jpeg',
          Size: size,
        }),
      }),
    );
    const t = ticket.json as {
      Url?: string;
      Headers?: Record<string, string>;
      ExpiresAt?: string;
      SubmissionId?: string;
    };
    const expiresIn = t.ExpiresAt ? Math.round((Date.parse(t.ExpiresAt) - Date.now()) / 1000) : Number.NaN;
    row(
      'POST /v1/uploads: presigned PUT and its real end (ExpiresAt)',
      '200, ExpiresAt in the future and at most 1 h away',
      `${show(ticket)}, ExpiresAt in ${Number.isFinite(expiresIn) ? `${expiresIn} s` : '?'}`,
      ticket.status === 200 && expiresIn > 0 && expiresIn <= 3600 + 5,
    );
    let uploadEnd: string | undefined;
    if (t.Url && t.Headers && t.SubmissionId) {
      const put = await fetch(t.Url, { method: 'PUT', headers: t.Headers, body: new Uint8Array(randomBytes(size)) });
      uploadEnd = put.status === 200 ? await settled(t.SubmissionId) : `PUT answered ${put.status}`;
    }
    row(
      'A 6 MB file through /v1/uploads → S3 event → IVA (presigned GET) → callback',
      'completed, same SubmissionId',
      uploadEnd ?? 'no ticket',
      uploadEnd === 'completed',
    );

    // ------------------------------------------------------------ S3 upload
    const key = `${INCOMING_PREFIX}${run}-s3/cat.jpg`;
    await target.s3.send(
      new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: randomBytes(2048), ContentType: 'image/jpeg' }),
    );
    const fromS3 = await until(async () => {
      const l = await answer(await api(`/v1/tasks/${encodeURIComponent(`${run}-s3`)}/submissions`));
      const first = (l.json?.Items as Array<{ Status?: string }> | undefined)?.[0];
      return first?.Status === 'completed' || first?.Status === 'failed' ? first.Status : undefined;
    }, waitMs);
    row(
      'S3 upload under incoming/<TaskID>/ → SQS → object-created → IVA → callback',
      'completed',
      fromS3 ?? `not settled within ${waitMs / 1000} s`,
      fromS3 === 'completed',
    );

    // ------------------------------------------------------------ edges
    const wrongKey = await post('/v1/images', 1024, `${run}-key`, 'wrong');
    row(
      'Wrong secret on a multipart route',
      '403 SignatureDoesNotMatch, before any function',
      show(wrongKey),
      wrongKey.status === 403 && wrongKey.code === 'SignatureDoesNotMatch',
    );
    const noKey = await answer(await api(`/v1/tasks/${run}/submissions`, {}, null));
    row(
      'Unsigned request, API key only',
      '403 MissingSignature',
      show(noKey),
      noKey.status === 403 && noKey.code === 'MissingSignature',
    );
    const noKeyMultipart = await post('/v1/images', 1024, `${run}-nokey`, null);
    row(
      'Unsigned multipart request (client-auth denies it before any key or size check)',
      '403 MissingSignature',
      show(noKeyMultipart),
      noKeyMultipart.status === 403 && noKeyMultipart.code === 'MissingSignature',
    );
    const badSecret = `${target.callbackUrl.slice(0, target.callbackUrl.lastIndexOf('/') + 1)}${'0'.repeat(64)}`;
    const wrongSecret = await answer(
      await fetch(badSecret, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
    );
    row('Callback with a wrong secret', '404, nothing stored', show(wrongSecret), wrongSecret.status === 404);
    const unknown = await answer(await api('/v1/nothing-here'));
    row(
      'Unknown route',
      '404 RouteNotFound',
      show(unknown),
      unknown.status === 404 && unknown.code === 'RouteNotFound',
    );
    const method = await answer(await api('/v1/images', { method: 'DELETE' }));
    row(
      'Undefined method on a route (no 405 reaches clients)',
      '404 RouteNotFound',
      show(method),
      method.status === 404 && method.code === 'RouteNotFound',
    );
  } finally {
    await capture.stop();
    await target.close?.();
  }
  return rows;
}

/** The table `npm run smoke` prints (Markdown, so it can go into the README as is). */
export function formatTable(rows: readonly SmokeRow[]): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  return [
    '| behaviour the code relies on | expected | observed | |',
    '|---|---|---|---|',
    ...rows.map(
      (r) => `| ${esc(r.behaviour)} | ${esc(r.expected)} | ${esc(r.observed)} | ${r.ok ? 'ok' : '**FAIL**'} |`,
    ),
  ].join('\n');
}
