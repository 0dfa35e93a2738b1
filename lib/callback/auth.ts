/**
 * The callback route's only credential is the secret path segment. Both sides are hashed
 * to SHA-256 before `timingSafeEqual`, so the comparison takes the same time whatever
 * the lengths, and every accepted secret (current and, while rotating, previous) is
 * compared without stopping at the first match.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export function secretMatches(candidate: string | undefined | null, accepted: readonly string[]): boolean {
  const given = digest(candidate ?? '');
  let match = false;
  for (const secret of accepted) {
    if (!secret) continue;
    // The comparison runs first on every secret: a match does not skip the others.
    match = timingSafeEqual(given, digest(secret)) || match;
  }
  return match && typeof candidate === 'string' && candidate.length > 0;
}

/** The path as it may appear in logs: the secret segment replaced. */
export const REDACTED_CALLBACK_PATH = '/callbacks/{secret}';

export function redactPath(path: string | undefined | null): string {
  if (!path) return REDACTED_CALLBACK_PATH;
  return path.replace(/\/callbacks\/[^/?#]*/, '/callbacks/***');
}
