/**
 * Each signature is accepted once. The authorizer records a used signature in the ledger
 * table with a conditional put (`AUTHSIG#<signature>` / `AUTHSIG`), kept until X-Date +
 * CLOCK_SKEW_SECONDS (TTL attribute `expiresAt`; a record past it counts as absent, since
 * DynamoDB deletes expired items late and dynalite never). After that the X-Date check
 * refuses the request anyway, so there is no window in which a replay passes.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { CLOCK_SKEW_SECONDS } from './verify';

export const REPLAY_PREFIX = 'AUTHSIG#';

export interface ReplayGuard {
  /** True the first time a signature is seen within its window; false for a replay. */
  firstUse(signature: string, signedAtSeconds: number, accessKeyId: string): Promise<boolean>;
}

export function createDynamoReplayGuard(
  doc: DynamoDBDocumentClient,
  tableName: string,
  now = () => Date.now(),
): ReplayGuard {
  return {
    async firstUse(signature, signedAtSeconds, accessKeyId) {
      const nowSeconds = Math.floor(now() / 1000);
      try {
        await doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              pk: `${REPLAY_PREFIX}${signature}`,
              sk: 'AUTHSIG',
              accessKeyId,
              expiresAt: signedAtSeconds + CLOCK_SKEW_SECONDS + 1,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
            ExpressionAttributeValues: { ':now': nowSeconds },
          }),
        );
        return true;
      } catch (error) {
        if (
          error instanceof ConditionalCheckFailedException ||
          (error as { name?: string }).name === 'ConditionalCheckFailedException'
        )
          return false;
        throw error;
      }
    },
  };
}

/** For tests without DynamoDB and for the benchmark: the same rule in memory. */
export function createMemoryReplayGuard(now = () => Date.now()): ReplayGuard {
  const seen = new Map<string, number>();
  return {
    async firstUse(signature, signedAtSeconds) {
      const nowSeconds = Math.floor(now() / 1000);
      const until = seen.get(signature);
      if (until !== undefined && until >= nowSeconds) return false;
      seen.set(signature, signedAtSeconds + CLOCK_SKEW_SECONDS + 1);
      return true;
    },
  };
}
