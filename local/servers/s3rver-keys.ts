/**
 * Keeps s3rver inside its folder and alive, whatever the key (docs/local-s3.md).
 *
 * s3rver 3.7.1 maps a key to a path by splitting it on `/` and joining the parts under
 * its folder: `..` segments walk out of the folder, `a//b` and `a/b` become one file, a
 * segment over 255 bytes crashes the process (an unhandled ENAMETOOLONG), and deleting
 * an object removes empty folders along the raw key's parts (outside, with `..`).
 * AWS S3 treats every key of 1 to 1,024 UTF-8 bytes literally and refuses longer ones
 * with 400 KeyTooLongError. So, before s3rver starts:
 *
 * - keys map to paths one segment at a time, by an encoding that is injective (two keys
 *   never share a file), reversible (listings decode it) and prefix-preserving (s3rver
 *   prunes its listing walk by comparing encoded prefixes): `%` → `%25`; a `.` that starts
 *   a segment (or a piece of one) → `%2E`, so no part is ever `.` or `..`; an empty
 *   segment before a `/` → `%`; a segment over 200 bytes is cut into pieces joined by
 *   `%+/`. Plain keys (`incoming/task/cat.jpg`) are stored exactly as before.
 * - deleteObject's folder clean-up walks the encoded parts and never above the bucket.
 * - requests are checked before s3rver sees them: a key over 1,024 bytes → 400
 *   KeyTooLongError, an undecodable path → 400 InvalidURI, an uploadId that s3rver did
 *   not issue (it joins it into a path) → 404 NoSuchUpload.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join, resolve, sep } from 'node:path';

/** AWS S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Longest piece of a segment on disk; leaves room for s3rver's `._S3rver_metadata.json` suffix under 255. */
const PIECE_BYTES = 200;
const CONTINUATION = '%+/';

/** Splits an escaped segment into pieces of at most PIECE_BYTES bytes, never inside an escape or a character. */
function pieces(escaped: string): string[] {
  const tokens = escaped.match(/%25|%2E|[\s\S]/gu) ?? [];
  const out: string[] = [];
  let current = '';
  let bytes = 0;
  for (const token of tokens) {
    const n = Buffer.byteLength(token);
    if (bytes + n > PIECE_BYTES && current) {
      out.push(current);
      current = '';
      bytes = 0;
    }
    // No piece may begin with `.` (a piece is a folder or file name of its own).
    const t = current === '' && token === '.' ? '%2E' : token;
    current += t;
    bytes += Buffer.byteLength(t);
  }
  out.push(current);
  return out;
}

export function encodeKeyPath(key: string): string {
  const segments = key.split('/');
  return segments
    .map((segment, i) => {
      if (segment === '') return i === segments.length - 1 ? '' : '%';
      const escaped = segment.replace(/%/g, '%25');
      return pieces(escaped).join(CONTINUATION);
    })
    .join('/');
}

export function decodeKeyPath(path: string): string {
  return path
    .split(CONTINUATION)
    .join('')
    .split('/')
    .map((segment) =>
      segment === '%' ? '' : segment.replace(/%(25|2E)/g, (_, hex: string) => (hex === '25' ? '%' : '.')),
    )
    .join('/');
}

interface FilesystemStoreClass {
  encodeKeyPath(key: string): string;
  decodeKeyPath(path: string): string;
  prototype: {
    getBucketPath(bucket: string): string;
    getResourcePath(bucket: string, key?: string, resource?: string): string;
    deleteObject(bucket: string, key: string): Promise<void>;
  };
}

let installed = false;

/** Replaces s3rver's key-to-path mapping and its delete clean-up (once per process). */
export function containS3rverKeys(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const store = require('s3rver/lib/stores/filesystem') as FilesystemStoreClass;
  const fs = require('fs-extra') as typeof import('node:fs/promises') & { readdirSync(p: string): string[] };
  store.encodeKeyPath = encodeKeyPath;
  store.decodeKeyPath = decodeKeyPath;
  store.prototype.deleteObject = async function deleteObject(bucket: string, key: string): Promise<void> {
    await Promise.all(
      ['object', 'object.md5', 'metadata.json'].map((resource) =>
        fs.unlink(this.getResourcePath(bucket, key, resource)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        }),
      ),
    );
    // Remove the folders the key's (encoded) parts made, while empty, never the bucket or above.
    const bucketPath = resolve(this.getBucketPath(bucket));
    const parts = encodeKeyPath(key).split('/');
    parts.pop();
    while (parts.length) {
      const dir = resolve(join(bucketPath, ...parts));
      if (!dir.startsWith(bucketPath + sep)) break;
      let entries: string[];
      try {
        entries = fs.readdirSync(dir);
      } catch {
        break;
      }
      if (entries.length) break;
      await fs.rmdir(dir).catch(() => undefined);
      parts.pop();
    }
  };
}

