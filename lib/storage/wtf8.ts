/**
 * Ids from untrusted bodies as storage keys: safe, reversible, and never throwing.
 *
 * A JSON string can hold a lone UTF-16 surrogate (`"img-\ud800"` is valid JSON), which
 * has no UTF-8 form: `encodeURIComponent` throws on it, and DynamoDB and S3 want UTF-8.
 * Such text is encoded as WTF-8 (the "generalized UTF-8" of the WHATWG/Rust `OsString`
 * world): every code point, lone surrogates included, as its 1–4 byte UTF-8 pattern.
 * For well-formed text WTF-8 is exactly UTF-8; a lone surrogate becomes `ED A0..BF xx`,
 * a sequence no valid UTF-8 contains, so decoding is unambiguous.
 *
 * `encodeKeySegment` percent-encodes those bytes outside `[A-Za-z0-9._-]` (so `%` itself
 * is `%25`, and control characters, `/`, spaces are all escaped); `decodeKeySegment`
 * reverses it exactly, lone surrogates included.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** `String.prototype.isWellFormed` (ES2024), which this project's TypeScript lib does not declare. */
export function isWellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/** Lone surrogates replaced by U+FFFD: for display fields only (lossy; never for keys). */
export function toWellFormed(value: string): string {
  return value.replace(LONE_SURROGATES, '\uFFFD');
}

/** The WTF-8 bytes of one code point (a lone surrogate is encoded like any BMP code point). */
function wtf8(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

const hex = (byte: number) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;

/** Percent-encoded WTF-8 of `value`; only `[A-Za-z0-9._-]` stay literal. Never throws. */
export function encodeKeySegment(value: string): string {
  let out = '';
  // for…of walks code points; a lone surrogate comes out as a one-unit string.
  for (const ch of value) {
    if (/^[A-Za-z0-9._-]$/.test(ch)) out += ch;
    else
      out += wtf8(ch.codePointAt(0) as number)
        .map(hex)
        .join('');
  }
  return out;
}

/** The exact string `encodeKeySegment` was given; undefined for text it cannot have produced. */
export function decodeKeySegment(segment: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; ) {
    const ch = segment[i] as string;
    if (ch === '%') {
      const byte = Number.parseInt(segment.slice(i + 1, i + 3), 16);
      if (!/^[0-9A-Fa-f]{2}$/.test(segment.slice(i + 1, i + 3))) return undefined;
      bytes.push(byte);
      i += 3;
    } else {
      const code = ch.charCodeAt(0);
      if (code >= 0x80) return undefined;
      bytes.push(code);
      i += 1;
    }
  }
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b0 = bytes[i] as number;
    const need = b0 < 0x80 ? 0 : b0 >= 0xf8 ? -1 : b0 >= 0xf0 ? 3 : b0 >= 0xe0 ? 2 : b0 >= 0xc0 ? 1 : -1;
    if (need < 0) return undefined;
    let cp = need === 0 ? b0 : b0 & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const b = bytes[i + k];
      if (b === undefined || (b & 0xc0) !== 0x80) return undefined;
      cp = (cp << 6) | (b & 0x3f);
    }
    out += String.fromCodePoint(cp);
    i += need + 1;
  }
  return out;
}
