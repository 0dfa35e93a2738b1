/**
 * multipart/form-data parsing of a body already held in memory (an API Gateway event),
 * with busboy, without copying file bytes.
 *
 * The whole body is written to busboy in ONE write: busboy then hands out file data
 * as `data.slice(start, end)` of that very buffer (views, `isDataSafe`), and only bytes
 * it had to keep in its look-behind across writes would be copies — with a single
 * write there are none. The file's chunks are kept as a list of views and never joined,
 * so the caller can hash and send them in place (lib/iva FileData `readonly Uint8Array[]`).
 */
import busboy from 'busboy';
import type { Readable } from 'node:stream';
import { MultipartError } from './errors';

export { MultipartError, type MultipartErrorCode } from './errors';

export interface FormField {
  name: string;
  value: string;
  /** The value hit `maxFieldBytes` and was cut. */
  truncated: boolean;
}

export interface FilePart {
  /** The part's `name` parameter. */
  field: string;
  filename?: string;
  mimeType: string;
  /** Views of the body buffer, in order; never concatenated. */
  chunks: Buffer[];
  size: number;
}

export interface ParsedForm {
  fields: FormField[];
  files: FilePart[];
}

export interface ParseOptions {
  /** Largest text field (default 1 MiB). */
  maxFieldBytes?: number;
  /** Most parts accepted (default 16): a form of thousands of empty parts is an attack, not a submission. */
  maxParts?: number;
}

/** RFC 2046 §5.1.1: 1–70 characters from this set, not ending with a space. */
const BCHARS = /^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$/;

/** The boundary parameter of a Content-Type, unquoted; undefined when absent. */
export function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/i.exec(contentType);
  if (!match) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2];
}

export function isMultipartFormData(contentType: string | undefined): boolean {
  return typeof contentType === 'string' && /^\s*multipart\/form-data\s*(;|$)/i.test(contentType);
}

/** Checks the Content-Type's boundary; throws MultipartError when it cannot frame a body. */
export function checkBoundary(contentType: string): string {
  const boundary = boundaryOf(contentType);
  if (boundary === undefined || boundary === '') {
    throw new MultipartError(
      'MissingBoundary',
      'The Content-Type multipart/form-data has no boundary parameter; send "multipart/form-data; boundary=…" as your multipart encoder writes it',
    );
  }
  if (!BCHARS.test(boundary) || boundary.endsWith(' ')) {
    throw new MultipartError(
      'InvalidBoundary',
      "The multipart boundary must be 1-70 characters of letters, digits and '()+_,-./:=? (RFC 2046), not ending with a space",
    );
  }
  return boundary;
}

function translate(error: unknown): MultipartError {
  if (error instanceof MultipartError) return error;
  const message = (error as Error)?.message ?? String(error);
  if (/Unexpected end of (form|file)/i.test(message)) {
    return new MultipartError(
      'TruncatedMultipart',
      'The multipart body ends before its closing boundary: it was truncated, or the boundary in Content-Type does not match the body',
      { cause: error },
    );
  }
  if (/Malformed part header/i.test(message)) {
    return new MultipartError(
      'MalformedPartHeader',
      'A multipart part has malformed headers (each part needs "Content-Disposition: form-data; name=…" followed by an empty line)',
      { cause: error },
    );
  }
  if (/content type/i.test(message)) {
    return new MultipartError('InvalidContentType', `The Content-Type header cannot be parsed: ${message}`, {
      cause: error,
    });
  }
  return new MultipartError('MalformedMultipart', `The multipart body cannot be parsed: ${message}`, { cause: error });
}

/**
 * Parses `body` (the whole request body) as multipart/form-data. Never throws anything
 * but MultipartError for any bytes: garbage, truncation, hostile headers.
 */
export function parseMultipart(body: Buffer, contentType: string, options: ParseOptions = {}): Promise<ParsedForm> {
  const maxFieldBytes = options.maxFieldBytes ?? 1024 * 1024;
  const maxParts = options.maxParts ?? 16;
  return new Promise<ParsedForm>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      reject(translate(error));
    };
    try {
      checkBoundary(contentType);
    } catch (error) {
      return fail(error);
    }

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: { 'content-type': contentType },
        // Filenames may be UTF-8 (browsers and undici send them raw).
        defParamCharset: 'utf8',
        limits: { fieldSize: maxFieldBytes, parts: maxParts, fieldNameSize: 200 },
      });
    } catch (error) {
      return fail(error);
    }

    const fields: FormField[] = [];
    const files: FilePart[] = [];
    const open = new Set<Readable>();
    let finished = false;

    const maybeDone = (): void => {
      if (settled || !finished || open.size > 0) return;
      settled = true;
      resolve({ fields, files });
    };

    // busboy reports a part with no name (or name="") as name undefined: nothing could
    // tell what it is, and it would reach code that reads every part's name.
    const unnamed = (name: string | undefined): boolean => {
      if (name !== undefined && name !== '') return false;
      fail(
        new MultipartError(
          'MissingPartName',
          'A multipart part has no name: every part needs Content-Disposition: form-data; name="Request" (or "ImageFile" / "VideoFile")',
        ),
      );
      return true;
    };

    parser.on('field', (name, value, info) => {
      if (unnamed(name)) return;
      fields.push({ name, value, truncated: info.valueTruncated });
    });
    parser.on('file', (field, stream, info) => {
      if (unnamed(field)) {
        stream.resume();
        return;
      }
      const part: FilePart = {
        field,
        mimeType: info.mimeType,
        chunks: [],
        size: 0,
        ...(info.filename !== undefined ? { filename: info.filename } : {}),
      };
      files.push(part);
      open.add(stream);
      stream.on('data', (chunk: Buffer) => {
        if (chunk.length === 0) return;
        part.chunks.push(chunk);
        part.size += chunk.length;
      });
      stream.on('error', fail);
      stream.on('end', () => {
        open.delete(stream);
        maybeDone();
      });
    });
    parser.on('partsLimit', () =>
      fail(
        new MultipartError(
          'TooManyParts',
          `The multipart body has more than ${maxParts} parts; send the Request field and one file part`,
        ),
      ),
    );
    parser.on('error', fail);
    parser.on('close', () => {
      finished = true;
      maybeDone();
    });
    // One write of the whole body: file chunks come out as views of it (see the file comment).
    parser.end(body);
  });
}
