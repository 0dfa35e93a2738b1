import { describe, expect, it } from 'vitest';
import { decodeMetadataValue, headerSafe } from '../../lib/storage/metadata';
import { ApiError } from '../../lib/api/errors';
import { sanitizeSegment, uploadKey } from '../../lib/api/uploads';
import { validateDirect } from '../../lib/api/validate';
import { createApi, type ApiRequest } from '../../lib/api/index';
import type { IvaClient } from '../../lib/iva/types';
import type { Ledger } from '../../lib/ledger/types';
import { createS3Client } from '../../lib/storage/s3-client';
import { S3Client } from '@aws-sdk/client-s3';
import { mapIvaError } from '../../lib/api/upstream';
import { IvaBudgetExceededError, IvaError, IvaNetworkError } from '../../lib/iva/errors';

describe('headerSafe: S3 metadata values', () => {
  it('keeps printable ASCII, encodes the rest as one RFC 2047 word, and round-trips', () => {
    expect(headerSafe('cat.jpg')).toBe('cat.jpg');
    expect(headerSafe('a b')).toBe('a b');
    for (const v of [
      'été.mp4',
      '猫 🐈',
      ' leading',
      'trailing ',
      'line\nbreak',
      '=?UTF-8?B?looks-encoded?=',
      'tab\there',
    ]) {
      const encoded = headerSafe(v);
      expect(encoded).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]*\?=$/);
      expect(decodeMetadataValue(encoded)).toBe(v);
    }
    expect(decodeMetadataValue('=?utf-8?q?caf=C3=A9_au_lait?=')).toBe('café au lait');
  });
});

describe('upload keys', () => {
  it('one segment per field: no separators, no dot segments, bounded', () => {
    expect(uploadKey('t/1', 'upl_x', '../../etc/passwd')).toBe('incoming/t_1/upl_x/.._.._etc_passwd');
    expect(sanitizeSegment('..')).toBe('__');
    expect(sanitizeSegment('')).toBe('file');
    expect(Buffer.byteLength(sanitizeSegment('é'.repeat(500)))).toBeLessThanOrEqual(200);
  });
});

describe('validateDirect limits that a 4.5 MB body cannot reach', () => {
  it('an image part over 50 MB → 413 ImageTooLarge (when DIRECT_MAX_BYTES is raised)', () => {
    const form = {
      fields: [
        {
          name: 'Request',
          value: JSON.stringify({ TaskID: 't', Image: { Name: 'a', Source: 'file' } }),
          truncated: false,
        },
      ],
      files: [{ field: 'ImageFile', filename: 'a', mimeType: 'image/jpeg', chunks: [], size: 50 * 1024 * 1024 + 1 }],
    };
    expect(() => validateDirect(form, 'image')).toThrow(
      expect.objectContaining({ code: 'ImageTooLarge', httpStatus: 413 }),
    );
    form.files[0]!.field = 'VideoFile';
    form.fields[0]!.value = JSON.stringify({ TaskID: 't', Video: { Name: 'a', Source: 'file' } });
    expect(validateDirect(form, 'video').source).toMatchObject({ type: 'file', size: 50 * 1024 * 1024 + 1 });
  });
});

describe('a Request for the other kind names the route it belongs to', () => {
  const form = (request: object) => ({
    fields: [{ name: 'Request', value: JSON.stringify(request), truncated: false }],
    files: [],
  });
  it('an Image on the video route points to POST /v1/images, a Video on the image route to POST /v1/videos', () => {
    expect(() => validateDirect(form({ TaskID: 't', Image: { Name: 'a', Source: 'url' } }), 'video')).toThrow(
      expect.objectContaining({
        code: 'MissingVideo',
        message: expect.stringContaining('images go to POST /v1/images'),
      }),
    );
    expect(() => validateDirect(form({ TaskID: 't', Video: { Name: 'a', Source: 'url' } }), 'image')).toThrow(
      expect.objectContaining({
        code: 'MissingImage',
        message: expect.stringContaining('videos go to POST /v1/videos'),
      }),
    );
  });
});