export function s3Error(res: ServerResponse, status: number, code: string, message: string, extra = ''): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>${randomBytes(8).toString('hex').toUpperCase()}</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Wraps s3rver's request handler: refuses what S3 refuses before s3rver touches the disk.
 * Path-style only (`/bucket/key`), as the local stack addresses it.
 */
export interface GuardOptions {
  /** The stored object's ETag (quoted), undefined when there is none: conditional copies. */
  eTagOf?: (bucket: string, key: string) => Promise<string | undefined>;
}

export function guardRequests(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  options: GuardOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const [rawPath = '/', query = ''] = (req.url ?? '/').split('?');
    const slash = rawPath.indexOf('/', 1);
    const keys: string[] = [];
    if (slash > 0 && slash < rawPath.length - 1) keys.push(rawPath.slice(slash + 1));
    const copySource = req.headers['x-amz-copy-source'];
    let copyFrom: { bucket: string; rawKey: string } | undefined;
    if (typeof copySource === 'string') {
      const from = copySource.replace(/^\//, '').split('?')[0] ?? '';
      const cut = from.indexOf('/');
      if (cut > 0) {
        keys.push(from.slice(cut + 1));
        copyFrom = { bucket: from.slice(0, cut), rawKey: from.slice(cut + 1) };
      }
    }
    for (const raw of keys) {
      let key: string;
      try {
        key = decodeURIComponent(raw);
      } catch {
        return s3Error(res, 400, 'InvalidURI', "Couldn't parse the specified URI.");
      }
      const bytes = Buffer.byteLength(key);
      if (bytes > MAX_KEY_BYTES)
        return s3Error(
          res,
          400,
          'KeyTooLongError',
          'Your key is too long',
          `<Size>${bytes}</Size><MaxSizeAllowed>${MAX_KEY_BYTES}</MaxSizeAllowed>`,
        );
    }
    const uploadId = new URLSearchParams(query).get('uploadId');
    if (uploadId !== null && !/^[0-9a-f]{32}$/.test(uploadId))
      return s3Error(
        res,
        404,
        'NoSuchUpload',
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      );
    // s3rver's router matches `/:bucket/:key+` on the raw path, where an empty segment
    // (`a//b`, a leading `/`) matches nothing: hand it the key as one escaped segment,
    // which the router decodes back to the same key.
    if (slash > 0 && /^\/|\/\//.test(rawPath.slice(slash + 1)))
      req.url = `${rawPath.slice(0, slash + 1)}${rawPath.slice(slash + 1).replace(/\//g, '%2F')}${query ? `?${query}` : ''}`;
    if (!copyFrom) return handler(req, res);
    const { bucket, rawKey } = copyFrom;
    const key = decodeURIComponent(rawKey);
    // s3rver reads the copy source with decodeURI, which leaves `%2B`, `%2F`, `%3F`… as
    // they are: hand it a form decodeURI turns back into exactly this key.
    req.headers['x-amz-copy-source'] = `/${bucket}/${encodeURI(key)}`;
    const ifMatch = req.headers['x-amz-copy-source-if-match'];
    if (typeof ifMatch !== 'string' || !options.eTagOf) return handler(req, res);
    // S3 copies only when the source's ETag is the one named; s3rver ignores the header.
    // Not atomic with the copy (a fake's gap of a few ms, not S3's behaviour).
    options.eTagOf(bucket, key).then(
      (eTag) => {
        const want = ifMatch.split(',').map((t) => t.trim().replace(/^"|"$/g, ''));
        if (eTag !== undefined && !want.includes('*') && !want.includes(eTag.replace(/^"|"$/g, '')))
          return s3Error(
            res,
            412,
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
          );
        handler(req, res);
      },
      () => handler(req, res),
    );
  };
}
