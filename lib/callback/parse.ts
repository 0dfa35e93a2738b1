/**
 * Turns the raw request body into the exact bytes to store and a parsed value to read
 * identifiers from. Policy: an authenticated, non-empty body is never refused for its
 * format (IVA's callback format is not published, reference/iva-api.md "Results"):
 * there is no 415. JSON and form-encoded bodies are parsed; anything else, or a missing
 * or unexpected content type, is sniffed (JSON first, then form), and if neither fits it
 * is kept as text and filed as unmatched. Only a body that declares JSON and does not
 * parse is answered 400, after it has been stored.
 */
import { EmptyBodyError, PayloadTooLargeError } from './errors';

/** API Gateway REST APIs accept at most 10 MB per request. */
export const MAX_CALLBACK_BYTES = 10 * 1024 * 1024;

export type BodyFormat = 'json' | 'form' | 'text';

export interface ParsedBody {
  format: BodyFormat;
  /** The parsed JSON value, or the form fields as an object; undefined for text. */
  value: unknown;
  /** Declared JSON that did not parse (format is then `text`). */
  malformed: boolean;
  /** What the stored object's name ends with. */
  extension: 'json' | 'txt';
}

export interface RawBody {
  body: string | null | undefined;
  isBase64Encoded?: boolean;
}

/** The exact bytes the sender posted (API Gateway base64-encodes binary bodies). */
export function bodyBytes(raw: RawBody, maxBytes = MAX_CALLBACK_BYTES): Buffer {
  if (raw.body === null || raw.body === undefined || raw.body === '') throw new EmptyBodyError();
  const bytes = raw.isBase64Encoded ? Buffer.from(raw.body, 'base64') : Buffer.from(raw.body, 'utf8');
  if (bytes.length === 0 || bytes.toString('utf8').trim() === '') throw new EmptyBodyError();
  if (bytes.length > maxBytes) throw new PayloadTooLargeError(maxBytes);
  return bytes;
}

export function mediaType(contentType: string | undefined | null): string | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type || undefined;
}

function isJsonType(type: string): boolean {
  return type === 'application/json' || type === 'text/json' || type.endsWith('+json');
}

function text(bytes: Buffer): string {
  // A UTF-8 byte order mark is legal in what senders emit and illegal for JSON.parse.
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

function tryJson(source: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(source) };
  } catch {
    return { ok: false };
  }
}

/** Form fields as an object; a field whose value is a JSON object or array is parsed too. */
export function parseForm(source: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(source)) {
    if (name in fields) continue; // first occurrence wins, like most form readers
    fields[name] = parseEmbeddedJson(value);
  }
  return fields;
}

/** A string that holds a JSON object or array becomes that value; anything else stays as it is. */
export function parseEmbeddedJson(value: string): unknown {
  const trimmed = value.trim();
  if (!(trimmed.startsWith('{') || trimmed.startsWith('['))) return value;
  const parsed = tryJson(trimmed);
  return parsed.ok ? parsed.value : value;
}

const looksLikeForm = (source: string) => /^[^\s=&{}[\]"]+=[^\s]*$/.test(source.trim());

export function parseBody(bytes: Buffer, contentType: string | undefined | null): ParsedBody {
  const type = mediaType(contentType);
  const source = text(bytes);
  if (type && isJsonType(type)) {
    const parsed = tryJson(source);
    return parsed.ok
      ? { format: 'json', value: parsed.value, malformed: false, extension: 'json' }
      : { format: 'text', value: undefined, malformed: true, extension: 'txt' };
  }
  if (type === 'application/x-www-form-urlencoded') {
    return { format: 'form', value: parseForm(source), malformed: false, extension: 'txt' };
  }
  // No, or another, content type: sniff, so a real callback is understood whatever it declares.
  const trimmed = source.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const parsed = tryJson(trimmed);
    if (parsed.ok) return { format: 'json', value: parsed.value, malformed: false, extension: 'json' };
  }
  if (looksLikeForm(trimmed)) return { format: 'form', value: parseForm(trimmed), malformed: false, extension: 'txt' };
  return { format: 'text', value: undefined, malformed: false, extension: 'txt' };
}
