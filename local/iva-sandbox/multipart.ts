/**
 * Parses and validates an AddAsyncTask{Image,Video}Data body the way the vendor page
 * describes it (docs/iva-api.md): a `Request` JSON text field and, for
 * Source=file, one `ImageFile` / `VideoFile` part, in any order.
 */
import busboy from 'busboy';
import type { IncomingHttpHeaders } from 'node:http';
import { type SandboxError, invalidParameter, missingParameter } from './errors';

export type SandboxKind = 'image' | 'video';

export interface ParsedSubmission {
  taskId: string;
  name: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
  source: 'url' | 'file';
  url?: string;
  file?: { bytes: Buffer; fileName?: string; contentType?: string };
}

interface RawParts {
  request?: string;
  files: { field: string; bytes: Buffer; fileName?: string; contentType?: string; truncated: boolean }[];
}

const FILE_PART: Record<SandboxKind, string> = { image: 'ImageFile', video: 'VideoFile' };
const DATA_KEY: Record<SandboxKind, string> = { image: 'Image', video: 'Video' };

export async function parseSubmission(
  headers: IncomingHttpHeaders,
  body: Buffer,
  kind: SandboxKind,
  maxFileBytes: number,
): Promise<ParsedSubmission> {
  const parts = await readParts(headers, body, maxFileBytes);
  return validate(parts, kind, maxFileBytes);
}

function readParts(headers: IncomingHttpHeaders, body: Buffer, maxFileBytes: number): Promise<RawParts> {
  const contentType = headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    return Promise.reject(
      invalidParameter(`Content-Type must be multipart/form-data with a boundary; got "${contentType || '(none)'}".`),
    );
  }
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // One more byte than allowed, so "exactly the limit" passes and "one over" is seen.
      parser = busboy({
        headers,
        limits: { fileSize: Number.isFinite(maxFileBytes) ? maxFileBytes + 1 : undefined, fieldSize: 1024 * 1024 },
      });
    } catch (err) {
      reject(invalidParameter(`The multipart body cannot be parsed: ${(err as Error).message}.`));
      return;
    }
    const parts: RawParts = { files: [] };
    let duplicateRequest = false;
    parser.on('field', (name, value) => {
      if (name !== 'Request') return;
      if (parts.request !== undefined) duplicateRequest = true;
      parts.request = value;
    });
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const bytes = Buffer.concat(chunks);
        // Some clients send every part with a filename; a `Request` part is still the JSON.
        if (name === 'Request') {
          if (parts.request !== undefined) duplicateRequest = true;
          parts.request = bytes.toString('utf8');
          return;
        }
        parts.files.push({
          field: name,
          bytes,
          fileName: info.filename,
          contentType: info.mimeType,
          truncated: stream.truncated === true,
        });
      });
    });
    parser.on('error', (err: Error) => reject(invalidParameter(`The multipart body is malformed: ${err.message}.`)));
    parser.on('close', () => {
      if (duplicateRequest) reject(invalidParameter('The Request field appears more than once.'));
      else resolve(parts);
    });
    parser.end(body);
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requiredString(obj: Record<string, unknown>, key: string, path: string): string {
  const value = obj[key];
  if (value === undefined || value === null || value === '')
    throw missingParameter(`${path} is required and must not be empty.`);
  if (typeof value !== 'string') throw invalidParameter(`${path} must be a string.`);
  if (value.trim() === '') throw missingParameter(`${path} is required and must not be blank.`);
  return value;
}

function validate(parts: RawParts, kind: SandboxKind, maxFileBytes: number): ParsedSubmission {
  const filePart = FILE_PART[kind];
  const dataKey = DATA_KEY[kind];
  if (parts.request === undefined) throw missingParameter('The multipart field "Request" (a JSON string) is required.');
  let request: unknown;
  try {
    request = JSON.parse(parts.request);
  } catch {
    throw invalidParameter('The "Request" field is not valid JSON.');
  }
  if (!isObject(request)) throw invalidParameter('The "Request" field must be a JSON object.');

  const taskId = requiredString(request, 'TaskID', 'Request.TaskID');
  const data = request[dataKey];
  if (data === undefined || data === null) throw missingParameter(`Request.${dataKey} is required for this action.`);
  if (!isObject(data)) throw invalidParameter(`Request.${dataKey} must be a JSON object.`);
  const name = requiredString(data, 'Name', `Request.${dataKey}.Name`);
  const source = requiredString(data, 'Source', `Request.${dataKey}.Source`);
  if (source !== 'url' && source !== 'file')
    throw invalidParameter(`Request.${dataKey}.Source must be "url" or "file", got "${source}".`);
  const desc = data.Desc;
  if (desc !== undefined && desc !== null && typeof desc !== 'string')
    throw invalidParameter(`Request.${dataKey}.Desc must be a string.`);
  const algo = request.AlgoParamConf;
  if (algo !== undefined && algo !== null && !isObject(algo))
    throw invalidParameter('Request.AlgoParamConf must be a JSON object.');

  const wrong = parts.files.find((f) => f.field !== filePart);
  if (wrong)
    throw invalidParameter(
      `Unexpected file part "${wrong.field}": this action takes its file in a part named "${filePart}".`,
    );
  if (parts.files.length > 1) throw invalidParameter(`Only one "${filePart}" part is accepted.`);
  const file = parts.files[0];

  const result: ParsedSubmission = {
    taskId,
    name,
    source,
    ...(typeof desc === 'string' ? { desc } : {}),
    ...(isObject(algo) ? { algoParamConf: algo } : {}),
  };
  if (source === 'url') {
    const url = requiredString(data, 'Url', `Request.${dataKey}.Url`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalidParameter(`Request.${dataKey}.Url is not a valid URL.`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw invalidParameter(`Request.${dataKey}.Url must be an http or https URL.`);
    if (file) throw invalidParameter(`A "${filePart}" part must not be sent when Source is "url".`);
    return { ...result, url };
  }
  if (!file) throw missingParameter(`Source is "file" but the body has no "${filePart}" part.`);
  if (file.truncated || file.bytes.length > maxFileBytes) throw tooLarge(kind, maxFileBytes);
  if (file.bytes.length === 0) throw invalidParameter(`The "${filePart}" part is empty.`);
  return { ...result, file: { bytes: file.bytes, fileName: file.fileName, contentType: file.contentType } };
}

export function tooLarge(kind: SandboxKind, maxBytes: number): SandboxError {
  return invalidParameter(`The ${kind} is larger than the ${Math.round(maxBytes / (1024 * 1024))} MB limit.`);
}
