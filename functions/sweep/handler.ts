/**
 * Scheduled (EventBridge rule, infra/stack.ts; a timer in `npm start`): notices missing
 * results and unused uploads. Wiring only; the logic is lib/sweep.
 */
import { DEFAULTS, ENV } from '../../lib/config';
import { logger } from '../../lib/observability';
import { ledgerFromEnv } from '../../lib/runtime';
import {
  createSweepPublisher,
  runSweep,
  type SweepDeps,
  type SweepReport,
  sweepSettingsFromEnv,
} from '../../lib/sweep/index';

export function depsFromEnv(env: Record<string, string | undefined> = process.env): SweepDeps {
  return {
    ledger: ledgerFromEnv(env),
    publisher: createSweepPublisher({ eventBusName: env[ENV.eventBusName] || DEFAULTS.eventBusName }),
    settings: sweepSettingsFromEnv(env),
    log: logger,
  };
}

/** `deps` or a factory called on the first invocation (so importing reads no env). */
export function createHandler(deps: SweepDeps | (() => SweepDeps)) {
  let resolved: SweepDeps | undefined;
  return async (): Promise<SweepReport> => {
    resolved ??= typeof deps === 'function' ? deps() : deps;
    const report = await runSweep(resolved);
    if (report.overdue.length + report.expired.length + report.failed.length > 0)
      logger.info('Sweep marked submissions', {
        overdue: report.overdue.length,
        expired: report.expired.length,
        failed: report.failed.length,
      });
    return report;
  };
}

export const handler = createHandler(() => depsFromEnv());
