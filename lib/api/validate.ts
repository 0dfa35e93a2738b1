/**
 * Validation of a direct submission (IVA's own multipart format) into a SubmitInput,
 * with one stable error code per way it can be wrong. Messages say what to send instead.
 */
import { IMAGE_MAX_BYTES } from '../config';
import { KIND_PROTOCOL, REQUEST_FIELD } from '../iva/protocol';
import type { MediaKind } from '../iva/types';
import {
  checkBoundary,
  isMultipartFormData,
  MultipartError,
  type FilePart,
  type ParsedForm,
} from '../multipart-parser/index';
import {
  checkAlgoParamConf,
  checkDesc,
  checkName,
  checkTaskId,
  escapeForLog,
  isPlainObject,
  SubmissionFieldError,
} from '../submission/validate';
import { ApiError } from './errors';

const OTHER: Record<MediaKind, MediaKind> = { image: 'video', video: 'image' };

/** Largest `Request` field accepted: it carries names and parameters, not data. */
export const MAX_REQUEST_FIELD_BYTES = 256 * 1024;

export type DirectSource =
  | { type: 'url'; url: string }
  | { type: 'file'; chunks: readonly Buffer[]; size: number; filename?: string; contentType: string };

export interface DirectSubmission {
  kind: MediaKind;
  taskId: string;
  name: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
  source: DirectSource;
}

export function fromMultipartError(error: MultipartError): ApiError {
  if (error.code === 'FieldTooLarge') return new ApiError('RequestTooLarge', error.message, { cause: error });
  return new ApiError(error.code, error.message, { cause: error });
}

/** The Content-Type must be multipart/form-data with a usable boundary. */
export function checkMultipartContentType(contentType: string | undefined): string {
  if (contentType === undefined || !isMultipartFormData(contentType)) {
    throw new ApiError(
      'UnsupportedMediaType',
      `Send multipart/form-data (a "Request" JSON field and an ImageFile/VideoFile part), got ${contentType ? `"${escapeForLog(contentType, 100)}"` : 'no Content-Type'}`,
    );
  }
  try {
    checkBoundary(contentType);
  } catch (error) {
    if (error instanceof MultipartError) throw fromMultipartError(error);
    throw error;
  }
  return contentType;
}

export { isPlainObject };

function blank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${escapeForLog(value, 40)}"`;
  return `a ${typeof value}`;
}

export function parseHttpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The Request field: from a text part, or from a file part named Request (`curl -F Request=@req.json`). */
function requestText(form: ParsedForm): string {
  const asFields = form.fields.filter((f) => f.name === REQUEST_FIELD);
  const asFiles = form.files.filter((f) => f.field === REQUEST_FIELD);
  const count = asFields.length + asFiles.length;
  if (count === 0) {
    const seen = [...form.fields.map((f) => f.name), ...form.files.map((f) => f.field)].filter(
      (n) => n.toLowerCase() === 'request',
    );
    const hint = seen.length ? ` (field names are case-sensitive: got "${seen[0]}")` : '';
    throw new ApiError(
      'MissingRequest',
      `The multipart body has no "Request" field${hint}; send Request as a JSON string like {"TaskID":"…","Image":{"Name":"…","Source":"file"}}`,
    );
  }
  if (count > 1)
    throw new ApiError('DuplicateRequest', 'The multipart body has more than one "Request" field; send exactly one');
  const field = asFields[0];
  if (field) {
    if (field.truncated)
      throw new ApiError('RequestTooLarge', `The Request field exceeds ${MAX_REQUEST_FIELD_BYTES} bytes`);
    return field.value;
  }
  // Exactly one Request part and it is not a text field: it is the file part.
  const [file] = asFiles as [FilePart];
  if (file.size > MAX_REQUEST_FIELD_BYTES)
    throw new ApiError('RequestTooLarge', `The Request field exceeds ${MAX_REQUEST_FIELD_BYTES} bytes`);
  return Buffer.concat(file.chunks).toString('utf8');
}

function parseRequestJson(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    // `curl -F Request=@req.json` sends the file as saved, byte order mark included.
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ApiError(
      'InvalidRequestJson',
      `The Request field is not valid JSON (${(error as Error).message.slice(0, 120)}); send a JSON object string`,
    );
  }
  if (!isPlainObject(value))
    throw new ApiError('InvalidRequest', `The Request field must be a JSON object, got ${describe(value)}`);
  return value;
}

export interface RequestFields {
  taskId: string;
  name: string;
  sourceType: 'url' | 'file';
  url?: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
}

/** A field rule's verdict as the API answers it: same code, same message. */
export function fieldError(error: SubmissionFieldError): ApiError {
  return new ApiError(error.code, error.message, { cause: error });
}

/** Runs one of lib/submission's field rules, answering its failure as an ApiError. */
export function field<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof SubmissionFieldError) throw fieldError(error);
    throw error;
  }
}

