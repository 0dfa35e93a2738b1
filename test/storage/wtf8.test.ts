import { describe, expect, it } from 'vitest';
import { decodeKeySegment, encodeKeySegment, isWellFormed, toWellFormed } from '../../lib/storage/wtf8';

describe('percent-encoded WTF-8 key segments', () => {
  it.each([
    ['img-\ud800', 'img-%ED%A0%80'],
    ['\udc00', '%ED%B0%80'],
    ['\ud83d\ude00', '%F0%9F%98%80'],
    ['a b/ü%', 'a%20b%2F%C3%BC%25'],
    ['\u0000\u001f\u007f', '%00%1F%7F'],
    ['safe-Name_1.x', 'safe-Name_1.x'],
  ])('%j ↔ %s', (id, encoded) => {
    expect(encodeKeySegment(id)).toBe(encoded);
    expect(decodeKeySegment(encoded)).toBe(id);
  });

  it('is injective: ids differing only in a lone surrogate or in escaping stay distinct', () => {
    const ids = ['a\ud800', 'a\ud801', 'a\udc00', 'a\ufffd', 'a%ED%A0%80', 'a', 'a\ud800\ud800'];
    expect(new Set(ids.map(encodeKeySegment)).size).toBe(ids.length);
  });

  it('refuses text it cannot have produced', () => {
    expect(decodeKeySegment('%ZZ')).toBeUndefined();
    expect(decodeKeySegment('%C3')).toBeUndefined();
    expect(decodeKeySegment('ü')).toBeUndefined();
  });

  it('tells well-formed text from lone surrogates', () => {
    expect(isWellFormed('a\ud83d\ude00')).toBe(true);
    expect(isWellFormed('a\ud800')).toBe(false);
    expect(isWellFormed('\udc00a')).toBe(false);
    expect(toWellFormed('x\ud800y\ud83d\ude00')).toBe('x\ufffdy\ud83d\ude00');
  });
});
