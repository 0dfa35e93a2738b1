/** The sweep's settings and their defaults (no SDK imports: infra/stack.ts reads them). */

export interface SweepSettings {
  /**
   * A submission with no final callback this long after IVA accepted it is `overdue`.
   * @default 24 h: IVA analyses videos asynchronously, and a long video can take hours;
   * an alarm a day late is better than one that cries wolf on every long video.
   */
  overdueAfterMs: number;
  /**
   * A reserved upload never used this long after its URL was issued is `expired`.
   * @default 2 h: the upload URL's default lifetime (UPLOAD_URL_TTL_SECONDS, 1 h) plus
   * 1 h for a large upload that started just before the URL expired.
   */
  expireUploadsAfterMs: number;
  /**
   * A direct submission still `pending` this long after it began is `uncertain`
   * (`InvocationLost`): the function handling it stopped before recording IVA's answer.
   * @default 10 min: far beyond the longest direct invocation (29 s, API Gateway's limit).
   */
  abandonedAfterMs: number;
}

export const DEFAULT_SWEEP: SweepSettings = {
  overdueAfterMs: 24 * 60 * 60 * 1000,
  expireUploadsAfterMs: 2 * 60 * 60 * 1000,
  abandonedAfterMs: 10 * 60 * 1000,
};

/** The environment variables the sweep function reads (seconds). */
export const SWEEP_ENV = {
  overdueAfterSeconds: 'SWEEP_OVERDUE_AFTER_SECONDS',
  expireUploadsAfterSeconds: 'SWEEP_EXPIRE_UPLOADS_AFTER_SECONDS',
  abandonedAfterSeconds: 'SWEEP_ABANDONED_AFTER_SECONDS',
} as const;

export function sweepSettingsFromEnv(env: Record<string, string | undefined>): SweepSettings {
  const seconds = (name: string, fallbackMs: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallbackMs;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of seconds`);
    return value * 1000;
  };
  return {
    overdueAfterMs: seconds(SWEEP_ENV.overdueAfterSeconds, DEFAULT_SWEEP.overdueAfterMs),
    expireUploadsAfterMs: seconds(SWEEP_ENV.expireUploadsAfterSeconds, DEFAULT_SWEEP.expireUploadsAfterMs),
    abandonedAfterMs: seconds(SWEEP_ENV.abandonedAfterSeconds, DEFAULT_SWEEP.abandonedAfterMs),
  };
}