describe('JSON with a UTF-8 byte order mark (Windows editors, PowerShell)', () => {
  it('a Request field starting with a BOM is read, as a text field and as a file part', () => {
    const json = `\uFEFF${JSON.stringify({ TaskID: 't', Image: { Name: 'a', Source: 'url', Url: 'https://example.com/a.jpg' } })}`;
    expect(
      validateDirect({ fields: [{ name: 'Request', value: json, truncated: false }], files: [] }, 'image'),
    ).toMatchObject({ taskId: 't', name: 'a' });
    const bytes = Buffer.from(json, 'utf8');
    expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    const asFile = {
      fields: [],
      files: [
        { field: 'Request', filename: 'req.json', mimeType: 'application/json', chunks: [bytes], size: bytes.length },
      ],
    };
    expect(validateDirect(asFile, 'image').source).toEqual({ type: 'url', url: 'https://example.com/a.jpg' });
  });

  it('POST /v1/uploads with a BOM before the JSON body → 200 and a ticket, not 400 InvalidJson', async () => {
    const reserved: string[] = [];
    const ledger = { reserve: async (input: { id: string }) => void reserved.push(input.id) } as unknown as Ledger;
    const api = createApi({
      ledger,
      iva: {} as IvaClient,
      // Presigning is local: the endpoint is never called.
      s3: createS3Client({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKID', secretAccessKey: 'SECRET' },
      }),
      bucket: 'uploads',
      config: { directMaxBytes: 1024, uploadUrlTtlSeconds: 600, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    });
    const body = `\uFEFF${JSON.stringify({ TaskID: 't', Kind: 'video', Name: 'clip.mp4', Size: 10, ContentType: 'video/mp4' })}`;
    const request: ApiRequest = {
      method: 'POST',
      path: '/v1/uploads',
      headers: { 'content-type': 'application/json' },
      query: {},
      body: { text: Buffer.from(body, 'utf8').toString('base64'), base64: true },
      requestId: 'r1',
      remainingMs: () => 10_000,
    };
    const response = await api.handle(request);
    expect(response.status).toBe(200);
    const ticket = JSON.parse(response.body) as { SubmissionId: string; Key: string };
    expect(reserved).toEqual([ticket.SubmissionId]);
    expect(ticket.Key).toMatch(/^incoming\/t\/upl_[^/]+\/clip\.mp4$/);
  });
});

describe('POST /v1/uploads never leaves a reservation behind a failed answer', () => {
  it('signing credentials unavailable → 500 InternalError and nothing reserved (no submission pending for ever)', async () => {
    const reserved: string[] = [];
    const ledger = { reserve: async (input: { id: string }) => void reserved.push(input.id) } as unknown as Ledger;
    const s3 = new S3Client({
      region: 'us-east-1',
      credentials: async () => {
        throw new Error('credentials endpoint down');
      },
    });
    const api = createApi({
      ledger,
      iva: {} as IvaClient,
      s3,
      bucket: 'uploads',
      config: { directMaxBytes: 1024, uploadUrlTtlSeconds: 600, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    });
    const response = await api.handle({
      method: 'POST',
      path: '/v1/uploads',
      headers: { 'content-type': 'application/json' },
      query: {},
      body: { text: JSON.stringify({ TaskID: 't', Kind: 'image', Name: 'a.jpg', Size: 10 }), base64: false },
      requestId: 'r2',
      remainingMs: () => 10_000,
    });
    expect(response.status).toBe(500);
    expect(JSON.parse(response.body).ResponseMetadata.Error.Code).toBe('InternalError');
    expect(reserved).toEqual([]);
  });
});

describe('mapIvaError: who is at fault', () => {
  it('maps IVA outcomes to statuses and codes', () => {
    const cases: Array<[IvaError, number, string]> = [
      [
        new IvaError({ code: 'InvalidParameter', message: 'bad', requestId: 'r1', httpStatus: 400 }),
        400,
        'InvalidParameter',
      ],
      [
        new IvaError({ code: 'InvalidParameter', message: 'bad', requestId: 'r1', httpStatus: 200 }),
        400,
        'InvalidParameter',
      ],
      [
        new IvaError({ code: 'SignatureDoesNotMatch', message: 'x', requestId: 'r2', httpStatus: 401 }),
        502,
        'UpstreamCredentialsRejected',
      ],
      [new IvaError({ code: 'AccessDenied', message: 'x', httpStatus: 403 }), 502, 'UpstreamCredentialsRejected'],
      [
        new IvaBudgetExceededError(
          new IvaError({ code: 'FlowLimitExceeded', message: 'slow down', requestId: 'r3', httpStatus: 429 }),
          4,
        ),
        503,
        'FlowLimitExceeded',
      ],
      [new IvaNetworkError('ECONNRESET'), 503, 'UpstreamUnavailable'],
      [
        new IvaError({ code: 'SomethingPermanent', message: 'x', requestId: 'r4', httpStatus: 500, retryable: false }),
        502,
        'SomethingPermanent',
      ],
    ];
    for (const [error, status, code] of cases) {
      const out = mapIvaError(error);
      expect(out).toBeInstanceOf(ApiError);
      expect([out.httpStatus, out.code], error.code).toEqual([status, code]);
      if (error.requestId) expect(out.requestId).toBe(error.requestId);
    }
    const throttled = mapIvaError(
      new IvaBudgetExceededError(
        new IvaError({ code: 'FlowLimitExceeded', message: 'slow down', requestId: 'r3', httpStatus: 429 }),
        4,
      ),
    );
    expect(throttled.retryAfterSeconds).toBeGreaterThan(0);
    expect(throttled.message).toBe('slow down (gave up after 4 attempts within the time budget); retry later');
  });
});
