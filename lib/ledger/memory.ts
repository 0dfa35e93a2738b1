/**
 * The ledger's submission writes in memory, with the DynamoDB ledger's rules for them
 * (dynamo.ts): `begin` creates or re-leases a pending record and answers `busy` while a
 * live lease holds it, `duplicate` once it is settled (`submitted`, `failed`,
 * `uncertain`); the marks release the lease; a mark on an unknown id throws
 * SubmissionNotFoundError; `reopenUncertain` reopens only an `uncertain` record. For tests of the submitting paths without servers, and the
 * benchmark. Results, the sweep and the listings are not kept: those methods throw.
 */
import { SubmissionNotFoundError, SubmissionNotUncertainError } from './errors';
import type { BeginInput, Ledger, SubmissionRecord } from './types';

/** The ledger methods the submitting paths (S3 intake, direct API) write with. */
export type SubmissionLedger = Pick<
  Ledger,
  'get' | 'begin' | 'reserve' | 'markSubmitted' | 'markFailed' | 'markRetrying' | 'markUncertain'
>;

export interface MemoryLedgerOptions {
  /** Clock for timestamps and leases. Default: the system clock. */
  now?: () => Date;
  /** Lease of `begin` without `leaseMs`. Default 60 s. */
  defaultLeaseMs?: number;
}

export interface MemoryLedger extends Ledger {
  /** Every record, by id (the same objects `get` returns copies of). */
  readonly records: ReadonlyMap<string, SubmissionRecord>;
}

const DEFAULT_LEASE_MS = 60_000;

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export function createMemoryLedger(options: MemoryLedgerOptions = {}): MemoryLedger {
  const now = options.now ?? (() => new Date());
  const defaultLease = options.defaultLeaseMs ?? DEFAULT_LEASE_MS;
  const records = new Map<string, SubmissionRecord>();
  const copy = (r: SubmissionRecord): SubmissionRecord => structuredClone(r);

  function create(input: BeginInput, extra: Partial<SubmissionRecord>): SubmissionRecord {
    const timestamp = now().toISOString();
    const record = withoutUndefined<SubmissionRecord>({
      id: input.id,
      source: input.source,
      status: 'pending',
      submitStatus: 'pending',
      taskId: input.taskId,
      kind: input.kind,
      name: input.name,
      desc: input.desc,
      object: input.object ? withoutUndefined({ ...input.object }) : undefined,
      caller: input.caller ? withoutUndefined({ ...input.caller }) : undefined,
      multipart: input.multipart ? { ...input.multipart } : undefined,
      attempts: 0,
      createdAt: timestamp,
      updatedAt: timestamp,
      ...extra,
    });
    records.set(input.id, record);
    return copy(record);
  }

  /** Sets `set` (undefined values skipped), deletes `remove`; status follows submitStatus. */
  function update(
    id: string,
    set: Partial<SubmissionRecord>,
    remove: ReadonlyArray<keyof SubmissionRecord> = [],
  ): SubmissionRecord {
    const record = records.get(id);
    if (!record) throw new SubmissionNotFoundError(id);
    Object.assign(record, withoutUndefined(set), { updatedAt: now().toISOString() });
    for (const field of remove) delete record[field];
    record.status = record.submitStatus;
    return copy(record);
  }

  const notKept = (method: string) => () =>
    Promise.reject(new Error(`the memory ledger keeps submissions only: ${method} is not supported`));

  return {
    records,
    async get(id) {
      const record = records.get(id);
      return record ? copy(record) : undefined;
    },
    async begin(input, opts) {
      const at = now();
      const leaseUntil = new Date(at.getTime() + (opts?.leaseMs ?? defaultLease)).toISOString();
      const existing = records.get(input.id);
      if (!existing) return { action: 'proceed', record: create(input, { attempts: 1, leaseUntil }) };
      if (existing.submitStatus !== 'pending') return { action: 'duplicate', record: copy(existing) };
      if (existing.leaseUntil !== undefined && existing.leaseUntil >= at.toISOString())
        return { action: 'busy', record: copy(existing) };
      // The lease holder records the full object identity (dynamo.ts, begin).
      const object = input.object ? withoutUndefined({ ...input.object }) : existing.object;
      const record = update(input.id, { leaseUntil, object, attempts: existing.attempts + 1 });
      return { action: 'proceed', record };
    },
    async reserve(input) {
      if (records.has(input.id)) throw new Error(`the memory ledger already holds ${input.id}`);
      return create(input, {});
    },
    async markSubmitted(id, input) {
      const timestamp = now().toISOString();
      return update(
        id,
        {
          submitStatus: 'submitted',
          dataId: input.dataId,
          requestId: input.requestId,
          kind: input.kind,
          submittedAt: timestamp,
        },
        ['leaseUntil', 'error'],
      );
    },
    async markFailed(id, error, fields) {
      return update(
        id,
        { submitStatus: 'failed', error: withoutUndefined({ ...error }), requestId: error.requestId, ...fields },
        ['leaseUntil'],
      );
    },
    async markRetrying(id, error) {
      return update(id, { error: withoutUndefined({ ...error }) }, ['leaseUntil']);
    },
    async markUncertain(id, info) {
      return update(
        id,
        {
          submitStatus: 'uncertain',
          uncertain: withoutUndefined({ ...info }),
          error: { code: info.code, message: info.message },
        },
        ['leaseUntil'],
      );
    },
    resolveUncertain: notKept('resolveUncertain'),
    async reopenUncertain(id, opts) {
      const record = records.get(id);
      if (!record) throw new SubmissionNotFoundError(id);
      if (record.submitStatus !== 'uncertain') throw new SubmissionNotUncertainError(id, record.status);
      const at = now();
      record.attempts += 1;
      return update(
        id,
        {
          submitStatus: 'pending',
          leaseUntil: new Date(at.getTime() + (opts?.leaseMs ?? defaultLease)).toISOString(),
          resolution: withoutUndefined({ action: 'resubmitted' as const, at: at.toISOString(), note: opts?.note }),
        },
        ['error'],
      );
    },
    recordResult: notKept('recordResult'),
    markOverdue: notKept('markOverdue'),
    markExpired: notKept('markExpired'),
    markAbandoned: notKept('markAbandoned'),
    unmark: notKept('unmark'),
    sweepCandidates: notKept('sweepCandidates'),
    resultHistory: notKept('resultHistory'),
    claimResultEvent: notKept('claimResultEvent'),
    markResultEventPublished: notKept('markResultEventPublished'),
    releaseResultEvent: notKept('releaseResultEvent'),
    getByDataId: notKept('getByDataId'),
    listByTask: notKept('listByTask'),
    listByStatus: notKept('listByStatus'),
  };
}
