/**
 * The callback secret must be compared in constant time (docs/contract.md, "Results by
 * callback"). Timing cannot be asserted reliably in a test, so this checks the structure
 * that gives it: every accepted secret goes through crypto.timingSafeEqual, on
 * fixed-length digests, whatever the candidate's length — so `===`, `Buffer.equals`, or
 * an early exit on a length mismatch or a first match all fail here.
 */
import * as crypto from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const { secretMatches } = await import('../../lib/callback/auth');
const spy = vi.mocked(crypto.timingSafeEqual);

describe('secretMatches compares in constant time', () => {
  const accepted = ['s3cret-current-0123456789', 'old-previous-secret'];
  beforeEach(() => {
    spy.mockClear();
  });

  it.each([
    ['the current secret', 's3cret-current-0123456789', true],
    ['the previous secret', 'old-previous-secret', true],
    ['a one-character-shorter candidate', 's3cret-current-012345678', false],
    ['a much longer candidate', 'x'.repeat(4096), false],
    ['an empty candidate', '', false],
    ['no candidate', undefined, false],
  ])('%s: timingSafeEqual once per accepted secret, on equal-length digests', (_what, candidate, expected) => {
    expect(secretMatches(candidate, accepted)).toBe(expected);
    expect(spy).toHaveBeenCalledTimes(accepted.length);
    for (const [a, b] of spy.mock.calls) {
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
  });
});
