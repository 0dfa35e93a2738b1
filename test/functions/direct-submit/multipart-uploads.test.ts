/**
 * POST /v1/uploads as an S3 multipart upload, through the direct-submit handler against
 * dynalite and a real local S3: the embedded s3rver (with local/servers/s3rver-multipart.ts)
 * and the Ceph RGW, a real S3 for multipart semantics (ETag checks, ListParts, abort),
 * when it is configured. Parts are PUT with a plain fetch to the presigned URLs.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../../functions/direct-submit/handler';
import { createIvaClient } from '../../../lib/iva/index';
import { createDynamoLedger, createLedgerTable, type Ledger } from '../../../lib/ledger/index';
import { logger, noMetrics, silentLogger } from '../../../lib/observability';
import { decodeMetadataValue } from '../../../lib/storage/metadata';
import { runSweep, s3MultipartUploads } from '../../../lib/sweep/index';
import {
  cephS3Client,
  createBucket,
  requireCeph,
  startDynalite,
  startS3rver,
  uniqueBucketName,
  type LocalDynalite,
  type LocalS3,
} from '../../../local/servers/index';
import type { S3EventNotification } from '../../../local/servers/s3rver';
import { documentClient, s3rverClient } from '../../support/servers';
import { lambdaContext, restEvent } from './events';

const MiB = 1024 * 1024;
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const ceph = requireCeph();

interface Answer {
  status: number;
  body: Record<string, any>;
}

const backends = [
  { name: 's3rver', enabled: true },
  { name: 'ceph', enabled: ceph !== undefined },
] as const;

describe.each(backends)('multipart uploads on $name', ({ name, enabled }) => {
  describe.skipIf(!enabled)(name, () => {
    let dynalite: LocalDynalite;
    let s3rver: LocalS3 | undefined;
    let s3: S3Client;
    let ledger: Ledger;
    let handler: ReturnType<typeof createHandler>;
    let bucket: string;
    const events: S3EventNotification[] = [];
    let tables = 0;

    beforeAll(async () => {
      logger.setLogLevel('SILENT');
      dynalite = await startDynalite();
      const doc = documentClient(dynalite);
      await createLedgerTable(doc, 'ledger');
      ledger = createDynamoLedger({ tableName: 'ledger', client: doc });
      if (name === 's3rver') {
        bucket = 'uploads';
        s3rver = await startS3rver({ buckets: [bucket] });
        s3rver.events.on('event', (e) => events.push(e));
        s3 = s3rverClient(s3rver);
      } else {
        bucket = uniqueBucketName('multipart');
        s3 = cephS3Client(ceph!);
        await createBucket(ceph!, bucket);
      }
      handler = createHandler({
        ledger,
        // Never called by these routes; an unreachable endpoint proves it.
        iva: createIvaClient({
          endpoint: 'http://127.0.0.1:9',
          credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        }),
        s3,
        bucket,
        config: { directMaxBytes: 4_500_000, uploadUrlTtlSeconds: 600, ivaService: 'iva', ivaRegion: 'cn-north-1' },
        logger: silentLogger,
        metrics: noMetrics,
      });
    });

    afterAll(async () => {
      s3?.destroy();
      await s3rver?.close();
      await dynalite?.close();
    });

    async function call(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
      const res = (await handler(
        restEvent({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', ...headers },
          ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        }),
        lambdaContext(),
      )) as APIGatewayProxyResult;
      return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, any> };
    }

    const code = (a: Answer): string | undefined => a.body.ResponseMetadata?.Error?.Code;

    /** A multipart ticket for `size` bytes in parts of `partSize`. */
    async function create(size: number, partSize = 5 * MiB, extra: Record<string, unknown> = {}): Promise<Answer> {
      return call('/v1/uploads', {
        TaskID: 'task-mp',
        Kind: 'video',
        Name: 'клип.mp4',
        Desc: 'lobby',
        ContentType: 'video/mp4',
        Size: size,
        Multipart: true,
        PartSize: partSize,
        ...extra,
      });
    }

    /** PUTs one part's bytes; the ETag S3 answered. */
    async function putPart(url: string, bytes: Uint8Array): Promise<{ status: number; etag: string | null }> {
      const res = await fetch(url, { method: 'PUT', body: bytes });
      await res.arrayBuffer();
      return { status: res.status, etag: res.headers.get('etag') };
    }

    it('parts PUT to the presigned URLs and completed make one object with the metadata of a single PUT', async () => {
      const data = randomBytes(12 * MiB + 12345);
      const ticket = await create(data.length);
      expect(ticket.status, JSON.stringify(ticket.body)).toBe(200);
      const t = ticket.body;
      expect(t).toMatchObject({ Method: 'MULTIPART', PartSize: 5 * MiB, PartCount: 3, Bucket: bucket });
      expect(t.Key).toBe(`incoming/task-mp/${t.SubmissionId}/клип.mp4`);
      expect(t.Parts.map((p: { PartNumber: number; Size: number }) => [p.PartNumber, p.Size])).toEqual([
        [1, 5 * MiB],
        [2, 5 * MiB],
        [3, 2 * MiB + 12345],
      ]);
      expect(await ledger.get(t.SubmissionId)).toMatchObject({
        status: 'pending',
        source: 'upload',
        multipart: { uploadId: t.UploadId, partSize: 5 * MiB, partCount: 3 },
        object: { key: t.Key, size: data.length },
      });

      // Parts in any order, in parallel; then fresh URLs for part 2 from …/parts work too.
      const again = await call(`/v1/uploads/${t.SubmissionId}/parts`, { PartNumbers: [2] });
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body).toMatchObject({ SubmissionId: t.SubmissionId, UploadId: t.UploadId });
      const urls = [t.Parts[0].Url, again.body.Parts[0].Url, t.Parts[2].Url] as string[];
      const slices = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB, 10 * MiB), data.subarray(10 * MiB)];
      const puts = await Promise.all(urls.map((u, i) => putPart(u, slices[i]!)));
      expect(puts.map((p) => p.status)).toEqual([200, 200, 200]);

      const done = await call(`/v1/uploads/${t.SubmissionId}/complete`, {
        Parts: puts.map((p, i) => ({ PartNumber: i + 1, ETag: p.etag })).reverse(),
      });
      expect(done.status, JSON.stringify(done.body)).toBe(200);
      expect(done.body).toMatchObject({ SubmissionId: t.SubmissionId, Bucket: bucket, Key: t.Key, Size: data.length });

      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: t.Key }));
      expect(head.ContentType).toBe('video/mp4');
      expect(head.ContentLength).toBe(data.length);
      const meta = Object.fromEntries(Object.entries(head.Metadata ?? {}).map(([k, v]) => [k, decodeMetadataValue(v)]));
      expect(meta).toMatchObject({
        'iva-task-id': 'task-mp',
        'iva-kind': 'video',
        'iva-name': 'клип.mp4',
        'iva-desc': 'lobby',
        'iva-submission-id': t.SubmissionId,
      });
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: t.Key }));
      expect(sha(await got.Body!.transformToByteArray())).toBe(sha(data));
      if (name === 's3rver') {
        const record = events.flatMap((e) => e.Records).find((r) => decodeURIComponent(r.s3.object.key) === t.Key);
        expect(record?.eventName).toBe('ObjectCreated:CompleteMultipartUpload');
        expect(record?.s3.object.size).toBe(data.length);
      }
    });

    it('complete refuses a wrong ETag (InvalidPart), a missing part (InvalidParts) and a small middle part (EntityTooSmall); the right list then completes', async () => {
      const data = randomBytes(10 * MiB + 1);
      const t = (await create(data.length)).body;
      expect(t.PartCount).toBe(3);
      const p1 = await putPart(t.Parts[0].Url, data.subarray(0, 5 * MiB));
      const p2 = await putPart(t.Parts[1].Url, data.subarray(5 * MiB, 10 * MiB));
      const p3 = await putPart(t.Parts[2].Url, data.subarray(10 * MiB));
      const complete = (parts: unknown) => call(`/v1/uploads/${t.SubmissionId}/complete`, { Parts: parts });

      const wrong = await complete([
        { PartNumber: 1, ETag: p1.etag },
        { PartNumber: 2, ETag: '"0123456789abcdef0123456789abcdef"' },
        { PartNumber: 3, ETag: p3.etag },
      ]);
      expect([wrong.status, code(wrong)]).toEqual([400, 'InvalidPart']);
      const missing = await complete([
        { PartNumber: 1, ETag: p1.etag },
        { PartNumber: 3, ETag: p3.etag },
      ]);
      expect([missing.status, code(missing)]).toEqual([400, 'InvalidParts']);
      expect(missing.body.ResponseMetadata.Error.Message).toContain('missing: 2');
      // Part 2 again, 1 MiB short of its Size: S3 keeps it until complete looks at the sizes.
      const short = await putPart(t.Parts[1].Url, data.subarray(5 * MiB, 6 * MiB));
      const small = await complete([
        { PartNumber: 1, ETag: p1.etag },
        { PartNumber: 2, ETag: short.etag },
        { PartNumber: 3, ETag: p3.etag },
      ]);
      expect([small.status, code(small)]).toEqual([400, 'EntityTooSmall']);

      // That part alone goes again; the upload is still open.
      const again = await putPart(t.Parts[1].Url, data.subarray(5 * MiB, 10 * MiB));
      expect(again.etag).toBe(p2.etag);
      const ok = await complete([
        { PartNumber: 1, ETag: p1.etag },
        { PartNumber: 2, ETag: again.etag },
        { PartNumber: 3, ETag: p3.etag },
      ]);
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: t.Key }));
      expect(sha(await got.Body!.transformToByteArray())).toBe(sha(data));
    });

    it('a complete whose S3 upload an earlier attempt already completed answers 200 (the object is listed under its key)', async () => {
      const data = randomBytes(6 * MiB);
      const t = (await create(data.length)).body;
      const p1 = await putPart(t.Parts[0].Url, data.subarray(0, 5 * MiB));
      const p2 = await putPart(t.Parts[1].Url, data.subarray(5 * MiB));
      const parts = [
        { PartNumber: 1, ETag: p1.etag },
        { PartNumber: 2, ETag: p2.etag },
      ];
      // The first attempt's CompleteMultipartUpload went through; only its answer was lost.
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: t.Key,
          UploadId: t.UploadId,
          MultipartUpload: { Parts: parts as { PartNumber: number; ETag: string }[] },
        }),
      );
      const again = await call(`/v1/uploads/${t.SubmissionId}/complete`, { Parts: parts });
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body).toMatchObject({ SubmissionId: t.SubmissionId, Key: t.Key, Size: data.length });
      // An upload that is gone without its object is not found.
      const other = (await create(6 * MiB)).body;
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: other.Key, UploadId: other.UploadId }));
      const gone = await call(`/v1/uploads/${other.SubmissionId}/complete`, {
        Parts: [
          { PartNumber: 1, ETag: p1.etag },
          { PartNumber: 2, ETag: p2.etag },
        ],
      });
      // Ceph RGW answers that completion 500 "already in progress" (docs/local-s3.md), S3 404 NoSuchUpload.
      expect([gone.status, code(gone)]).toEqual(name === 'ceph' ? [500, 'InternalError'] : [404, 'UploadNotFound']);
    });

    it('abort deletes the parts and ends the submission failed UploadAborted; the upload then takes nothing', async () => {
      const t = (await create(6 * MiB)).body;
      expect((await putPart(t.Parts[0].Url, randomBytes(5 * MiB))).status).toBe(200);
      const aborted = await call(`/v1/uploads/${t.SubmissionId}/abort`);
      expect(aborted.status, JSON.stringify(aborted.body)).toBe(200);
      expect(aborted.body).toMatchObject({
        SubmissionId: t.SubmissionId,
        Status: 'failed',
        Error: { Code: 'UploadAborted' },
      });
      expect((await putPart(t.Parts[1].Url, randomBytes(MiB))).status).toBe(404);
      const twice = await call(`/v1/uploads/${t.SubmissionId}/abort`);
      expect([twice.status, twice.body.Status]).toEqual([200, 'failed']);
      const complete = await call(`/v1/uploads/${t.SubmissionId}/complete`, {
        Parts: [
          { PartNumber: 1, ETag: '"a"' },
          { PartNumber: 2, ETag: '"b"' },
        ],
      });
      expect([complete.status, code(complete)]).toEqual([409, 'UploadClosed']);
      const parts = await call(`/v1/uploads/${t.SubmissionId}/parts`, { PartNumbers: [1] });
      expect([parts.status, code(parts)]).toEqual([409, 'UploadClosed']);
    });

    it('validates the request, the part numbers and the part list with stable 4xx codes', async () => {
      const bad = async (body: Record<string, unknown>) => code(await call('/v1/uploads', body));
      const base = { TaskID: 't', Kind: 'video', Name: 'v.mp4', Size: 20 * MiB };
      expect(await bad({ ...base, Multipart: 'yes' })).toBe('InvalidMultipart');
      expect(await bad({ ...base, Multipart: false, PartSize: 8 * MiB })).toBe('InvalidMultipart');
      expect(await bad({ ...base, PartSize: MiB })).toBe('InvalidPartSize');
      expect(await bad({ ...base, PartSize: 6 * 1024 * MiB })).toBe('InvalidPartSize');
      expect(await bad({ ...base, Size: 200 * 1024 * MiB, PartSize: 5 * MiB })).toBe('InvalidPartSize');
      const tooLarge = await call('/v1/uploads', { ...base, Size: 6 * 1024 * MiB, Multipart: false });
      expect([tooLarge.status, code(tooLarge)]).toEqual([413, 'FileTooLarge']);
      expect(await bad({ ...base, Size: 5 * 1024 * 1024 * MiB + 1 })).toBe('FileTooLarge');

      // Over one PUT's 5 GiB, an upload is multipart without asking; its part size grows with it.
      const huge = await call('/v1/uploads', { ...base, Size: 2 * 1024 * 1024 * MiB });
      expect(huge.status, JSON.stringify(huge.body)).toBe(200);
      expect(huge.body).toMatchObject({ Method: 'MULTIPART', PartSize: 210 * MiB, PartCount: 9987 });
      expect(huge.body.Parts).toHaveLength(32);
      // Without Multipart a small upload stays one PUT, as before.
      const single = await call('/v1/uploads', base);
      expect(single.body).toMatchObject({ Method: 'PUT' });

      const id = huge.body.SubmissionId as string;
      const parts = async (body: unknown) => code(await call(`/v1/uploads/${id}/parts`, body));
      expect(await parts({ PartNumbers: [0] })).toBe('InvalidPartNumbers');
      expect(await parts({ PartNumbers: [9988] })).toBe('InvalidPartNumbers');
      expect(await parts({ PartNumbers: [3, 3] })).toBe('InvalidPartNumbers');
      expect(await parts({ PartNumbers: [] })).toBe('InvalidPartNumbers');
      expect(await parts({ PartNumbers: Array.from({ length: 101 }, (_, i) => i + 1) })).toBe('InvalidPartNumbers');
      expect(await parts({ PartNumbers: ['1'] })).toBe('InvalidPartNumbers');
      expect(await parts([1])).toBe('InvalidPartNumbers');
      const hundred = await call(`/v1/uploads/${id}/parts`, {
        PartNumbers: Array.from({ length: 100 }, (_, i) => 9987 - i),
      });
      expect(hundred.status).toBe(200);
      expect(hundred.body.Parts[0]).toMatchObject({ PartNumber: 9987, Size: 92 * MiB });

      const complete = async (body: unknown) => code(await call(`/v1/uploads/${id}/complete`, body));
      expect(await complete({})).toBe('InvalidParts');
      expect(await complete({ Parts: [] })).toBe('InvalidParts');
      expect(await complete({ Parts: [{ PartNumber: 1 }] })).toBe('InvalidParts');
      expect(await complete({ Parts: [{ PartNumber: 1, ETag: 'has space' }] })).toBe('InvalidParts');
      expect(await complete({ Parts: [{ PartNumber: 0, ETag: 'abc' }] })).toBe('InvalidParts');
      expect(
        await complete({
          Parts: [
            { PartNumber: 1, ETag: 'abc' },
            { PartNumber: 1, ETag: 'abc' },
          ],
        }),
      ).toBe('InvalidParts');
      expect(await complete('not json')).toBe('InvalidJson');
      expect(code(await call(`/v1/uploads/${id}/abort`))).toBeUndefined();

      // The routes act on multipart uploads only, and on submissions that exist.
      const other = single.body.SubmissionId as string;
      const notMultipart = await call(`/v1/uploads/${other}/complete`, { Parts: [{ PartNumber: 1, ETag: 'abc' }] });
      expect([notMultipart.status, code(notMultipart)]).toEqual([409, 'UploadNotMultipart']);
      const absent = await call('/v1/uploads/upl_absent/parts', { PartNumbers: [1] });
      expect([absent.status, code(absent)]).toEqual([404, 'SubmissionNotFound']);
    });

    it('the sweep marks an abandoned multipart upload expired and aborts it', async () => {
      // A ledger whose clock runs an hour behind: the reservation looks an hour old.
      const doc = documentClient(dynalite);
      const table = `sweep-${++tables}`;
      await createLedgerTable(doc, table);
      const early = createDynamoLedger({ tableName: table, client: doc, now: () => new Date(Date.now() - 3600_000) });
      const sweeping = createHandler({
        ledger: early,
        iva: createIvaClient({
          endpoint: 'http://127.0.0.1:9',
          credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        }),
        s3,
        bucket,
        config: { directMaxBytes: 4_500_000, uploadUrlTtlSeconds: 600, ivaService: 'iva', ivaRegion: 'cn-north-1' },
        logger: silentLogger,
        metrics: noMetrics,
      });
      const res = (await sweeping(
        restEvent({
          method: 'POST',
          path: '/v1/uploads',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ TaskID: 't', Kind: 'video', Name: 'v.mp4', Size: 6 * MiB, Multipart: true }),
        }),
        lambdaContext(),
      )) as APIGatewayProxyResult;
      const t = JSON.parse(res.body) as Record<string, any>;
      expect(t.PartCount).toBe(1);
      expect((await putPart(t.Parts[0].Url, randomBytes(MiB))).status).toBe(200);
      const published: string[] = [];
      const sweep = (now: number) =>
        runSweep({
          ledger: early,
          multipart: s3MultipartUploads(s3),
          publisher: { publish: async (type) => void published.push(type) },
          settings: { overdueAfterMs: 86_400_000, expireUploadsAfterMs: 10 * 60_000, abandonedAfterMs: 86_400_000 },
          now: () => new Date(now),
        });
      if (name === 'ceph') {
        // Created an hour ago, but its latest part is seconds old: still being uploaded.
        const active = await sweep(Date.now());
        expect(active.expired).toEqual([]);
      }
      const later = await sweep(Date.now() + 20 * 60_000);
      expect(later).toMatchObject({ expired: [t.SubmissionId], aborted: [t.SubmissionId], failed: [] });
      expect(published).toEqual(['Upload Expired']);
      expect(await early.get(t.SubmissionId)).toMatchObject({ status: 'expired' });
      expect((await putPart(t.Parts[0].Url, randomBytes(MiB))).status).toBe(404);
    });
  });
});
