/**
 * POST /v1/uploads against a real S3 implementation (Ceph RGW verifies SigV4, unlike
 * s3rver): the returned URL + headers work with a plain fetch, and the bound fields
 * really are bound — a different Content-Type or a missing metadata header is refused.
 * Skipped when no Ceph gateway is configured (a failure in CI, see requireCeph).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomBytes } from 'node:crypto';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../../functions/direct-submit/handler';
import { decodeMetadataValue } from '../../../lib/storage/metadata';
import { createIvaClient } from '../../../lib/iva/index';
import { createDynamoLedger, createLedgerTable } from '../../../lib/ledger/index';
import { logger, noMetrics, silentLogger } from '../../../lib/observability';
import {
  cephS3Client,
  createBucket,
  requireCeph,
  startDynalite,
  uniqueBucketName,
  type LocalDynalite,
} from '../../../local/servers/index';
import { lambdaContext, restEvent } from './events';

const ceph = requireCeph();

describe.skipIf(!ceph)('POST /v1/uploads on Ceph RGW', () => {
  let dynalite: LocalDynalite;
  let s3: S3Client;
  let handler: ReturnType<typeof createHandler>;
  const bucket = uniqueBucketName('uploads');

  beforeAll(async () => {
    logger.setLogLevel('SILENT');
    dynalite = await startDynalite();
    const doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: dynalite.endpoint, region: dynalite.region, credentials: dynalite.credentials }),
      {
        marshallOptions: { removeUndefinedValues: true },
      },
    );
    await createLedgerTable(doc, 'ledger');
    s3 = cephS3Client(ceph!);
    await createBucket(ceph!, bucket);
    handler = createHandler({
      ledger: createDynamoLedger({ tableName: 'ledger', client: doc }),
      // Never called by this route; an unreachable endpoint proves it.
      iva: createIvaClient({ endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }),
      s3,
      bucket,
      config: { directMaxBytes: 4_500_000, uploadUrlTtlSeconds: 600, ivaService: 'iva', ivaRegion: 'cn-north-1' },
      logger: silentLogger,
      metrics: noMetrics,
    });
  });

  afterAll(async () => {
    await dynalite?.close();
  });

  async function ticket(body: unknown): Promise<Record<string, any>> {
    const res = (await handler(
      restEvent({
        method: 'POST',
        path: '/v1/uploads',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
      lambdaContext(),
    )) as APIGatewayProxyResult;
    expect(res.statusCode, res.body).toBe(200);
    return JSON.parse(res.body) as Record<string, any>;
  }

  it('a plain fetch PUT with the returned headers stores the object with the IVA metadata', async () => {
    const data = randomBytes(300_000);
    const t = await ticket({
      TaskID: 'task-ceph',
      Kind: 'image',
      Name: '猫 photo.jpg',
      Desc: 'größer',
      AlgoParamConf: { k: 'v' },
      ContentType: 'image/jpeg',
      Size: data.length,
    });
    const put = await fetch(t.Url, { method: 'PUT', headers: t.Headers, body: data });
    expect(put.status, await put.text()).toBe(200);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: t.Key }));
    expect(head.ContentType).toBe('image/jpeg');
    expect(head.ContentLength).toBe(data.length);
    const meta = Object.fromEntries(Object.entries(head.Metadata ?? {}).map(([k, v]) => [k, decodeMetadataValue(v)]));
    expect(meta).toMatchObject({
      'iva-task-id': 'task-ceph',
      'iva-kind': 'image',
      'iva-name': '猫 photo.jpg',
      'iva-desc': 'größer',
      'iva-algo-param-conf': '{"k":"v"}',
      'iva-submission-id': t.SubmissionId,
    });
  });

  it('the bound fields are enforced: another Content-Type or a dropped metadata header → 403', async () => {
    const data = randomBytes(1000);
    const t = await ticket({
      TaskID: 'task-ceph',
      Kind: 'video',
      Name: 'v.mp4',
      ContentType: 'video/mp4',
      Size: data.length,
    });
    const otherType = await fetch(t.Url, {
      method: 'PUT',
      headers: { ...t.Headers, 'Content-Type': 'text/plain' },
      body: data,
    });
    expect(otherType.status).toBe(403);
    const { 'x-amz-meta-iva-task-id': _dropped, ...withoutTask } = t.Headers as Record<string, string>;
    const missing = await fetch(t.Url, { method: 'PUT', headers: withoutTask, body: data });
    expect(missing.status).toBe(403);
    const ok = await fetch(t.Url, { method: 'PUT', headers: t.Headers, body: data });
    expect(ok.status).toBe(200);
  });
});
