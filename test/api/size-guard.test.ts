import { describe, expect, it } from 'vitest';
import { checkDirectBodySize, directMaxBytesFromEnv, parseContentLength } from '../../lib/api/size-guard';
import { DEFAULTS, ENV } from '../../lib/config';

const MAX = 4_500_000;

describe('checkDirectBodySize', () => {
  it('allows a body up to and including the limit', () => {
    expect(checkDirectBodySize({ 'content-length': '1234' }, MAX)).toEqual({
      kind: 'allow',
      contentLength: 1234,
      maxBytes: MAX,
    });
    expect(checkDirectBodySize({ 'content-length': String(MAX) }, MAX)).toEqual({
      kind: 'allow',
      contentLength: MAX,
      maxBytes: MAX,
    });
    expect(checkDirectBodySize({ 'content-length': '0' }, MAX).kind).toBe('allow');
  });

  it('denies one byte over the limit, and bodies API Gateway itself would still pass (up to 10 MB)', () => {
    expect(checkDirectBodySize({ 'content-length': String(MAX + 1) }, MAX)).toEqual({
      kind: 'deny-too-large',
      contentLength: MAX + 1,
      maxBytes: MAX,
    });
    expect(checkDirectBodySize({ 'content-length': String(10 * 1024 * 1024) }, MAX).kind).toBe('deny-too-large');
  });

  it('judges the raw body: 4.5 MB raw is allowed although its base64 form is 6 MB', () => {
    expect(checkDirectBodySize({ 'content-length': '4500000' }, DEFAULTS.directMaxBytes).kind).toBe('allow');
    expect(checkDirectBodySize({ 'content-length': '4500001' }, DEFAULTS.directMaxBytes).kind).toBe('deny-too-large');
  });

  it('finds Content-Length whatever its case', () => {
    for (const name of ['Content-Length', 'content-length', 'CONTENT-LENGTH', 'cOnTeNt-LeNgTh']) {
      expect(checkDirectBodySize({ 'x-api-key': 'k', [name]: String(MAX + 10) }, MAX).kind, name).toBe(
        'deny-too-large',
      );
    }
  });

  it('lets a request without Content-Length through (chunked: the function measures the decoded body)', () => {
    expect(checkDirectBodySize({ 'transfer-encoding': 'chunked' }, MAX)).toEqual({
      kind: 'allow-unknown',
      reason: 'missing',
      maxBytes: MAX,
    });
    expect(checkDirectBodySize({}, MAX).kind).toBe('allow-unknown');
    expect(checkDirectBodySize(null, MAX).kind).toBe('allow-unknown');
    expect(checkDirectBodySize(undefined, MAX).kind).toBe('allow-unknown');
    expect(checkDirectBodySize({ 'content-length': undefined }, MAX).kind).toBe('allow-unknown');
    expect(checkDirectBodySize({ 'content-length': '  ' }, MAX)).toEqual({
      kind: 'allow-unknown',
      reason: 'missing',
      maxBytes: MAX,
    });
  });

  it('treats a malformed value as unknown rather than answering a misleading 413', () => {
    for (const raw of ['abc', '-1', '1.5', '1e9', '0x10', '12 34', '5000000, 1']) {
      expect(checkDirectBodySize({ 'content-length': raw }, MAX), raw).toEqual({
        kind: 'allow-unknown',
        reason: 'malformed',
        maxBytes: MAX,
      });
    }
  });

  it('reads a header repeated with the same value as one value', () => {
    expect(checkDirectBodySize({ 'content-length': `${MAX + 5}, ${MAX + 5}` }, MAX).kind).toBe('deny-too-large');
    expect(checkDirectBodySize({ 'content-length': ' 42 ' }, MAX)).toEqual({
      kind: 'allow',
      contentLength: 42,
      maxBytes: MAX,
    });
  });

  it('denies absurdly long lengths instead of overflowing into a pass', () => {
    expect(checkDirectBodySize({ 'content-length': '9'.repeat(40) }, MAX).kind).toBe('deny-too-large');
  });

  it('honours another limit', () => {
    expect(checkDirectBodySize({ 'content-length': '101' }, 100).kind).toBe('deny-too-large');
    expect(checkDirectBodySize({ 'content-length': '100' }, 100).kind).toBe('allow');
  });
});

describe('parseContentLength', () => {
  it('parses digits only', () => {
    expect(parseContentLength('0')).toBe(0);
    expect(parseContentLength('007')).toBe(7);
    expect(parseContentLength('')).toBeUndefined();
    expect(parseContentLength('+5')).toBeUndefined();
    expect(parseContentLength('5,6')).toBeUndefined();
  });
});

describe('directMaxBytesFromEnv', () => {
  it('uses DIRECT_MAX_BYTES, defaulting to the 4.5 MB direct-submit default', () => {
    expect(directMaxBytesFromEnv({})).toBe(DEFAULTS.directMaxBytes);
    expect(DEFAULTS.directMaxBytes).toBe(4_500_000);
    expect(directMaxBytesFromEnv({ [ENV.directMaxBytes]: '1000' })).toBe(1000);
    expect(() => directMaxBytesFromEnv({ [ENV.directMaxBytes]: 'lots' })).toThrow(/DIRECT_MAX_BYTES/);
  });
});
