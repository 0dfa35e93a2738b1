/**
 * The pure rules of docs/contract.md, "S3 intake": which keys are submitted, and what an object
 * becomes (TaskID, kind, Name, Desc, AlgoParamConf). No I/O here.
 */
import { createHash } from 'node:crypto';
import type { MediaKind } from '../iva/types';
import { decodeMetadataValue } from '../storage/metadata';
import { INCOMING_PREFIX } from '../storage/prefixes';
import {
  checkDesc,
  checkKind,
  checkName,
  checkTaskId,
  escapeForLog,
  hasControlCharacter,
  NAME_MAX_CHARS,
  parseAlgoParamConf as parseFieldAlgoParamConf,
  SubmissionFieldError,
} from '../submission/validate';
import { IntakeRuleError } from './errors';

/** Object metadata keys (S3 lower-cases user metadata names). */
export const META = {
  taskId: 'iva-task-id',
  kind: 'iva-kind',
  name: 'iva-name',
  desc: 'iva-desc',
  algoParamConf: 'iva-algo-param-conf',
  submissionId: 'iva-submission-id',
} as const;

/** S3 event keys are form-encoded: `+` is a space, `%2B` a plus. */
export function decodeS3EventKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** Only `incoming/…` objects are submitted, so the stack never loops on its own `results/`. */
export function isSubmittableKey(key: string): boolean {
  // A key ending in `/` is a console "folder" marker, not a file.
  return key.startsWith(INCOMING_PREFIX) && key.length > INCOMING_PREFIX.length && !key.endsWith('/');
}

export interface ObjectFacts {
  key: string;
  /** User metadata as HeadObject returns it (names lower-cased, values possibly RFC 2047). */
  metadata: Record<string, string | undefined>;
  contentType?: string;
  size?: number;
}

export interface RuleConfig {
  defaultTaskId?: string;
  imageMaxBytes: number;
}

export interface SubmissionPlan {
  taskId: string;
  kind: MediaKind;
  name: string;
  desc?: string;
  algoParamConf?: Record<string, unknown>;
}

/** What is known even when the plan fails, so the failed record still says as much as it can. */
export type PartialPlan = Partial<Pick<SubmissionPlan, 'taskId' | 'kind' | 'name' | 'desc'>>;

export type Decision = { ok: true; plan: SubmissionPlan } | { ok: false; error: IntakeRuleError; partial: PartialPlan };

const IMAGE_EXTENSIONS = new Set([
  'jpg',
  'jpeg',
  'jpe',
  'png',
  'gif',
  'bmp',
  'webp',
  'tif',
  'tiff',
  'heic',
  'heif',
  'avif',
  'ico',
]);
const VIDEO_EXTENSIONS = new Set([
  'mp4',
  'm4v',
  'mov',
  'avi',
  'mkv',
  'flv',
  'f4v',
  'wmv',
  'webm',
  'mpeg',
  'mpg',
  'ts',
  'mts',
  'm2ts',
  '3gp',
  '3g2',
  'ogv',
  'rm',
  'rmvb',
  'asf',
  'vob',
]);

function meta(facts: ObjectFacts, name: string): string | undefined {
  const raw = facts.metadata[name];
  if (raw === undefined) return undefined;
  const value = decodeMetadataValue(raw).trim();
  return value === '' ? undefined : value;
}

/** Last path segment of the key: the object's file name. */
export function fileNameOf(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** `incoming/<TaskID>/…` → TaskID; `incoming/file.jpg` has none. */
export function taskIdFromKey(key: string): string | undefined {
  if (!key.startsWith(INCOMING_PREFIX)) return undefined;
  const rest = key.slice(INCOMING_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const segment = rest.slice(0, slash).trim();
  return segment === '' ? undefined : segment;
}

export function resolveTaskId(facts: ObjectFacts, defaultTaskId?: string): string | undefined {
  return meta(facts, META.taskId) ?? taskIdFromKey(facts.key) ?? (defaultTaskId?.trim() || undefined);
}

export function kindFromContentType(contentType: string | undefined): MediaKind | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type?.startsWith('image/')) return 'image';
  if (type?.startsWith('video/')) return 'video';
  return undefined;
}

export function kindFromExtension(key: string): MediaKind | undefined {
  const name = fileNameOf(key);
  const dot = name.lastIndexOf('.');
  if (dot < 0) return undefined;
  const ext = name.slice(dot + 1).toLowerCase();
  if (IMAGE_EXTENSIONS.has(ext)) return 'image';
  if (VIDEO_EXTENSIONS.has(ext)) return 'video';
  return undefined;
}

