/**
 * The ledger on one DynamoDB table (pk/sk + GSI `gsi1`), without TTL or transactions
 * so it behaves the same on dynalite as on AWS.
 *
 * Items:
 *   SUB#<id>  / SUB   one per submission; gsi1 = TASK#<TaskID> / <createdAt>#<id> (newest first);
 *                     gsi2 = STATUS#<status> / <createdAt>#<id>, the status as users see it
 *                     (kept in step by a conditional write after each status change, see syncIndexKeys)
 *   DATA#<id> / DATA  one per IVA data id: which submission owns it, and the latest callback
 *
 * Why the DATA item: a callback can arrive before the submitting function has written
 * IVA's data id. Both writers first update the DATA item (DynamoDB serialises writes to
 * one item), and whichever comes second sees the other's half and copies the result
 * onto the submission. The submitter and the callback write disjoint attributes
 * (submitStatus/dataId/requestId vs result), so neither can erase the other; `status`
 * is derived when read.
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type AttributeDefinition,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { sdkRequestHandler } from '../aws/sdk-http';
import { encodeKeySegment, isWellFormed, toWellFormed } from '../storage/wtf8';
import { InvalidCursorError, SubmissionNotFoundError, SubmissionNotUncertainError } from './errors';
import type {
  BeginInput,
  BeginOutcome,
  Ledger,
  Page,
  ResolveInput,
  ResultInput,
  ResultOutcome,
  ResultRef,
  SubmissionError,
  SubmissionRecord,
  SubmittedInput,
  UncertainInfo,
} from './types';
import { isAwsError } from '../aws/errors';

export interface DynamoLedgerOptions {
  tableName: string;
  client?: DynamoDBDocumentClient;
  now?: () => Date;
  /** How long a `begin` lease lasts; at least the submitting function's timeout. */
  leaseMs?: number;
}

const GSI = 'gsi1' as const;
const STATUS_GSI = 'gsi2' as const;
const DEFAULT_LEASE_MS = 2 * 60 * 1000;
const MAX_PAGE = 100;

type Item = Record<string, unknown>;

const subKey = (id: string) => ({ pk: `SUB#${id}`, sk: 'SUB' });
/**
 * DynamoDB keys are UTF-8: a data id holding a lone UTF-16 surrogate (valid JSON, no
 * UTF-8 form) is keyed by its percent-encoded WTF-8 under its own prefix, so it can
 * never collide with a well-formed id and stays reversible (lib/storage/wtf8.ts).
 */
/** One history entry per stored callback body, next to its data id's DATA item. */
const HISTORY_PREFIX = 'RESULT#';
const historyKey = (dataId: string, resultId: string) => ({
  pk: dataKey(dataId).pk,
  sk: `${HISTORY_PREFIX}${resultId}`,
});
const dataKey = (dataId: string) =>
  isWellFormed(dataId) ? { pk: `DATA#${dataId}`, sk: 'DATA' } : { pk: `DATAX#${encodeKeySegment(dataId)}`, sk: 'DATA' };

