import { describe, expect, it } from 'vitest';
import { EmptyBodyError, PayloadTooLargeError } from '../../lib/callback/errors';
import { bodyBytes, parseBody } from '../../lib/callback/parse';

describe('bodyBytes', () => {
  it('decodes base64 bodies to the exact bytes', () => {
    const raw = Buffer.from([0x7b, 0x7d, 0xff, 0x00]);
    expect(bodyBytes({ body: raw.toString('base64'), isBase64Encoded: true }).equals(raw)).toBe(true);
  });

  it('keeps text bodies as UTF-8', () => {
    expect(bodyBytes({ body: '{"名":"值"}' }).toString('utf8')).toBe('{"名":"值"}');
  });

  it.each([null, undefined, '', '   \n'])('refuses an empty body (%j)', (body) => {
    expect(() => bodyBytes({ body })).toThrow(EmptyBodyError);
  });

  it('refuses a body over the limit', () => {
    expect(() => bodyBytes({ body: 'x'.repeat(11) }, 10)).toThrow(PayloadTooLargeError);
  });
});

describe('parseBody', () => {
  it('parses declared JSON (with charset and a BOM)', () => {
    const parsed = parseBody(Buffer.from('\uFEFF{"a":1}'), 'application/json; charset=utf-8');
    expect(parsed).toEqual({ format: 'json', value: { a: 1 }, malformed: false, extension: 'json' });
  });

  it('flags declared JSON that does not parse', () => {
    expect(parseBody(Buffer.from('{"a":'), 'application/json')).toMatchObject({ malformed: true, extension: 'txt' });
  });

  it('sniffs JSON without a content type or with text/plain', () => {
    expect(parseBody(Buffer.from('{"ImageID":"i"}'), undefined)).toMatchObject({
      format: 'json',
      value: { ImageID: 'i' },
    });
    expect(parseBody(Buffer.from('{"ImageID":"i"}'), 'text/plain')).toMatchObject({ format: 'json' });
  });

  it('sniffs a form body without a content type', () => {
    expect(parseBody(Buffer.from('TaskID=t&ImageID=i'), undefined)).toMatchObject({
      format: 'form',
      value: { TaskID: 't', ImageID: 'i' },
    });
  });

  it('keeps anything else as text, never refusing it', () => {
    expect(parseBody(Buffer.from('hello there'), 'application/octet-stream')).toEqual({
      format: 'text',
      value: undefined,
      malformed: false,
      extension: 'txt',
    });
    expect(parseBody(Buffer.from('{not json'), undefined)).toMatchObject({ format: 'text', malformed: false });
  });

  it('decodes form fields (+ as space, first occurrence wins, JSON fields parsed)', () => {
    const parsed = parseBody(
      Buffer.from('Name=a+b&Name=second&data=%7B%22x%22%3A1%7D&bad=%7Bno'),
      'application/x-www-form-urlencoded',
    );
    expect(parsed.value).toEqual({ Name: 'a b', data: { x: 1 }, bad: '{no' });
  });
});
