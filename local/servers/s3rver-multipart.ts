/**
 * Brings s3rver 3.7.1's multipart uploads closer to S3's (docs/local-s3.md), for the
 * multipart route of POST /v1/uploads on the embedded stack:
 *
 * - CompleteMultipartUpload checks what S3 checks: every listed part was uploaded and its
 *   ETag is the one given (400 `InvalidPart`), parts ascend (400 `InvalidPartOrder`), every
 *   part but the last is at least 5 MiB (400 `EntityTooSmall`); s3rver checked none and
 *   assembled whatever files it had. Its event is `ObjectCreated:CompleteMultipartUpload`,
 *   S3's name, where s3rver said `ObjectCreated:Post`. Like S3 it answers 200 at once and
 *   sends spaces while it joins the parts (s3rver was silent for seconds on a large
 *   object, past the SDK's idle timeout, whose retry then found no upload).
 * - AbortMultipartUpload (`DELETE …?uploadId=`) deletes the parts (s3rver answered 405).
 * - UploadPart, Complete and Abort of an upload s3rver does not hold (never created,
 *   completed, aborted) answer 404 `NoSuchUpload`; s3rver stored the part of an aborted
 *   upload in a folder of its own making.
 *
 * Still unlike S3: no ListParts, no ListMultipartUploads, no lifecycle rules; the object's
 * ETag is the MD5 of the whole object (S3: MD5 of the parts' MD5s, `-N`).
 */
