import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkBoundary, MultipartError, parseMultipart } from '../../lib/multipart-parser/index';

async function encode(parts: Array<[string, string] | [string, Uint8Array, string]>) {
  const form = new FormData();
  for (const p of parts) {
    if (typeof p[1] === 'string') form.append(p[0], p[1]);
    else form.append(p[0], new Blob([p[1]]), p[2]);
  }
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type')! };
}

describe('parseMultipart: zero-copy file parts', () => {
  for (const size of [1, 4096, 65_537, 3_000_000]) {
    it(`a ${size}-byte file comes back as views of the decoded body, never copied`, async () => {
      const file = Buffer.concat([Buffer.from('\r\n--\r\n-- not a boundary'), randomBytes(size)]);
      const { body, contentType } = await encode([
        ['ImageFile', file, 'a.bin'],
        ['Request', '{"TaskID":"t"}'],
      ]);
      // As the function holds it: decoded once from the event's base64.
      const decoded = Buffer.from(body.toString('base64'), 'base64');
      const form = await parseMultipart(decoded, contentType);
      expect(form.fields).toEqual([{ name: 'Request', value: '{"TaskID":"t"}', truncated: false }]);
      expect(form.files).toHaveLength(1);
      const part = form.files[0]!;
      expect(part).toMatchObject({ field: 'ImageFile', filename: 'a.bin', size: file.length });
      for (const chunk of part.chunks) {
        expect(chunk.buffer).toBe(decoded.buffer);
        expect(chunk.byteOffset).toBeGreaterThanOrEqual(decoded.byteOffset);
        expect(chunk.byteOffset + chunk.length).toBeLessThanOrEqual(decoded.byteOffset + decoded.length);
      }
      expect(Buffer.compare(Buffer.concat(part.chunks), file)).toBe(0);
    });
  }
});

describe('parseMultipart: every bad body is a MultipartError with a stable code', () => {
  it('truncation anywhere → TruncatedMultipart (or a part header error)', async () => {
    const { body, contentType } = await encode([
      ['ImageFile', randomBytes(500), 'a.bin'],
      ['Request', '{}'],
    ]);
    for (let cut = 0; cut < body.length - 2; cut += 7) {
      const error = await parseMultipart(body.subarray(0, cut), contentType).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `cut at ${cut}`).toBeInstanceOf(MultipartError);
      expect(['TruncatedMultipart', 'MalformedPartHeader']).toContain((error as MultipartError).code);
    }
  });

  it('boundary checks', () => {
    expect(() => checkBoundary('multipart/form-data')).toThrow(expect.objectContaining({ code: 'MissingBoundary' }));
    expect(() => checkBoundary('multipart/form-data; boundary=')).toThrow(
      expect.objectContaining({ code: 'MissingBoundary' }),
    );
    expect(() => checkBoundary(`multipart/form-data; boundary=${'a'.repeat(71)}`)).toThrow(
      expect.objectContaining({ code: 'InvalidBoundary' }),
    );
    expect(() => checkBoundary('multipart/form-data; boundary="a\u0001b"')).toThrow(
      expect.objectContaining({ code: 'InvalidBoundary' }),
    );
    expect(checkBoundary('multipart/form-data; boundary="with space"')).toBe('with space');
    expect(checkBoundary('Multipart/Form-Data;Boundary=abc; charset=utf-8')).toBe('abc');
  });

  it('too many parts → TooManyParts', async () => {
    const { body, contentType } = await encode(
      Array.from({ length: 20 }, (_, i) => [`f${i}`, 'x'] as [string, string]),
    );
    await expect(parseMultipart(body, contentType)).rejects.toMatchObject({ code: 'TooManyParts' });
  });

  it('random garbage never escapes as anything but MultipartError or a parsed form', async () => {
    for (let i = 0; i < 200; i++) {
      const outcome = await parseMultipart(randomBytes(i * 3), 'multipart/form-data; boundary=xyz').then(
        () => 'parsed',
        (e: unknown) => (e instanceof MultipartError ? 'error' : e),
      );
      expect(['parsed', 'error']).toContain(outcome);
    }
  });
});
