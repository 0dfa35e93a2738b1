/** The adaptive pacer on a virtual clock: unpaced until a throttle, then near the accepted rate. */
import { describe, expect, it } from 'vitest';
import { virtualClock } from '../support/clock';
import { createPacer } from '../../lib/s3-intake/pacer';

const clock = virtualClock;

describe('createPacer', () => {
  it('does not pace before the first throttle', async () => {
    const c = clock();
    const pacer = createPacer({ now: c.now, sleep: c.sleep });
    const start = c.now();
    for (let i = 0; i < 100; i++) expect(await pacer.acquire(0)).toBe(true);
    expect(c.now()).toBe(start);
    expect(pacer.rate).toBeUndefined();
  });

  it('after a throttle, paces just under the rate IVA was accepting, and refuses slots beyond the wait asked', async () => {
    const c = clock();
    const pacer = createPacer({ now: c.now, sleep: c.sleep });
    // IVA accepted 20 calls in the last second, then throttled.
    for (let i = 0; i < 20; i++) {
      pacer.onSuccess();
      c.advance(50);
    }
    pacer.onThrottle();
    expect(pacer.rate).toBeCloseTo(20 * 0.85, 0);
    // Repeated throttles of calls already in flight do not cut again.
    pacer.onThrottle();
    pacer.onThrottle();
    expect(pacer.rate).toBeCloseTo(20 * 0.85, 0);
    const start = c.now();
    for (let i = 0; i < 17; i++) expect(await pacer.acquire(10_000)).toBe(true);
    const elapsed = c.now() - start;
    expect(elapsed).toBeGreaterThan(900);
    expect(elapsed).toBeLessThan(1_100);
    // A slot further away than the caller can wait: refused without being taken.
    const before = pacer.waitMs();
    expect(await pacer.acquire(before - 1)).toBe(false);
    expect(pacer.waitMs()).toBe(before);
  });

  it('probes upwards slowly on success (about 0.25% a call) and never below the floor', () => {
    const c = clock();
    const pacer = createPacer({ now: c.now, sleep: c.sleep, minRate: 0.5 });
    pacer.onThrottle(); // no history: the floor
    expect(pacer.rate).toBe(0.5);
    c.advance(2_000);
    for (let i = 0; i < 100; i++) pacer.onSuccess();
    expect(pacer.rate!).toBeGreaterThan(0.5 * 1.2);
    expect(pacer.rate!).toBeLessThan(0.5 * 1.35);
  });
});

describe('createPacer with a known limit (maxRate)', () => {
  it('is paced from the first call at that rate, and successes never take it above', async () => {
    const c = clock();
    const pacer = createPacer({ now: c.now, sleep: c.sleep, maxRate: 5 });
    expect(pacer.rate).toBe(5);
    const start = c.now();
    for (let i = 0; i < 11; i++) {
      expect(await pacer.acquire(10_000)).toBe(true);
      pacer.onSuccess();
    }
    // 11 slots at 5/s: the first at once, the last 2 s later.
    expect(c.now() - start).toBe(2_000);
    expect(pacer.rate).toBe(5);
  });

  it('still lowers the rate at a throttle and climbs back to the ceiling, not past it', () => {
    const c = clock();
    const pacer = createPacer({ now: c.now, sleep: c.sleep, maxRate: 10 });
    for (let i = 0; i < 8; i++) {
      pacer.onSuccess();
      c.advance(125);
    }
    pacer.onThrottle();
    expect(pacer.rate).toBeLessThan(10);
    for (let i = 0; i < 1_000; i++) pacer.onSuccess();
    expect(pacer.rate).toBe(10);
  });
});