/** The table's shape, for tests and `npm start`; infra/stack.ts declares the same. */
export function ledgerTableDefinition(tableName: string): CreateTableCommandInput {
  const attr = (name: string): AttributeDefinition => ({ AttributeName: name, AttributeType: 'S' });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [attr('pk'), attr('sk'), attr('gsi1pk'), attr('gsi1sk'), attr('gsi2pk'), attr('gsi2sk')],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: GSI,
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: STATUS_GSI,
        KeySchema: [
          { AttributeName: 'gsi2pk', KeyType: 'HASH' },
          { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

/**
 * Creates the ledger table and waits until it is ACTIVE: DynamoDB (and dynalite, even
 * with no creation delay) answers ResourceNotFound to writes while a table is CREATING.
 */
export async function createLedgerTable(
  client: Pick<DynamoDBClient, 'send'>,
  tableName: string,
  timeoutMs = 30_000,
): Promise<void> {
  await client.send(new CreateTableCommand(ledgerTableDefinition(tableName)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesReady = (out.Table?.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE');
    if (out.Table?.TableStatus === 'ACTIVE' && indexesReady) return;
    if (Date.now() > deadline) throw new Error(`Table ${tableName} did not become ACTIVE within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || isAwsError(error, 'ConditionalCheckFailedException');
}

function toRecord(item: Item): SubmissionRecord {
  const result = item.result as ResultRef | undefined;
  const submitStatus = item.submitStatus as SubmissionRecord['submitStatus'];
  const record: SubmissionRecord = {
    id: item.id as string,
    source: item.source as SubmissionRecord['source'],
    status: deriveStatus(submitStatus, result, item),
    submitStatus,
    attempts: (item.attempts as number | undefined) ?? 0,
    createdAt: item.createdAt as string,
    updatedAt: item.updatedAt as string,
  };
  for (const field of [
    'taskId',
    'kind',
    'name',
    'desc',
    'object',
    'dataId',
    'requestId',
    'error',
    'submittedAt',
    'leaseUntil',
    'uncertain',
    'resolution',
    'overdueAt',
    'expiredAt',
    'caller',
    'multipart',
  ] as const) {
    if (item[field] !== undefined) (record as unknown as Item)[field] = item[field];
  }
  if (result) record.result = result;
  return record;
}

function deriveStatus(
  submitStatus: SubmissionRecord['submitStatus'],
  result: ResultRef | undefined,
  item: Item = {},
): SubmissionRecord['status'] {
  if (result?.status === 'completed' || result?.status === 'failed') return result.status;
  // The sweep's marks, undone by what they wait for: a final result, or the upload arriving.
  if (item.overdueAt !== undefined && (submitStatus === 'submitted' || result?.status === 'progress')) return 'overdue';
  if (item.expiredAt !== undefined && submitStatus === 'pending' && !item.attempts) return 'expired';
  // A progress callback proves IVA has it, even if our own write has not landed yet.
  if (result?.status === 'progress') return 'submitted';
  return submitStatus;
}

/**
 * RESULT_ORDER, as a condition on the item's current `result` that lets `next` replace
 * it: a final (`completed`/`failed`) replaces any `progress` and any final received
 * after it (the FIRST final wins: IVA's first verdict is the one it acted on, and a
 * retry storm cannot flip it); a `progress` replaces only an older `progress`, never a
 * final. Equal receipt times are ordered by location (the body's hash), so every writer
 * agrees whatever order the writes land in; re-applying the same result passes.
 */
function resultOrder(next: ResultRef): { condition: string; names: Record<string, string>; values: Item } {
  const names = { '#result': 'result', '#status': 'status', '#receivedAt': 'receivedAt', '#location': 'location' };
  const values = { ':completed': 'completed', ':failed': 'failed', ':at': next.receivedAt, ':loc': next.location };
  const currentIsFinal = '#result.#status IN (:completed, :failed)';
  const final = next.status === 'completed' || next.status === 'failed';
  const condition = final
    ? `attribute_not_exists(#result) OR NOT (${currentIsFinal}) OR #result.#receivedAt > :at OR (#result.#receivedAt = :at AND #result.#location >= :loc)`
    : `attribute_not_exists(#result) OR (NOT (${currentIsFinal}) AND (#result.#receivedAt < :at OR (#result.#receivedAt = :at AND #result.#location <= :loc)))`;
  return { condition, names, values };
}

function stripUndefined<T extends Item>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The table client both the ledger and the Idempotency-Key store use when given none. */
export function defaultDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient({ requestHandler: sdkRequestHandler() }), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

export function createDynamoLedger(options: DynamoLedgerOptions): Ledger {
  const table = options.tableName;
  const doc = options.client ?? defaultDocumentClient();
  const now = options.now ?? (() => new Date());
  const defaultLease = options.leaseMs ?? DEFAULT_LEASE_MS;

  async function getItem(key: Item): Promise<Item | undefined> {
    const out = await doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    return out.Item;
  }

  /**
   * SET/REMOVE on an existing submission. With `onlyIf` (a submitStatus), a record in
   * another status is refused with SubmissionNotUncertainError naming its status.
   */
  async function update(
    id: string,
    set: Item,
    remove: string[] = [],
    onlyIf?: { submitStatus: string; add?: Item },
  ): Promise<SubmissionRecord> {
    const names: Record<string, string> = {};
    const values: Item = {};
    const sets = Object.entries(stripUndefined(set)).map(([field, value], i) => {
      names[`#s${i}`] = field;
      values[`:s${i}`] = value;
      return `#s${i} = :s${i}`;
    });
    const removes = remove.map((field, i) => {
      names[`#r${i}`] = field;
      return `#r${i}`;
    });
    const adds = Object.entries(onlyIf?.add ?? {}).map(([field, value], i) => {
      names[`#a${i}`] = field;
      values[`:a${i}`] = value;
      return `#a${i} :a${i}`;
    });
    let condition = 'attribute_exists(pk)';
    if (onlyIf) {
      names['#onlyIf'] = 'submitStatus';
      values[':onlyIf'] = onlyIf.submitStatus;
      condition += ' AND #onlyIf = :onlyIf';
    }
    const record = await updateIfHolds({
      Key: subKey(id),
      UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}${adds.length ? ` ADD ${adds.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    if (record) return record;
    if (!onlyIf) throw new SubmissionNotFoundError(id);
    const existing = await getItem(subKey(id));
    if (!existing) throw new SubmissionNotFoundError(id);
    throw new SubmissionNotUncertainError(id, toRecord(existing).status);
  }

  /**
   * Links an IVA data id to its submission (the DATA item) and returns a callback that
   * arrived before the link, if any: the caller copies it onto the submission.
   */
  async function linkDataId(
    id: string,
    dataId: string,
    kind: string,
    timestamp: string,
  ): Promise<ResultRef | undefined> {
    const link = await doc.send(
      new UpdateCommand({
        TableName: table,
        Key: dataKey(dataId),
        UpdateExpression: 'SET #submissionId = :id, #kind = :kind, #linkedAt = :now',
        ExpressionAttributeNames: { '#submissionId': 'submissionId', '#kind': 'kind', '#linkedAt': 'linkedAt' },
        ExpressionAttributeValues: { ':id': id, ':kind': kind, ':now': timestamp },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return link.Attributes?.result as ResultRef | undefined;
  }

  /** Sets a sweep mark once, if `condition` holds: the record when this call set it. */
  async function mark(
    id: string,
    field: 'overdueAt' | 'expiredAt',
    condition: string,
    values: Item,
  ): Promise<SubmissionRecord | undefined> {
    const timestamp = now().toISOString();
    return updateIfHolds({
      Key: subKey(id),
      UpdateExpression: 'SET #mark = :now, #updatedAt = :now',
      ConditionExpression: `attribute_exists(pk) AND attribute_not_exists(#mark) AND ${condition}`,
      ExpressionAttributeNames: {
        '#mark': field,
        '#updatedAt': 'updatedAt',
        '#submitStatus': 'submitStatus',
        ...(field === 'overdueAt' ? { '#result': 'result', '#status': 'status' } : { '#attempts': 'attempts' }),
      },
      ExpressionAttributeValues: { ...values, ':now': timestamp },
    });
  }

  /** Copies a result onto a submission unless the one there outranks it (RESULT_ORDER). */
  async function applyResult(id: string, result: ResultRef): Promise<SubmissionRecord | undefined> {
    const order = resultOrder(result);
    return updateIfHolds({
      Key: subKey(id),
      UpdateExpression: 'SET #result = :result, #updatedAt = :now',
      ConditionExpression: `attribute_exists(pk) AND (${order.condition})`,
      ExpressionAttributeNames: { ...order.names, '#updatedAt': 'updatedAt' },
      ExpressionAttributeValues: { ...order.values, ':result': result, ':now': now().toISOString() },
    });
  }

  /** A conditional update of a submission item: its record after, or undefined when the condition failed. */
  async function updateIfHolds(
    input: Omit<UpdateCommandInput, 'TableName' | 'ReturnValues'>,
  ): Promise<SubmissionRecord | undefined> {
    try {
      const out = await doc.send(new UpdateCommand({ TableName: table, ...input, ReturnValues: 'ALL_NEW' }));
      const item = out.Attributes ?? {};
      await syncIndexKeys(item);
      return toRecord(item);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /**
   * Brings the index keys of a submission item in line with what it now holds: gsi2 with
   * its derived status, gsi1 with a TaskID recorded after it was created. A writer knows
   * only its own half (the submitter its status, the callback the result), so each one,
   * after its write, compares the whole item it got back and corrects the keys, on the
   * condition that the item still holds what the keys were derived from. When another
   * write came in between, the condition fails and that writer's own sync sets the keys:
   * the last writer always leaves them right.
   */
  async function syncIndexKeys(item: Item): Promise<void> {
    const id = item.id as string | undefined;
    const createdAt = item.createdAt as string | undefined;
    if (!id || !createdAt) return;
    const status = deriveStatus(item.submitStatus as SubmissionRecord['submitStatus'], item.result as ResultRef, item);
    const want: Item = { gsi2pk: `STATUS#${status}`, gsi2sk: `${createdAt}#${id}` };
    if (typeof item.taskId === 'string' && item.taskId !== '' && item.gsi1pk === undefined) {
      want.gsi1pk = `TASK#${item.taskId}`;
      want.gsi1sk = `${createdAt}#${id}`;
    }
    const changed = Object.entries(want).filter(([field, value]) => item[field] !== value);
    if (changed.length === 0) return;
    const names: Record<string, string> = { '#submitStatus': 'submitStatus', '#result': 'result' };
    const values: Item = { ':submitStatus': item.submitStatus };
    const sets = changed.map(([field, value], i) => {
      names[`#k${i}`] = field;
      values[`:k${i}`] = value;
      return `#k${i} = :k${i}`;
    });
    let condition = '#submitStatus = :submitStatus';
    const result = item.result as ResultRef | undefined;
    if (result) {
      names['#receivedAt'] = 'receivedAt';
      names['#status'] = 'status';
      values[':receivedAt'] = result.receivedAt;
      values[':resultStatus'] = result.status;
      condition += ' AND #result.#receivedAt = :receivedAt AND #result.#status = :resultStatus';
    } else condition += ' AND attribute_not_exists(#result)';
    // The sweep's marks are part of the derived status too (deriveStatus).
    for (const mark of ['overdueAt', 'expiredAt'] as const) {
      names[`#${mark}`] = mark;
      condition += item[mark] === undefined ? ` AND attribute_not_exists(#${mark})` : ` AND attribute_exists(#${mark})`;
    }
    if (item.expiredAt !== undefined) {
      names['#attempts'] = 'attempts';
      values[':attempts'] = item.attempts ?? 0;
      condition += item.attempts === undefined ? ' AND attribute_not_exists(#attempts)' : ' AND #attempts = :attempts';
    }
    try {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: subKey(id),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      for (const [field, value] of changed) item[field] = value;
    } catch (error) {
      // Another write changed the status meanwhile: its own sync sets the keys.
      if (!isConditionFailure(error)) throw error;
    }
  }

  function newItem(input: BeginInput, timestamp: string, extra: Item): Item {
    return stripUndefined({
      ...subKey(input.id),
      gsi1pk: input.taskId ? `TASK#${input.taskId}` : undefined,
      gsi1sk: input.taskId ? `${timestamp}#${input.id}` : undefined,
      gsi2pk: 'STATUS#pending',
      gsi2sk: `${timestamp}#${input.id}`,
      id: input.id,
      source: input.source,
      taskId: input.taskId,
      kind: input.kind,
      name: input.name,
      desc: input.desc,
      object: input.object ? stripUndefined({ ...input.object }) : undefined,
      caller: input.caller ? stripUndefined({ ...input.caller }) : undefined,
      multipart: input.multipart ? { ...input.multipart } : undefined,
      submitStatus: 'pending',
      createdAt: timestamp,
      updatedAt: timestamp,
      ...extra,
    });
  }

  return {
    async begin(input, opts) {
      const at = now();
      const timestamp = at.toISOString();
      const leaseUntil = new Date(at.getTime() + (opts?.leaseMs ?? defaultLease)).toISOString();
      try {
        const item = newItem(input, timestamp, { attempts: 1, leaseUntil });
        await doc.send(
          new PutCommand({ TableName: table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
        );
        return { action: 'proceed', record: toRecord(item) };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      // The record exists: a redelivery, a concurrent delivery, or an upload reserved earlier.
      // The lease holder records the full object identity (version, sequencer) so a
      // different upload racing for the same reserved id can tell it is not this one.
      try {
        const out = await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: subKey(input.id),
            UpdateExpression: `SET #lease = :lease, #updatedAt = :now, #object = ${input.object ? ':object' : 'if_not_exists(#object, :object)'} ADD #attempts :one`,
            ConditionExpression: '#submitStatus = :pending AND (attribute_not_exists(#lease) OR #lease < :now)',
            ExpressionAttributeNames: {
              '#lease': 'leaseUntil',
              '#updatedAt': 'updatedAt',
              '#attempts': 'attempts',
              '#submitStatus': 'submitStatus',
              '#object': 'object',
            },
            ExpressionAttributeValues: {
              ':lease': leaseUntil,
              ':now': timestamp,
              ':one': 1,
              ':pending': 'pending',
              ':object': input.object ? stripUndefined({ ...input.object }) : {},
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { action: 'proceed', record: toRecord(out.Attributes ?? {}) };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      const existing = await getItem(subKey(input.id));
      if (!existing) return this.begin(input, opts);
      const record = toRecord(existing);
      return { action: record.submitStatus === 'pending' ? 'busy' : 'duplicate', record } satisfies BeginOutcome;
    },

    async reserve(input) {
      const timestamp = now().toISOString();
      const item = newItem(input, timestamp, { attempts: 0 });
      await doc.send(new PutCommand({ TableName: table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return toRecord(item);
    },

    async markSubmitted(id, input: SubmittedInput) {
      const timestamp = now().toISOString();
      const early = await linkDataId(id, input.dataId, input.kind, timestamp);
      let record = await update(
        id,
        {
          submitStatus: 'submitted',
          dataId: toWellFormed(input.dataId),
          requestId: input.requestId,
          kind: input.kind,
          submittedAt: timestamp,
          updatedAt: timestamp,
        },
        ['leaseUntil', 'error'],
      );
      if (early) record = (await applyResult(id, early)) ?? (await this.get(id)) ?? record;
      return record;
    },

    async markFailed(id, error: SubmissionError, fields) {
      const timestamp = now().toISOString();
      return update(
        id,
        {
          submitStatus: 'failed',
          error: stripUndefined({ ...error }),
          requestId: error.requestId,
          updatedAt: timestamp,
          ...fields,
        },
        ['leaseUntil'],
      );
    },

    async markRetrying(id, error: SubmissionError) {
      return update(id, { error: stripUndefined({ ...error }), updatedAt: now().toISOString() }, ['leaseUntil']);
    },

    async markUncertain(id, info: UncertainInfo) {
      const uncertain = stripUndefined({ ...info });
      return update(
        id,
        {
          submitStatus: 'uncertain',
          uncertain,
          error: { code: info.code, message: info.message },
          updatedAt: now().toISOString(),
        },
        ['leaseUntil'],
      );
    },

    async resolveUncertain(id, input: ResolveInput) {
      const timestamp = now().toISOString();
      const resolution = stripUndefined({ action: input.status, at: timestamp, note: input.note });
      if (input.status === 'failed') {
        return update(id, { submitStatus: 'failed', resolution, updatedAt: timestamp }, [], {
          submitStatus: 'uncertain',
        });
      }
      let record = await update(
        id,
        {
          submitStatus: 'submitted',
          resolution,
          dataId: input.dataId,
          requestId: input.requestId,
          kind: input.kind,
          submittedAt: timestamp,
          updatedAt: timestamp,
        },
        ['error'],
        { submitStatus: 'uncertain' },
      );
      const kind = input.kind ?? record.kind;
      if (input.dataId && kind) {
        const early = await linkDataId(id, input.dataId, kind, timestamp);
        if (early) record = (await applyResult(id, early)) ?? (await this.get(id)) ?? record;
      }
      return record;
    },

    async reopenUncertain(id, opts) {
      const at = now();
      const timestamp = at.toISOString();
      const leaseUntil = new Date(at.getTime() + (opts?.leaseMs ?? defaultLease)).toISOString();
      return update(
        id,
        {
          submitStatus: 'pending',
          leaseUntil,
          resolution: stripUndefined({ action: 'resubmitted', at: timestamp, note: opts?.note }),
          updatedAt: timestamp,
        },
        ['error'],
        { submitStatus: 'uncertain', add: { attempts: 1 } },
      );
    },

    async recordResult(input: ResultInput): Promise<ResultOutcome> {
      const result: ResultRef = stripUndefined({
        status: input.status,
        // Display text from the body (which S3 keeps byte for byte): well-formed for DynamoDB.
        rawStatus: input.rawStatus === undefined ? undefined : toWellFormed(input.rawStatus),
        location: input.location,
        receivedAt: input.receivedAt,
      });
      // The history entry first (once per result id; a replay finds it there), so every
      // body is listed even when it does not win the status.
      try {
        await doc.send(
          new PutCommand({
            TableName: table,
            Item: { ...historyKey(input.dataId, input.resultId ?? input.location), ...result },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      const order = resultOrder(result);
      let link: Item | undefined;
      let applied = true;
      try {
        const out = await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: dataKey(input.dataId),
            UpdateExpression: 'SET #result = :result, #taskId = if_not_exists(#taskId, :taskId) ADD #callbacks :one',
            ConditionExpression: order.condition,
            ExpressionAttributeNames: { ...order.names, '#taskId': 'taskId', '#callbacks': 'callbacks' },
            ExpressionAttributeValues: {
              ...order.values,
              ':result': result,
              ':taskId': toWellFormed(input.taskId ?? ''),
              ':one': 1,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        link = out.Attributes;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        applied = false;
        link = await getItem(dataKey(input.dataId));
      }
      const submissionId = link?.submissionId as string | undefined;
      const shown = link?.result as ResultRef | undefined;
      const extra = shown ? { shown } : {};
      if (!submissionId) return { applied, ...extra };
      const submission = applied
        ? ((await applyResult(submissionId, result)) ?? (await this.get(submissionId)))
        : await this.get(submissionId);
      return { applied, submission, ...extra };
    },

    async markOverdue(id) {
      return mark(id, 'overdueAt', '#submitStatus = :submitted AND NOT (#result.#status IN (:completed, :failed))', {
        ':submitted': 'submitted',
        ':completed': 'completed',
        ':failed': 'failed',
      });
    },

    async markExpired(id) {
      return mark(
        id,
        'expiredAt',
        '#submitStatus = :pending AND (attribute_not_exists(#attempts) OR #attempts = :zero)',
        { ':pending': 'pending', ':zero': 0 },
      );
    },

    async markAbandoned(id, info: UncertainInfo) {
      const uncertain = stripUndefined({ ...info });
      return updateIfHolds({
        Key: subKey(id),
        UpdateExpression:
          'SET #submitStatus = :uncertain, #uncertain = :info, #error = :error, #updatedAt = :at REMOVE #leaseUntil',
        ConditionExpression: '#submitStatus = :pending AND #source = :api',
        ExpressionAttributeNames: {
          '#submitStatus': 'submitStatus',
          '#uncertain': 'uncertain',
          '#error': 'error',
          '#updatedAt': 'updatedAt',
          '#leaseUntil': 'leaseUntil',
          '#source': 'source',
        },
        ExpressionAttributeValues: {
          ':uncertain': 'uncertain',
          ':info': uncertain,
          ':error': { code: info.code, message: info.message },
          ':at': now().toISOString(),
          ':pending': 'pending',
          ':api': 'api',
        },
      });
    },

    async unmark(id, which) {
      try {
        const out = await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: subKey(id),
            UpdateExpression: 'REMOVE #mark',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: { '#mark': which === 'overdue' ? 'overdueAt' : 'expiredAt' },
            ReturnValues: 'ALL_NEW',
          }),
        );
        await syncIndexKeys(out.Attributes ?? {});
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    },

    async sweepCandidates(input) {
      // A filtered Scan: the sweep runs every few minutes and reads the whole table once
      // per run (see lib/sweep/README.md for the cost and when to add an index).
      const out = await doc.send(
        new ScanCommand({
          TableName: table,
          ConsistentRead: true,
          FilterExpression:
            '#sk = :sub AND ((#submitStatus = :submitted AND #submittedAt < :submittedBefore AND attribute_not_exists(#overdueAt) AND (attribute_not_exists(#result) OR NOT (#result.#status IN (:completed, :failed)))) OR (#submitStatus = :pending AND #source = :upload AND (attribute_not_exists(#attempts) OR #attempts = :zero) AND #createdAt < :reservedBefore AND attribute_not_exists(#expiredAt)) OR (#submitStatus = :pending AND #source = :api AND #createdAt < :abandonedBefore))',
          ExpressionAttributeNames: {
            '#sk': 'sk',
            '#submitStatus': 'submitStatus',
            '#submittedAt': 'submittedAt',
            '#overdueAt': 'overdueAt',
            '#result': 'result',
            '#status': 'status',
            '#source': 'source',
            '#attempts': 'attempts',
            '#createdAt': 'createdAt',
            '#expiredAt': 'expiredAt',
          },
          ExpressionAttributeValues: {
            ':sub': 'SUB',
            ':submitted': 'submitted',
            ':pending': 'pending',
            ':upload': 'upload',
            ':api': 'api',
            ':abandonedBefore': input.abandonedBefore,
            ':zero': 0,
            ':completed': 'completed',
            ':failed': 'failed',
            ':submittedBefore': input.submittedBefore,
            ':reservedBefore': input.reservedBefore,
          },
          ExclusiveStartKey: input.cursor,
        }),
      );
      const records = (out.Items ?? []).map(toRecord);
      return {
        overdue: records.filter((r) => r.submitStatus === 'submitted'),
        expired: records.filter((r) => r.submitStatus === 'pending' && r.source === 'upload'),
        abandoned: records.filter((r) => r.submitStatus === 'pending' && r.source === 'api'),
        ...(out.LastEvaluatedKey ? { cursor: out.LastEvaluatedKey } : {}),
      };
    },

    async resultHistory(dataId) {
      const items: Item[] = [];
      let start: Item | undefined;
      do {
        const out = await doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: { ':pk': dataKey(dataId).pk, ':prefix': HISTORY_PREFIX },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        );
        items.push(...(out.Items ?? []));
        start = out.LastEvaluatedKey;
      } while (start);
      return items
        .map(
          (item): ResultRef =>
            stripUndefined({
              status: item.status as ResultRef['status'],
              rawStatus: item.rawStatus as string | undefined,
              location: item.location as string,
              receivedAt: item.receivedAt as string,
            }),
        )
        .sort((a, b) =>
          a.receivedAt === b.receivedAt ? a.location.localeCompare(b.location) : a.receivedAt < b.receivedAt ? -1 : 1,
        );
    },

    async claimResultEvent(dataId, resultId, opts) {
      const at = now();
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: historyKey(dataId, resultId),
            UpdateExpression: 'SET #event = :claimed, #until = :until',
            ConditionExpression:
              'attribute_exists(pk) AND (attribute_not_exists(#event) OR (#event = :claimed AND #until < :now))',
            ExpressionAttributeNames: { '#event': 'eventState', '#until': 'eventClaimUntil' },
            ExpressionAttributeValues: {
              ':claimed': 'claimed',
              ':until': new Date(at.getTime() + opts.leaseMs).toISOString(),
              ':now': at.toISOString(),
            },
          }),
        );
        return 'claimed';
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      const item = await getItem(historyKey(dataId, resultId));
      if (!item) return 'missing';
      return item.eventState === 'published' ? 'published' : 'busy';
    },

    async markResultEventPublished(dataId, resultId) {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: historyKey(dataId, resultId),
          UpdateExpression: 'SET #event = :published, #at = :now REMOVE #until',
          ExpressionAttributeNames: { '#event': 'eventState', '#at': 'eventPublishedAt', '#until': 'eventClaimUntil' },
          ExpressionAttributeValues: { ':published': 'published', ':now': now().toISOString() },
        }),
      );
    },

    async releaseResultEvent(dataId, resultId) {
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: historyKey(dataId, resultId),
            UpdateExpression: 'REMOVE #event, #until',
            ConditionExpression: '#event = :claimed',
            ExpressionAttributeNames: { '#event': 'eventState', '#until': 'eventClaimUntil' },
            ExpressionAttributeValues: { ':claimed': 'claimed' },
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    },

    async get(id) {
      const item = await getItem(subKey(id));
      return item ? toRecord(item) : undefined;
    },

    async getByDataId(dataId) {
      const link = await getItem(dataKey(dataId));
      const submissionId = link?.submissionId as string | undefined;
      return submissionId ? this.get(submissionId) : undefined;
    },

    async listByTask(taskId, opts): Promise<Page<SubmissionRecord>> {
      return queryIndexPage(doc, table, GSI, `TASK#${taskId}`, opts);
    },

    async listByStatus(status, opts): Promise<Page<SubmissionRecord>> {
      const page = await queryIndexPage(doc, table, STATUS_GSI, `STATUS#${status}`, opts);
      // A key a racing write has not corrected yet (see syncIndexKeys) is not shown under the wrong status.
      page.items = page.items.filter((record) => record.status === status);
      return page;
    },
  };
}

/** One page of an index partition, newest first; the cursor is bound to that index and partition. */
async function queryIndexPage(
  doc: DynamoDBDocumentClient,
  table: string,
  index: 'gsi1' | 'gsi2',
  partition: string,
  opts: { limit?: number; cursor?: string } | undefined,
): Promise<Page<SubmissionRecord>> {
  const out = await doc.send(
    new QueryCommand({
      TableName: table,
      IndexName: index,
      KeyConditionExpression: `${index}pk = :pk`,
      ExpressionAttributeValues: { ':pk': partition },
      ScanIndexForward: false,
      Limit: Math.min(Math.max(opts?.limit ?? 25, 1), MAX_PAGE),
      ExclusiveStartKey: opts?.cursor ? decodeCursor(opts.cursor, index, partition) : undefined,
    }),
  );
  const page: Page<SubmissionRecord> = { items: (out.Items ?? []).map(toRecord) };
  if (out.LastEvaluatedKey) page.cursor = encodeCursor(out.LastEvaluatedKey);
  return page;
}

function encodeCursor(key: Item): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** Longest cursor this ledger writes: four short keys, base64url-encoded. */
const MAX_CURSOR_CHARS = 2048;
/** The sort key of the task index: `<ISO timestamp>#<submission id>`. */
const GSI_SORT_KEY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#([^\p{Cc}]{1,256})$/u;

function decodeCursor(cursor: string, index: 'gsi1' | 'gsi2', partition: string): Item {
  const pkName = `${index}pk`;
  const skName = `${index}sk`;
  try {
    if (cursor.length > MAX_CURSOR_CHARS) throw new Error('too long');
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Item;
    // Keys only: refuse anything that could point the query elsewhere.
    const fields = Object.keys(key).sort().join(',');
    if (fields !== [pkName, skName, 'pk', 'sk'].sort().join(',') || key[pkName] !== partition)
      throw new Error('foreign cursor');
    // Exactly the shape this listing writes (a submission item of this partition), so a
    // forged value (empty, over-long, another item's key) cannot reach DynamoDB as a
    // ValidationException (a 500).
    const sortKey = key[skName];
    const id = typeof sortKey === 'string' ? GSI_SORT_KEY.exec(sortKey)?.[1] : undefined;
    if (!id || key.sk !== 'SUB' || key.pk !== `SUB#${id}`) throw new Error('forged cursor');
    return key;
  } catch {
    throw new InvalidCursorError();
  }
}
