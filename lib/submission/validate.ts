/**
 * The one set of rules for the fields of an IVA submission (TaskID, Name, Desc,
 * AlgoParamConf, kind), applied by every entry point: the HTTP API's Request object and
 * `POST /v1/uploads` (lib/api), the S3 path's object metadata and key (lib/s3-intake),
 * and the command line (lib/cli). The same value gets the same verdict and the same
 * code on every path. Each caller wraps a SubmissionFieldError in its own error type
 * (ApiError, IntakeRuleError, a usage error); the code stays the same.
 *
 * Why these limits: IVA states none (docs/ has the contract as we read it), but a
 * TaskID becomes a DynamoDB key (the ledger's task index, 2048 bytes at most) and a log
 * key, and a control character in it would reach IVA and every log line. Deep nesting
 * in AlgoParamConf overflows the stack of JSON.stringify (a few thousand levels), after
 * the ledger record was begun; refusing it here keeps that a 4xx with nothing left behind.
 */
import { BridgeError } from '../errors';
import type { MediaKind } from '../iva/types';

/** IVA's names for the fields, as they appear in its Request JSON. */
export const IVA_FIELD = {
  taskId: 'TaskID',
  name: 'Name',
  desc: 'Desc',
  algoParamConf: 'AlgoParamConf',
} as const;

export const TASK_ID_MAX_CHARS = 256;
export const NAME_MAX_CHARS = 1024;
/** Levels of objects/arrays in AlgoParamConf, the top object being level 1. */
export const ALGO_PARAM_CONF_MAX_DEPTH = 32;

export type SubmissionFieldCode =
  | 'MissingTaskID'
  | 'InvalidTaskID'
  | 'MissingName'
  | 'InvalidName'
  | 'InvalidDesc'
  | 'InvalidAlgoParamConf'
  | 'InvalidKind';

/** One field is missing or wrong. `message` is safe to show and to log (no raw input in it). */
export class SubmissionFieldError extends BridgeError<SubmissionFieldCode> {
  override readonly name = 'SubmissionFieldError';
  constructor(code: SubmissionFieldCode, message: string) {
    super(code, message, { httpStatus: 400 });
  }
}

/** Unicode control characters (C0, DEL, C1): never in an identifier, never raw in a log line. */
const CONTROL = /\p{Cc}/u;
const CONTROL_ALL = /\p{Cc}/gu;

export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}

const LOG_MAX_CHARS = 200;

/**
 * A user-supplied string made safe for a log line: control characters become visible
 * escapes (`\n`, `\u0000`), and a long value is cut, saying how long it was.
 */
export function escapeForLog(value: string, maxChars = LOG_MAX_CHARS): string {
  const cut = value.length > maxChars ? value.slice(0, maxChars) : value;
  const escaped = cut.replace(CONTROL_ALL, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  return value.length > maxChars ? `${escaped}…(${value.length} chars)` : escaped;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${escapeForLog(value, 40)}"`;
  return `a ${typeof value}`;
}

function blank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The TaskID: a non-blank string of at most TASK_ID_MAX_CHARS characters with no
 * control character. `label` names the field as the caller's user knows it.
 */
export function checkTaskId(value: unknown, label = 'TaskID', hint = ''): string {
  if (blank(value))
    throw new SubmissionFieldError('MissingTaskID', `${label} is required: the id of the IVA async task${hint}`);
  if (typeof value !== 'string')
    throw new SubmissionFieldError('InvalidTaskID', `${label} must be a string, got ${describe(value)}`);
  if (value.length > TASK_ID_MAX_CHARS || hasControlCharacter(value))
    throw new SubmissionFieldError(
      'InvalidTaskID',
      `${label} must be at most ${TASK_ID_MAX_CHARS} characters without control characters, got ${value.length} characters${hasControlCharacter(value) ? ' with control characters' : ''}`,
    );
  return value;
}

export function checkName(value: unknown, label = 'Name'): string {
  if (blank(value)) throw new SubmissionFieldError('MissingName', `${label} is required (a non-empty name)`);
  if (typeof value !== 'string')
    throw new SubmissionFieldError('InvalidName', `${label} must be a string, got ${describe(value)}`);
  if (value.length > NAME_MAX_CHARS || hasControlCharacter(value))
    throw new SubmissionFieldError(
      'InvalidName',
      `${label} must be at most ${NAME_MAX_CHARS} characters without control characters, got ${value.length} characters${hasControlCharacter(value) ? ' with control characters' : ''}`,
    );
  return value;
}

/** Desc is free text (line breaks allowed, as IVA takes them); only its type is checked. */
export function checkDesc(value: unknown, label = 'Desc'): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new SubmissionFieldError('InvalidDesc', `${label} must be a string, got ${describe(value)}`);
  return value;
}

/** `image` or `video` (any case). */
export function checkKind(value: unknown, label = 'Kind'): MediaKind {
  const lower = typeof value === 'string' ? value.toLowerCase() : undefined;
  if (lower === 'image' || lower === 'video') return lower;
  throw new SubmissionFieldError(
    'InvalidKind',
    `${label} must be "image" or "video", got ${value === undefined ? 'nothing' : describe(value)}`,
  );
}

/** Depth of nested objects/arrays, walked without recursion; stops once past `limit`. */
function depthExceeds(root: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [value, depth] = next;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** A JSON object of algorithm parameters, passed to IVA as is, nested at most ALGO_PARAM_CONF_MAX_DEPTH levels. */
export function checkAlgoParamConf(value: unknown, label = 'AlgoParamConf'): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value))
    throw new SubmissionFieldError(
      'InvalidAlgoParamConf',
      `${label} must be a JSON object of algorithm parameters, got ${describe(value)}`,
    );
  if (depthExceeds(value, ALGO_PARAM_CONF_MAX_DEPTH))
    throw new SubmissionFieldError(
      'InvalidAlgoParamConf',
      `${label} is nested more than ${ALGO_PARAM_CONF_MAX_DEPTH} levels deep; algorithm parameters are a flat or shallow map`,
    );
  return value;
}

/** Parses JSON text, then checkAlgoParamConf (the S3 metadata and the CLI option carry it as text). */
export function parseAlgoParamConf(
  text: string | undefined,
  label = 'AlgoParamConf',
): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SubmissionFieldError(
      'InvalidAlgoParamConf',
      `${label} is not valid JSON: ${escapeForLog((error as Error).message, 120)}`,
    );
  }
  if (value === null || value === undefined)
    throw new SubmissionFieldError('InvalidAlgoParamConf', `${label} must be a JSON object, got null`);
  return checkAlgoParamConf(value, label);
}
