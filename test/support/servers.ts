/**
 * Clients of the local servers, built the one way every test needs them: a DynamoDB
 * document client that drops undefined values (as the functions' own), and an S3 client
 * that speaks path-style to s3rver with its fixed keys.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoLedger, createLedgerTable, type Ledger } from '../../lib/ledger/index';
import { createS3Client } from '../../lib/storage/s3-client';
import type { LocalDynalite, LocalS3 } from '../../local/servers/index';

export function documentClient(
  dynalite: Pick<LocalDynalite, 'endpoint' | 'region' | 'credentials'>,
): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: dynalite.endpoint, region: dynalite.region, credentials: dynalite.credentials }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
}

export function s3rverClient(s3: Pick<LocalS3, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>): S3Client {
  return createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

/** A fresh ledger table on dynalite and the ledger over it. */
export async function ledgerOn(doc: DynamoDBDocumentClient, table = 'ledger'): Promise<Ledger> {
  await createLedgerTable(doc, table);
  return createDynamoLedger({ tableName: table, client: doc });
}
