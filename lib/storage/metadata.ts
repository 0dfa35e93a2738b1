/**
 * S3 user metadata travels as HTTP headers: printable ASCII only, and surrounding
 * whitespace is lost. The upload route writes anything else as one RFC 2047 encoded
 * word `=?UTF-8?B?<base64 of UTF-8>?=` (headerSafe); the object-created function reads
 * those and the words SDKs and S3 itself write (decodeMetadataValue).
 */

const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

export function headerSafe(value: string): string {
  if (value === '' || (PLAIN.test(value) && !value.startsWith('=?'))) return value;
  return `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/**
 * Decodes RFC 2047 encoded-words (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`): S3 user metadata is
 * ASCII, so SDKs and S3 itself carry non-ASCII values this way. Plain values pass through.
 */
export function decodeMetadataValue(value: string): string {
  const word = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  // Whitespace between two adjacent encoded-words is not part of the text (RFC 2047 §6.2).
  const joined = value.replace(/(\?=)\s+(?==\?)/g, '$1');
  return joined.replace(word, (whole, charset: string, encoding: string, text: string) => {
    const bytes =
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
            'latin1',
          );
    try {
      return new TextDecoder(charset.replace(/\*.*$/, '').toLowerCase(), { fatal: true }).decode(bytes);
    } catch {
      return whole; // unknown charset or invalid bytes: keep the value as sent, never guess
    }
  });
}
