/**
 * Paces the S3 path's calls to IVA at the rate IVA accepts, learnt from its throttles
 * (`FlowLimitExceeded`, HTTP 429): the client-side rate limiter of the AWS SDK's
 * "adaptive" retry mode, made small. Until IVA first throttles, calls are not paced.
 * At a throttle the rate drops to `decrease` × the rate IVA was accepting over the last
 * second (or the current rate, whichever is lower); each success then raises it by
 * `increase` of itself, so it probes upwards slowly and meets IVA's limit again only
 * every hundred or so calls. One pacer per container: containers learn independently.
 *
 * With a known limit (`maxRate`: the account's flow limit divided among the containers
 * that may run at once, IVA_RATE_LIMIT) the pacer starts paced at that rate and never
 * goes above it, so a backlog drains at IVA's pace without spending 429s to find it; a
 * throttle still lowers it (the account's limit is shared with other callers), and
 * successes bring it back up to the ceiling.
 *
 * Why here and not in lib/iva: the direct API answers its caller within 29 s and has no
 * queue to hold work back in; the S3 path has SQS, so waiting for a slot (or handing the
 * message back) costs nothing, while a 429 costs a call.
 */

export interface PacerOptions {
  /** Lowest rate the pacer falls to, calls per second (default 0.2). */
  minRate?: number;
  /** Rate after a throttle, as a fraction of the measured accepted rate (default 0.85). */
  decrease?: number;
  /** Growth of the rate per successful call, as a fraction of it (default 0.0025). */
  increase?: number;
  /** Known ceiling, calls per second: start paced at it and never exceed it (default: none, learnt). */
  maxRate?: number;
  /** Throttles within this long of a decrease count as one (default 1 s): calls already in flight. */
  holdMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface Pacer {
  /**
   * Waits for the next send slot. Resolves false, at once and without taking a slot, when
   * that slot is more than `maxWaitMs` away: the caller hands the work back instead.
   */
  acquire(maxWaitMs: number): Promise<boolean>;
  /** How long until the next free slot (0 when unpaced). */
  waitMs(): number;
  onSuccess(): void;
  onThrottle(): void;
  /** Calls per second, or undefined while unpaced. */
  readonly rate: number | undefined;
}

const WINDOW_MS = 1_000;

export function createPacer(options: PacerOptions = {}): Pacer {
  const minRate = options.minRate ?? 0.2;
  const decrease = options.decrease ?? 0.85;
  const increase = options.increase ?? 0.0025;
  const holdMs = options.holdMs ?? 1_000;
  const maxRate = options.maxRate !== undefined && options.maxRate > 0 ? Math.max(minRate, options.maxRate) : undefined;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  let rate: number | undefined = maxRate;
  let nextAt = 0;
  let decreasedAt = Number.NEGATIVE_INFINITY;
  let firstSuccessAt: number | undefined;
  let firstSendAt: number | undefined;
  const successes: number[] = [];
  const sends: number[] = [];

  const trim = (list: number[], at: number) => {
    for (let first = list[0]; first !== undefined && first < at - WINDOW_MS; first = list[0]) list.shift();
  };
  /** Events per second over the last window, or over the part of it there is history for. */
  const perSecond = (list: number[], since: number | undefined, at: number) => {
    trim(list, at);
    const span = Math.min(WINDOW_MS, Math.max(100, at - (since ?? at)));
    return (list.length * 1000) / span;
  };

  return {
    get rate() {
      return rate;
    },
    waitMs() {
      return rate === undefined ? 0 : Math.max(0, nextAt - now());
    },
    async acquire(maxWaitMs) {
      const at = now();
      firstSendAt ??= at;
      if (rate === undefined) {
        sends.push(at);
        trim(sends, at);
        return true;
      }
      const slot = Math.max(at, nextAt);
      if (slot - at > maxWaitMs) return false;
      nextAt = slot + 1000 / rate;
      sends.push(slot);
      if (slot > at) await sleep(slot - at);
      return true;
    },
    onSuccess() {
      const at = now();
      firstSuccessAt ??= at;
      successes.push(at);
      trim(successes, at);
      if (rate !== undefined) rate = Math.min(maxRate ?? Number.POSITIVE_INFINITY, rate * (1 + increase));
    },
    onThrottle() {
      const at = now();
      if (at - decreasedAt < holdMs) return;
      decreasedAt = at;
      // The rate IVA accepted lately; when the throttles came before any answer (a burst of
      // concurrent first calls), half the rate they were sent at.
      const accepted = perSecond(successes, firstSuccessAt, at);
      const estimate = accepted > 0 ? accepted : perSecond(sends, firstSendAt, at) / 2;
      const base = rate === undefined ? estimate : Math.min(rate, estimate > 0 ? estimate : rate);
      rate = Math.max(minRate, base * decrease);
      // The next slot counts from now at the new rate: what was booked at the old one is void.
      nextAt = at + 1000 / rate;
    },
  };
}

const THROTTLE_CODES: ReadonlySet<string> = new Set(['FlowLimitExceeded', 'AccountFlowLimitExceeded']);

/** IVA's flow limit (docs/iva-api.md): its throttling codes, or a bare 429. */
export function isThrottle(error: { code: string; httpStatus?: number }): boolean {
  return THROTTLE_CODES.has(error.code) || error.httpStatus === 429;
}
