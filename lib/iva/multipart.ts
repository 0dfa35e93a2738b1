/**
 * multipart/form-data framing for AddAsyncTask{Image,Video}Data, following the
 * vendor's Go demo (mime/multipart): the file part first, then the `Request` field.
 *
 * Only the framing is built here (a prefix and a suffix around the file): the file
 * itself is never copied, so the client can hash and send it in place.
 */
import { randomBytes } from 'node:crypto';
import { REQUEST_FIELD } from './protocol';

export const CRLF = '\r\n';

/** Go's multipart.Writer uses 30 random bytes as hex: collision with file bytes is not a concern. */
export function randomBoundary(): string {
  return randomBytes(30).toString('hex');
}

export function multipartContentType(boundary: string): string {
  return `multipart/form-data; boundary=${boundary}`;
}

/**
 * Quoted-string value for Content-Disposition. Go escapes `\` and `"`; CR/LF would
 * end the header line (header injection), so they are percent-encoded as browsers do.
 */
export function quoteParam(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function fieldPart(boundary: string, name: string, value: string, first: boolean): string {
  return `${first ? '' : CRLF}--${boundary}${CRLF}Content-Disposition: form-data; name="${quoteParam(name)}"${CRLF}${CRLF}${value}`;
}

function closing(boundary: string): string {
  return `${CRLF}--${boundary}--${CRLF}`;
}

export interface FileFrameInput {
  boundary: string;
  /** `ImageFile` or `VideoFile`. */
  fieldName: string;
  filename: string;
  contentType?: string;
  /** The `Request` field's JSON text. */
  requestJson: string;
}

export interface FileFrame {
  /** Everything before the file's first byte. */
  prefix: Buffer;
  /** Everything after the file's last byte: the Request field and the closing boundary. */
  suffix: Buffer;
}

export function frameWithFile(input: FileFrameInput): FileFrame {
  const contentType = input.contentType ?? 'application/octet-stream';
  if (/[\r\n]/.test(contentType)) throw new TypeError('file content type must not contain line breaks');
  const prefix =
    `--${input.boundary}${CRLF}` +
    `Content-Disposition: form-data; name="${quoteParam(input.fieldName)}"; filename="${quoteParam(input.filename)}"${CRLF}` +
    `Content-Type: ${contentType}${CRLF}${CRLF}`;
  const suffix = fieldPart(input.boundary, REQUEST_FIELD, input.requestJson, false) + closing(input.boundary);
  return { prefix: Buffer.from(prefix, 'utf8'), suffix: Buffer.from(suffix, 'utf8') };
}

/** Source=url: the body is the `Request` field alone. */
export function frameRequestOnly(boundary: string, requestJson: string): Buffer {
  return Buffer.from(fieldPart(boundary, REQUEST_FIELD, requestJson, true) + closing(boundary), 'utf8');
}
