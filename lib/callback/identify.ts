/**
 * Reads TaskID, the data id (ImageID / VideoID / DataID) and the status out of a parsed
 * callback, tolerantly: IVA's callback format is not published, so any capitalisation
 * or snake_case spelling is accepted (keys are compared with case and `_`/`-` removed),
 * at the top level first and then one level down (`Result`, `Data`, … preferred, then
 * any other object field; a field holding a JSON string is parsed first).
 *
 * Status policy (ResultStatus): success/succeeded/completed/done/finished/ok/0 →
 * `completed`; fail/failed/error/timeout/cancelled → `failed`; running/processing/
 * pending/in_progress/queued → `progress`. A missing or unrecognised status is read as
 * `completed`: IVA calls back to deliver a result, and a later callback for the same data
 * id replaces it in the ledger anyway. `rawStatus` keeps what IVA sent, so consumers can
 * judge for themselves.
 */
import type { MediaKind } from '../iva/types';
import type { ResultStatus } from '../ledger/types';
import { encodeKeySegment, isWellFormed } from '../storage/wtf8';
import { parseEmbeddedJson } from './parse';

export interface CallbackIdentity {
  taskId?: string;
  dataId?: string;
  /** From the field that matched: ImageID → image, VideoID → video, DataID → unknown. */
  kind?: MediaKind;
  status: ResultStatus;
  rawStatus?: string;
}

type Obj = Record<string, unknown>;

const norm = (key: string) => key.toLowerCase().replace(/[_\-\s]/g, '');

const TASK_KEYS = ['taskid'];
const DATA_KEYS: ReadonlyArray<readonly [string, MediaKind | undefined]> = [
  ['imageid', 'image'],
  ['videoid', 'video'],
  ['dataid', undefined],
];
const STATUS_KEYS = ['status', 'state', 'taskstatus', 'resultstatus'];
/** Containers searched first when looking one level down, in this order. */
const PREFERRED_CONTAINERS = ['result', 'data', 'detail', 'body', 'payload', 'message'];

const COMPLETED = new Set([
  'success',
  'succeeded',
  'succeed',
  'successful',
  'completed',
  'complete',
  'done',
  'finished',
  'finish',
  'ok',
  '0',
  'true',
]);
const FAILED = new Set([
  'fail',
  'failed',
  'failure',
  'error',
  'errored',
  'timeout',
  'timedout',
  'cancelled',
  'canceled',
  'aborted',
  'rejected',
  'false',
]);
const PROGRESS = new Set([
  'running',
  'processing',
  'pending',
  'inprogress',
  'queued',
  'started',
  'waiting',
  'submitted',
  'accepted',
]);

/** Single-element arrays / JSON strings unwrapped at most this deep: `[[[…]]]` is not a callback. */
const MAX_UNWRAP = 8;

function asObject(value: unknown): Obj | undefined {
  // A loop, not recursion: a body of 20 000 nested `[` would overflow the stack before
  // the body is stored, and IVA would be answered 503 for ever.
  let v = value;
  for (let depth = 0; depth <= MAX_UNWRAP; depth++) {
    if (typeof v === 'string') v = parseEmbeddedJson(v);
    if (!Array.isArray(v)) return v !== null && typeof v === 'object' ? (v as Obj) : undefined;
    if (v.length !== 1) return undefined;
    v = v[0];
  }
  return undefined;
}

function scalar(value: unknown): string | undefined {
  // Kept exactly (an id that differs only in whitespace is another id); blank means absent.
  if (typeof value === 'string') return value.trim() ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

/** The first field of `obj` whose normalised name is in `names` (in `names` order) with a usable value. */
function pick(obj: Obj, names: readonly string[]): { name: string; value: string } | undefined {
  const byNorm = new Map<string, unknown>();
  for (const [key, value] of Object.entries(obj)) {
    const n = norm(key);
    if (!byNorm.has(n) || scalar(byNorm.get(n)) === undefined) byNorm.set(n, value);
  }
  for (const name of names) {
    const value = scalar(byNorm.get(name));
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

/** The top level, then the preferred containers, then every other object-valued field. */
function levels(root: Obj): Obj[] {
  const out: Obj[] = [root];
  const children = Object.entries(root)
    .map(([key, value]) => ({ rank: PREFERRED_CONTAINERS.indexOf(norm(key)), obj: asObject(value) }))
    .filter((c): c is { rank: number; obj: Obj } => c.obj !== undefined);
  children.sort((a, b) => (a.rank < 0 ? 99 : a.rank) - (b.rank < 0 ? 99 : b.rank));
  out.push(...children.map((c) => c.obj));
  return out;
}

export function normalizeStatus(raw: string | undefined): ResultStatus {
  if (raw === undefined) return 'completed';
  const n = norm(raw);
  if (COMPLETED.has(n)) return 'completed';
  if (FAILED.has(n)) return 'failed';
  if (PROGRESS.has(n)) return 'progress';
  return 'completed';
}

/** Identifiers of a parsed body; `undefined` when the body is not an object at all. */
export function identify(value: unknown): CallbackIdentity | undefined {
  const root = asObject(value);
  if (!root) return undefined;
  const search = levels(root);
  const first = <T>(fn: (obj: Obj) => T | undefined): T | undefined => {
    for (const obj of search) {
      const found = fn(obj);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const taskId = first((obj) => pick(obj, TASK_KEYS)?.value);
  const data = first((obj) => {
    const hit = pick(
      obj,
      DATA_KEYS.map(([name]) => name),
    );
    return hit ? { dataId: hit.value, kind: DATA_KEYS.find(([name]) => name === hit.name)?.[1] } : undefined;
  });
  const rawStatus = first((obj) => pick(obj, STATUS_KEYS)?.value);
  const identity: CallbackIdentity = { status: normalizeStatus(rawStatus) };
  if (taskId !== undefined) identity.taskId = taskId;
  if (data) {
    identity.dataId = data.dataId;
    if (data.kind) identity.kind = data.kind;
  }
  if (rawStatus !== undefined) identity.rawStatus = rawStatus;
  return identity;
}

/**
 * Longest data id recorded in the ledger: it becomes part of a DynamoDB key (at most
 * 2048 bytes), and a longer one would fail every retry with 503. IVA's ids are short;
 * anything near this is not one, and is kept as unmatched instead.
 */
export const MAX_DATA_ID_BYTES = 1024;

/** A callback can be matched (and recorded in the ledger) only with a usable data id. */
export function isMatchable(identity: CallbackIdentity | undefined): identity is CallbackIdentity & { dataId: string } {
  return identity?.dataId !== undefined && ledgerIdBytes(identity.dataId) <= MAX_DATA_ID_BYTES;
}

/** Bytes the id takes in a ledger key: UTF-8, or its percent-encoded WTF-8 when it holds lone surrogates. */
function ledgerIdBytes(id: string): number {
  return isWellFormed(id) ? Buffer.byteLength(id, 'utf8') : encodeKeySegment(id).length;
}
