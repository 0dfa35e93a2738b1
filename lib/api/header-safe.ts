/**
 * S3 user metadata travels as HTTP headers: printable ASCII only, and surrounding
 * whitespace is lost. Anything else is sent as one RFC 2047 encoded word
 * `=?UTF-8?B?<base64 of UTF-8>?=`, which the object-created function decodes.
 */

const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

export function headerSafe(value: string): string {
  if (value === '' || (PLAIN.test(value) && !value.startsWith('=?'))) return value;
  return `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The inverse of headerSafe (also accepts `Q` words and lower-case charset names). */
export function decodeHeaderSafe(value: string): string {
  const match = /^=\?utf-8\?([bq])\?([^?]*)\?=$/i.exec(value.trim());
  if (!match) return value;
  const [, encoding, text] = match;
  if (encoding!.toLowerCase() === 'b') return Buffer.from(text!, 'base64').toString('utf8');
  const bytes = text!.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}
