import { describe, expect, it } from 'vitest';
import { decodeHeaderSafe, headerSafe } from '../../lib/api/header-safe';
import { ApiError } from '../../lib/api/errors';
import { sanitizeSegment, uploadKey } from '../../lib/api/uploads';
import { validateDirect } from '../../lib/api/validate';
import { mapIvaError } from '../../lib/api/upstream';
import { IvaBudgetExceededError, IvaError, IvaNetworkError } from '../../lib/iva/errors';

describe('headerSafe: S3 metadata values', () => {
  it('keeps printable ASCII, encodes the rest as one RFC 2047 word, and round-trips', () => {
    expect(headerSafe('cat.jpg')).toBe('cat.jpg');
    expect(headerSafe('a b')).toBe('a b');
    for (const v of ['été.mp4', '猫 🐈', ' leading', 'trailing ', 'line\nbreak', '=?UTF-8?B?looks-encoded?=', 'tab\there']) {
      const encoded = headerSafe(v);
      expect(encoded).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]*\?=$/);
      expect(decodeHeaderSafe(encoded)).toBe(v);
    }
    expect(decodeHeaderSafe('=?utf-8?q?caf=C3=A9_au_lait?=')).toBe('café au lait');
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
      fields: [{ name: 'Request', value: JSON.stringify({ TaskID: 't', Image: { Name: 'a', Source: 'file' } }), truncated: false }],
      files: [{ field: 'ImageFile', filename: 'a', mimeType: 'image/jpeg', chunks: [], size: 50 * 1024 * 1024 + 1 }],
    };
    expect(() => validateDirect(form, 'image')).toThrow(expect.objectContaining({ code: 'ImageTooLarge', status: 413 }));
    form.files[0]!.field = 'VideoFile';
    form.fields[0]!.value = JSON.stringify({ TaskID: 't', Video: { Name: 'a', Source: 'file' } });
    expect(validateDirect(form, 'video').source).toMatchObject({ type: 'file', size: 50 * 1024 * 1024 + 1 });
  });
});

describe('mapIvaError: who is at fault', () => {
  it('maps IVA outcomes to statuses and codes', () => {
    const cases: Array<[IvaError, number, string]> = [
      [new IvaError({ code: 'InvalidParameter', message: 'bad', requestId: 'r1', httpStatus: 400 }), 400, 'InvalidParameter'],
      [new IvaError({ code: 'InvalidParameter', message: 'bad', requestId: 'r1', httpStatus: 200 }), 400, 'InvalidParameter'],
      [new IvaError({ code: 'SignatureDoesNotMatch', message: 'x', requestId: 'r2', httpStatus: 401 }), 502, 'UpstreamCredentialsRejected'],
      [new IvaError({ code: 'AccessDenied', message: 'x', httpStatus: 403 }), 502, 'UpstreamCredentialsRejected'],
      [new IvaBudgetExceededError(new IvaError({ code: 'FlowLimitExceeded', message: 'slow down', requestId: 'r3', httpStatus: 429 }), 4), 503, 'FlowLimitExceeded'],
      [new IvaNetworkError('ECONNRESET'), 503, 'UpstreamUnavailable'],
      [new IvaError({ code: 'SomethingPermanent', message: 'x', requestId: 'r4', httpStatus: 500, retryable: false }), 502, 'SomethingPermanent'],
    ];
    for (const [error, status, code] of cases) {
      const out = mapIvaError(error);
      expect(out.error).toBeInstanceOf(ApiError);
      expect([out.error.status, out.error.code], error.code).toEqual([status, code]);
      if (error.requestId) expect(out.error.requestId).toBe(error.requestId);
    }
    const throttled = mapIvaError(new IvaBudgetExceededError(new IvaError({ code: 'FlowLimitExceeded', message: 'slow down', requestId: 'r3', httpStatus: 429 }), 4));
    expect(throttled.error.retryAfterSeconds).toBeGreaterThan(0);
    expect(throttled.error.message).toBe('slow down (gave up after 4 attempts within the time budget); retry later');
  });
});