import { access, readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { s3Error } from './s3rver-keys';

/** S3: every part but the last is at least 5 MiB. */
const MIN_PART_BYTES = 5 * 1024 * 1024;

/** Where s3rver keeps an upload's parts (FilesystemStore.getResourcePath(bucket, '', 'uploads')). */
export function uploadDir(directory: string, bucket: string, uploadId: string): string {
  return join(directory, bucket, '._S3rver_uploads', uploadId);
}

interface KoaContext {
  params: { bucket: string; key: string };
  query: Record<string, string>;
  request: { body?: unknown };
  req: IncomingMessage;
  ip: string;
  headers: Record<string, string>;
  href: string;
  body: unknown;
  res: unknown;
  app: { emit(event: string, value: unknown): void };
  store: {
    getResourcePath(bucket: string, key?: string, resource?: string): string;
    putObjectMultipart(
      bucket: string,
      uploadId: string,
      parts: { number: number; etag: string }[],
    ): Promise<{ md5: string; size: number }>;
  };
}

type S3ErrorClass = new (code: string, message?: string, detail?: Record<string, unknown>) => Error;

let installed = false;

/** Replaces s3rver's CompleteMultipartUpload (once per process). */
export function containS3rverMultipart(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const objectCtrl = require('s3rver/lib/controllers/object') as {
    completeMultipartUpload(ctx: KoaContext): Promise<void>;
  };
  const S3Error = require('s3rver/lib/models/error') as S3ErrorClass;
  const S3Event = require('s3rver/lib/models/event') as new (
    data: unknown,
    params: unknown,
  ) => { Records: { eventName: string }[] };
  const S3Object = require('s3rver/lib/models/object') as new (
    bucket: string,
    key: string,
    content: unknown,
    metadata: Record<string, unknown>,
  ) => unknown;
  const s3rverRequire = createRequire(require.resolve('s3rver/lib/controllers/object'));
  const xml = s3rverRequire('fast-xml-parser') as {
    validate(text: string): true | unknown;
    parse(text: string, options: { tagValueProcessor: (value: string) => string }): unknown;
  };
  const he = s3rverRequire('he') as { decode(text: string): string };

  objectCtrl.completeMultipartUpload = async function completeMultipartUpload(ctx: KoaContext): Promise<void> {
    const text = await new Promise<string>((resolve, reject) => {
      let payload = '';
      ctx.req.on('data', (d: Buffer) => (payload += d.toString('utf8')));
      ctx.req.on('end', () => resolve(payload));
      ctx.req.on('error', reject);
    });
    const malformed = () =>
      new S3Error(
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema.',
      );
    if (xml.validate(text) !== true) throw malformed();
    const body = xml.parse(text, { tagValueProcessor: (value) => he.decode(value) }) as {
      CompleteMultipartUpload?: { Part?: unknown };
    };
    const listed = body.CompleteMultipartUpload?.Part;
    if (!listed) throw malformed();
    const parts = ([] as { PartNumber?: unknown; ETag?: unknown }[]).concat(listed as never).map((p) => ({
      number: Number(p.PartNumber),
      etag: String(p.ETag ?? '').replace(/"/g, ''),
    }));
    const uploadId = ctx.query['uploadId'] ?? '';
    const dir = join(ctx.store.getResourcePath(ctx.params.bucket, undefined, 'uploads'), uploadId);
    for (let i = 1; i < parts.length; i++)
      if ((parts[i]?.number ?? 0) <= (parts[i - 1]?.number ?? 0))
        throw new S3Error(
          'InvalidPartOrder',
          'The list of parts was not in ascending order. Parts must be ordered by part number.',
        );
    for (const [i, part] of parts.entries()) {
      const md5 = await readFile(join(dir, `${part.number}.md5`), 'utf8').catch(() => undefined);
      if (md5 === undefined || md5.trim() !== part.etag)
        throw new S3Error(
          'InvalidPart',
          "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
          { UploadId: uploadId, PartNumber: part.number, ETag: part.etag },
        );
      const size = (await stat(join(dir, String(part.number)))).size;
      if (i < parts.length - 1 && size < MIN_PART_BYTES)
        throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
          ProposedSize: size,
          MinSizeAllowed: MIN_PART_BYTES,
        });
    }
    // Joining the parts takes seconds for a large object. S3 answers 200 at once and
    // sends a space every few seconds until the result (or an <Error>) follows, so a
    // client's idle timeout never cuts the call; so does this.
    const res = ctx.res as ServerResponse;
    (ctx as unknown as { respond: boolean }).respond = false;
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.write('<?xml version="1.0" encoding="UTF-8"?>\n');
    const keepAlive = setInterval(() => res.write(' '), 1000);
    let joined: { md5: string; size: number };
    try {
      joined = await ctx.store.putObjectMultipart(ctx.params.bucket, uploadId, parts);
    } catch (error) {
      clearInterval(keepAlive);
      res.end(
        `<Error><Code>InternalError</Code><Message>${String((error as Error)?.message ?? error).replace(/[<&>]/g, '')}</Message></Error>`,
      );
      return;
    }
    clearInterval(keepAlive);
    const { md5, size } = joined;
    const event = new S3Event(
      {
        bucket: ctx.params.bucket,
        eventType: 'Post',
        S3Item: new S3Object(ctx.params.bucket, ctx.params.key, null, {
          etag: JSON.stringify(md5),
          'content-length': size,
        }),
      },
      { reqHeaders: ctx.headers, sourceIp: ctx.ip },
    );
    for (const record of event.Records) record.eventName = 'ObjectCreated:CompleteMultipartUpload';
    ctx.app.emit('event', event);
    const xmlText = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    res.end(
      `<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>${xmlText(ctx.href.split('?')[0] ?? '')}</Location><Bucket>${xmlText(ctx.params.bucket)}</Bucket><Key>${xmlText(ctx.params.key)}</Key><ETag>${xmlText(JSON.stringify(md5))}</ETag></CompleteMultipartUploadResult>`,
    );
  };
}

/**
 * Wraps s3rver's request handler (inside guardRequests, which has checked the key and the
 * uploadId's form): abort, and NoSuchUpload for an upload s3rver does not hold.
 */
export function multipartRequests(
  directory: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?');
    const uploadId = new URLSearchParams(query).get('uploadId');
    const bucket = decodeURIComponent(path.split('/')[1] ?? '');
    if (uploadId === null || bucket === '' || req.method === 'GET' || req.method === 'HEAD') return handler(req, res);
    const dir = uploadDir(directory, bucket, uploadId);
    access(join(dir, 'key')).then(
      async () => {
        if (req.method !== 'DELETE') return handler(req, res);
        req.resume();
        await rm(dir, { recursive: true, force: true });
        res.writeHead(204);
        res.end();
      },
      () => {
        req.resume();
        s3Error(
          res,
          404,
          'NoSuchUpload',
          'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
        );
      },
    );
  };
}
