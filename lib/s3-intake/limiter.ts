/**
 * A tiny concurrency limiter: at most `limit` tasks run at once, the rest wait in
 * arrival order. Bounds IVA calls per container (IVA_CONCURRENCY).
 */
export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly limit: number;
  readonly active: number;
  readonly waiting: number;
}

export function createLimiter(limit: number): Limiter {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`The concurrency limit must be a positive integer, got ${limit}`);
  let active = 0;
  const queue: (() => void)[] = [];

  const release = () => {
    active--;
    const next = queue.shift();
    if (next) {
      active++;
      next();
    }
  };

  return {
    limit,
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active < limit) active++;
      // The slot is handed over by release(), so a late arrival cannot overtake the queue.
      else await new Promise<void>((resolve) => queue.push(resolve));
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