/** Validates the Request JSON object for `kind` (shared shape with IVA). */
export function validateRequestObject(request: Record<string, unknown>, kind: MediaKind): RequestFields {
  const alt = ['TaskId', 'taskId', 'task_id', 'TaskID '].find((k) => k in request);
  const taskId = field(() =>
    checkTaskId(
      request['TaskID'],
      'Request.TaskID',
      ` this ${kind} belongs to${alt ? ` (got "${alt}"; the key is spelled TaskID)` : ''}`,
    ),
  );

  const key = KIND_PROTOCOL[kind].mediaKey;
  const media = request[key];
  if (media === undefined || media === null) {
    const otherKey = KIND_PROTOCOL[OTHER[kind]].mediaKey;
    const hint =
      otherKey in request
        ? ` (got "${otherKey}": this is the ${kind} route, ${KIND_PROTOCOL[kind].fileField} / ${key}; ${kind === 'image' ? 'videos go to POST /v1/videos' : 'images go to POST /v1/images'})`
        : '';
    throw new ApiError(
      kind === 'image' ? 'MissingImage' : 'MissingVideo',
      `Request.${key} is required: {"${key}":{"Name":"…","Source":"file"|"url"}}${hint}`,
    );
  }
  if (!isPlainObject(media))
    throw new ApiError('InvalidRequest', `Request.${key} must be an object, got ${describe(media)}`);

  const name = field(() => checkName(media['Name'], `Request.${key}.Name`));

  const source = media['Source'];
  if (source !== 'url' && source !== 'file') {
    throw new ApiError(
      'InvalidSource',
      `Request.${key}.Source must be "file" (the ${KIND_PROTOCOL[kind].fileField} part holds the bytes) or "url" (IVA downloads Url), got ${source === undefined ? 'nothing' : describe(source)}`,
    );
  }

  const out: RequestFields = { taskId, name, sourceType: source };
  if (source === 'url') {
    const url = media['Url'];
    if (blank(url)) throw new ApiError('MissingUrl', `Request.${key}.Url is required when Source is "url"`);
    if (typeof url !== 'string' || !parseHttpUrl(url))
      throw new ApiError(
        'InvalidUrl',
        `Request.${key}.Url must be an absolute http(s) URL IVA can download, got ${describe(url)}`,
      );
    out.url = url;
  }
  const desc = field(() => checkDesc(media['Desc'], `Request.${key}.Desc`));
  if (desc !== undefined) out.desc = desc;
  const algo = field(() => checkAlgoParamConf(request['AlgoParamConf'], 'Request.AlgoParamConf'));
  if (algo !== undefined) out.algoParamConf = algo;
  return out;
}

function checkFiles(form: ParsedForm, kind: MediaKind, sourceType: 'url' | 'file'): FilePart | undefined {
  const expected = KIND_PROTOCOL[kind].fileField;
  const other = KIND_PROTOCOL[OTHER[kind]].fileField;
  const files = form.files.filter((f) => f.field !== REQUEST_FIELD);
  for (const file of files) {
    if (file.field === other) {
      throw new ApiError(
        'WrongFilePart',
        `This is the ${kind} route: send the file as "${expected}", not "${other}" (${other === KIND_PROTOCOL.video.fileField ? 'videos go to POST /v1/videos' : 'images go to POST /v1/images'})`,
      );
    }
    if (file.field !== expected) {
      throw new ApiError(
        'UnknownFilePart',
        `Unknown file part "${escapeForLog(file.field, 64)}": the ${kind} goes in a part named "${expected}"`,
      );
    }
  }
  if (files.length > 1) throw new ApiError('TooManyFiles', `Send exactly one "${expected}" part; got ${files.length}`);
  const file = files[0];
  if (!file && form.fields.some((f) => f.name === expected)) {
    throw new ApiError(
      'FileNotAFile',
      `"${expected}" arrived as a text field: send it as a file part (with a filename, e.g. curl -F ${expected}=@photo.jpg)`,
    );
  }
  if (sourceType === 'file' && !file) {
    throw new ApiError(
      'MissingFile',
      `Source is "file" but the body has no "${expected}" part; add it, or use Source "url" with a Url`,
    );
  }
  if (sourceType === 'url' && (file || form.fields.some((f) => f.name === expected))) {
    throw new ApiError(
      'UnexpectedFile',
      `Source is "url" but the body also has a "${expected}" part; send one or the other (Source "file" to upload the bytes)`,
    );
  }
  if (file && file.size === 0) throw new ApiError('EmptyFile', `The "${expected}" part is empty (0 bytes)`);
  if (file && kind === 'image' && file.size > IMAGE_MAX_BYTES) {
    throw new ApiError(
      'ImageTooLarge',
      `The image is ${file.size} bytes; IVA accepts images up to ${IMAGE_MAX_BYTES} bytes (50 MB)`,
    );
  }
  return file;
}

export function validateDirect(form: ParsedForm, kind: MediaKind): DirectSubmission {
  const fields = validateRequestObject(parseRequestJson(requestText(form)), kind);
  const file = checkFiles(form, kind, fields.sourceType);
  // validateRequestObject sets url for Source "url"; checkFiles throws MissingFile for "file" without a part.
  const source: DirectSource =
    fields.sourceType === 'url' || !file
      ? { type: 'url', url: fields.url ?? '' }
      : {
          type: 'file',
          chunks: file.chunks,
          size: file.size,
          contentType: file.mimeType,
          ...(file.filename !== undefined ? { filename: file.filename } : {}),
        };
  return {
    kind,
    taskId: fields.taskId,
    name: fields.name,
    ...(fields.desc !== undefined ? { desc: fields.desc } : {}),
    ...(fields.algoParamConf !== undefined ? { algoParamConf: fields.algoParamConf } : {}),
    source,
  };
}
