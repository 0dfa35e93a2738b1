/** Request bodies as API Gateway delivers them: base64 (binary media types) or text. */
import { ApiError } from './errors';
import type { ApiRequest } from './types';

/** Size of the decoded body, computed from the text alone (nothing is allocated). */
export function decodedSize(body: NonNullable<ApiRequest['body']>): number {
  return body.base64 ? Buffer.byteLength(body.text, 'base64') : Buffer.byteLength(body.text, 'utf8');
}

/**
 * Decodes the body ONCE into a Buffer, after checking its size: an oversized body is
 * refused before a byte of it is copied.
 */
export function decodeBody(req: ApiRequest, maxBytes: number, tooLarge: (size: number) => ApiError): Buffer {
  const body = req.body;
  if (!body || body.text.length === 0) throw new ApiError('MissingBody', 'The request has no body');
  const size = decodedSize(body);
  if (size > maxBytes) throw tooLarge(size);
  return body.base64 ? Buffer.from(body.text, 'base64') : Buffer.from(body.text, 'utf8');
}

export function header(req: ApiRequest, name: string): string | undefined {
  return req.headers[name.toLowerCase()];
}