/** iva-kind → Content-Type → extension. An explicit iva-kind that is neither is an error, not a hint. */
export function resolveKind(facts: ObjectFacts): MediaKind {
  const declared = meta(facts, META.kind);
  if (declared !== undefined) {
    try {
      return checkKind(declared, `Metadata ${META.kind}`);
    } catch (error) {
      // The S3 path's documented code for a kind it cannot submit.
      if (error instanceof SubmissionFieldError) throw new IntakeRuleError('UnsupportedMediaType', error.message);
      throw error;
    }
  }
  const kind = kindFromContentType(facts.contentType) ?? kindFromExtension(facts.key);
  if (kind) return kind;
  throw new IntakeRuleError(
    'UnsupportedMediaType',
    `Cannot tell image from video: no ${META.kind} metadata, Content-Type "${escapeForLog(facts.contentType ?? '', 100)}" is neither image/* nor video/*, and the file extension is not a known one`,
  );
}

/** The metadata's AlgoParamConf, by the same rule as the API's (lib/submission). */
export function parseAlgoParamConf(raw: string | undefined): Record<string, unknown> | undefined {
  return intakeField(() => parseFieldAlgoParamConf(raw, `Metadata ${META.algoParamConf}`));
}

/** Runs one of lib/submission's field rules; its failure is recorded with the same code as the API's. */
function intakeField<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof SubmissionFieldError) throw new IntakeRuleError(error.code, error.message);
    throw error;
  }
}

/** Where the TaskID came from, so a refusal names the place to fix. */
function taskIdSource(facts: ObjectFacts): string {
  if (meta(facts, META.taskId) !== undefined) return `Metadata ${META.taskId}`;
  if (taskIdFromKey(facts.key) !== undefined) return `The key segment ${INCOMING_PREFIX}<TaskID>/`;
  return 'The default TaskID';
}

/** Applies every rule; the first failure wins, in the order docs/contract.md lists them. */
export function decide(facts: ObjectFacts, config: RuleConfig): Decision {
  const partial: PartialPlan = {};
  try {
    // Name first: a failed record still shows the file it was about.
    const rawName = meta(facts, META.name) ?? (fileNameOf(facts.key) || undefined);
    if (rawName !== undefined && !hasControlCharacter(rawName) && rawName.length <= NAME_MAX_CHARS)
      partial.name = rawName;
    const rawTaskId = resolveTaskId(facts, config.defaultTaskId);
    if (!rawTaskId) {
      throw new IntakeRuleError(
        'MissingTaskId',
        `No TaskID: set metadata ${META.taskId}, upload under ${INCOMING_PREFIX}<TaskID>/…, or configure a default TaskID`,
      );
    }
    // An invalid TaskID is never recorded as the record's TaskID (it would be a task
    // index key and a log key): the record is found by its id or by status instead.
    const taskId = intakeField(() => checkTaskId(rawTaskId, taskIdSource(facts)));
    partial.taskId = taskId;
    const name = intakeField(() =>
      checkName(rawName ?? taskId, `The Name (metadata ${META.name}, else the file name)`),
    );
    partial.name = name;
    const desc = intakeField(() => checkDesc(meta(facts, META.desc)));
    if (desc !== undefined) partial.desc = desc;
    const kind = resolveKind(facts);
    partial.kind = kind;
    const algoParamConf = parseAlgoParamConf(meta(facts, META.algoParamConf));
    if (kind === 'image' && facts.size !== undefined && facts.size > config.imageMaxBytes) {
      throw new IntakeRuleError(
        'ImageTooLarge',
        `The image is ${facts.size} bytes; IVA accepts at most ${config.imageMaxBytes} bytes per image`,
      );
    }
    const plan: SubmissionPlan = { taskId, kind, name };
    if (desc !== undefined) plan.desc = desc;
    if (algoParamConf !== undefined) plan.algoParamConf = algoParamConf;
    return { ok: true, plan };
  } catch (error) {
    if (error instanceof IntakeRuleError) return { ok: false, error, partial };
    throw error;
  }
}

/** What tells two uploads to the same key apart: the version, else the event's sequencer, else the ETag. */
export function objectIdentity(object: { versionId?: string; sequencer?: string; eTag?: string }): string | undefined {
  return object.versionId || object.sequencer || (object.eTag ? stripQuotes(object.eTag) : undefined);
}

export function stripQuotes(eTag: string): string {
  return eTag.replace(/^"+|"+$/g, '');
}

/** Deterministic per upload: the same event always maps to the same id, a new upload to a new one. */
export function derivedSubmissionId(bucket: string, key: string, identity: string): string {
  const digest = createHash('sha256').update(`${bucket}\n${key}\n${identity}`, 'utf8').digest('base64url');
  return `s3_${digest.slice(0, 32)}`;
}

/** A submission id taken from metadata must look like one of ours before it is used as a key. */
export function isPlausibleSubmissionId(value: string): boolean {
  return /^[A-Za-z0-9_-]{8,128}$/.test(value);
}
