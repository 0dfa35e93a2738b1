/**
 * Idempotency-Key records for the submitting routes, in the ledger table (one item per
 * key; the table's TTL attribute `expiresAt` removes them, and reads treat an expired
 * one as absent, because dynalite has no TTL and DynamoDB deletes up to days late).
 *
 *   IDEM#<sha256(key)> / IDEM   fingerprint, state (inProgress|completed), lockedUntil,
 *                               submissionId, response {status, headers, body}, expiresAt
 *
 * Why not Powertools' idempotency utility: see lib/api/README.md ("Idempotency-Key").
 */
import { createHash } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { defaultDocumentClient } from './dynamo';

/** How long a key is remembered: a client retrying within this window gets the first answer. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type IdempotencyClaim =
  /** First use of the key (or the last one expired): run the request, then complete or release. */
  | { action: 'proceed' }
  /** The same request was answered before: send this answer again. */
  | { action: 'replay'; response: StoredResponse }
  /** The key was used for a different request. */
  | { action: 'mismatch' }
  /** The first request with this key is still running (or died running; then `stale`). */
  | { action: 'inFlight'; retryAfterSeconds: number; submissionId?: string; stale: boolean };

export interface IdempotencyStore {
  claim(
    key: string,
    fingerprint: string,
    options: { lockMs: number; submissionId?: string },
  ): Promise<IdempotencyClaim>;
  complete(key: string, response: StoredResponse): Promise<void>;
  /** Forgets the key, so a retry with it runs again (the request had no lasting effect). */
  release(key: string): Promise<void>;
}

export interface DynamoIdempotencyOptions {
  tableName: string;
  client?: DynamoDBDocumentClient;
  now?: () => Date;
  /** @default IDEMPOTENCY_TTL_SECONDS */
  ttlSeconds?: number;
}

const itemKey = (key: string) => ({ pk: `IDEM#${createHash('sha256').update(key).digest('hex')}`, sk: 'IDEM' });

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'
  );
}

export function createDynamoIdempotencyStore(options: DynamoIdempotencyOptions): IdempotencyStore {
  const table = options.tableName;
  const doc = options.client ?? defaultDocumentClient();
  const now = options.now ?? (() => new Date());
  const ttlSeconds = options.ttlSeconds ?? IDEMPOTENCY_TTL_SECONDS;

  async function claim(
    key: string,
    fingerprint: string,
    opts: { lockMs: number; submissionId?: string },
    tries = 2,
  ): Promise<IdempotencyClaim> {
    const at = now();
    const nowSeconds = Math.floor(at.getTime() / 1000);
    try {
      await doc.send(
        new PutCommand({
          TableName: table,
          Item: {
            ...itemKey(key),
            fingerprint,
            state: 'inProgress',
            lockedUntil: at.getTime() + opts.lockMs,
            submissionId: opts.submissionId,
            createdAt: at.toISOString(),
            expiresAt: nowSeconds + ttlSeconds,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
          ExpressionAttributeValues: { ':now': nowSeconds },
        }),
      );
      return { action: 'proceed' };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const out = await doc.send(new GetCommand({ TableName: table, Key: itemKey(key), ConsistentRead: true }));
    const item = out.Item;
    // Deleted or expired between the two calls: claim again (bounded).
    if (!item || (item.expiresAt as number) < nowSeconds)
      return tries > 1
        ? claim(key, fingerprint, opts, tries - 1)
        : { action: 'inFlight', retryAfterSeconds: 1, stale: false };
    if (item.fingerprint !== fingerprint) return { action: 'mismatch' };
    if (item.state === 'completed' && item.response)
      return { action: 'replay', response: item.response as StoredResponse };
    const leftMs = (item.lockedUntil as number) - at.getTime();
    return {
      action: 'inFlight',
      retryAfterSeconds: Math.min(30, Math.max(1, Math.ceil(leftMs / 1000))),
      stale: leftMs <= 0,
      ...(typeof item.submissionId === 'string' ? { submissionId: item.submissionId } : {}),
    };
  }

  return {
    claim: (key, fingerprint, opts) => claim(key, fingerprint, opts),
    async complete(key, response) {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: itemKey(key),
          UpdateExpression: 'SET #state = :completed, #response = :response REMOVE #lockedUntil',
          ExpressionAttributeNames: { '#state': 'state', '#response': 'response', '#lockedUntil': 'lockedUntil' },
          ExpressionAttributeValues: { ':completed': 'completed', ':response': response },
        }),
      );
    },
    async release(key) {
      await doc.send(new DeleteCommand({ TableName: table, Key: itemKey(key) }));
    },
  };
}
