/** Builds and signs IVA requests by hand (lib/signer), so the sandbox is tested without the IVA client. */
import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sign, type VolcCredentials } from '../../lib/signer/index';

export interface FormPart {
  name: string;
  value: string | Buffer;
  filename?: string;
  contentType?: string;
}

export function multipart(
  parts: FormPart[],
  boundary = `----sandboxtest${Date.now().toString(16)}`,
): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.contentType) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(
      Buffer.from(`${head}\r\n`),
      Buffer.isBuffer(part.value) ? part.value : Buffer.from(part.value),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface RawResponse {
  status: number;
  json: IvaResponse;
  ms: number;
}

export interface IvaResponse {
  ResponseMetadata: {
    RequestId: string;
    Action: string;
    Version: string;
    Service: string;
    Region: string;
    Error?: { Code: string; Message: string };
  };
  Result?: { ImageID?: string; VideoID?: string };
}

/** Sends exactly the given bytes and headers over node:http (fetch would not let a test set Host). */
export function send(
  baseUrl: string,
  method: string,
  pathAndQuery: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<RawResponse> {
  const url = new URL(pathAndQuery, baseUrl);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as IvaResponse, ms: Date.now() - started });
        } catch {
          reject(new Error(`non-JSON answer ${res.statusCode}: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface SubmitOptions {
  action?: string;
  version?: string;
  method?: string;
  credentials: VolcCredentials;
  region?: string;
  service?: string;
  date?: Date;
  /** Changes the request after signing, to prove the server notices. */
  tamper?: (r: { headers: Record<string, string>; body: Buffer; query: string }) => void;
}

export function signedSubmit(baseUrl: string, parts: FormPart[], options: SubmitOptions): Promise<RawResponse> {
  const { body, contentType } = multipart(parts);
  const query = { Action: options.action ?? 'AddAsyncTaskImageData', Version: options.version ?? '2022-05-13' };
  const method = options.method ?? 'POST';
  const signed = sign({
    method,
    host: new URL(baseUrl).host,
    query,
    headers: { 'Content-Type': contentType },
    body,
    credentials: options.credentials,
    region: options.region ?? 'cn-north-1',
    service: options.service ?? 'iva',
    date: options.date,
  });
  const sent = { headers: { ...signed.headers }, body, query: signed.queryString };
  options.tamper?.(sent);
  return send(baseUrl, method, `/?${sent.query}`, sent.headers, method === 'GET' ? undefined : sent.body);
}

export const requestField = (request: unknown): FormPart => ({
  name: 'Request',
  value: typeof request === 'string' ? request : JSON.stringify(request),
});

export const imageFile = (bytes: Buffer, name = 'ImageFile'): FormPart => ({
  name,
  value: bytes,
  filename: 'photo.jpg',
  contentType: 'application/octet-stream',
});

/** A local HTTP server for the sandbox to download from or post callbacks to. */
export interface TestServer {
  url: string;
  hits: { method: string; path: string; body: Buffer; headers: IncomingMessage['headers'] }[];
  close: () => Promise<void>;
}

export async function startTestServer(
  handler: (
    req: IncomingMessage,
    body: Buffer,
  ) => { status: number; body?: Buffer | string; headers?: Record<string, string> },
): Promise<TestServer> {
  const hits: TestServer['hits'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      hits.push({ method: req.method ?? '', path: req.url ?? '', body, headers: req.headers });
      const answer = handler(req, body);
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
