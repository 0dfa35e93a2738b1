/**
 * Scheduled (EventBridge rule, infra/stack.ts; a timer in `npm start`): notices missing
 * results and unused uploads. Wiring only; the logic is lib/sweep.
 */
import { DEFAULTS, ENV } from '../../lib/config';
import { logger, metrics } from '../../lib/observability';
import { ledgerFromEnv } from '../../lib/runtime';
import { createS3Client } from '../../lib/storage/s3-client';
import {
  createSweepPublisher,
  runSweep,
  s3MultipartUploads,
  type SweepDeps,
  type SweepReport,
  sweepSettingsFromEnv,
} from '../../lib/sweep/index';

export function depsFromEnv(env: Record<string, string | undefined> = process.env): SweepDeps {
  return {
    ledger: ledgerFromEnv(env),
    // Expired multipart uploads are aborted (their parts deleted) as they are marked.
    multipart: s3MultipartUploads(createS3Client({ env })),
    publisher: createSweepPublisher({ eventBusName: env[ENV.eventBusName] || DEFAULTS.eventBusName }),
    settings: sweepSettingsFromEnv(env),
    log: logger,
    metrics,
  };
}

/** `deps` or a factory called on the first invocation (so importing reads no env). */
export function createHandler(deps: SweepDeps | (() => SweepDeps)) {
  let resolved: SweepDeps | undefined;
  return async (): Promise<SweepReport> => {
    resolved ??= typeof deps === 'function' ? deps() : deps;
    let report: SweepReport;
    try {
      report = await runSweep(resolved);
    } finally {
      // No middleware here: write the run's Overdue / UploadsExpired counts (EMF) ourselves.
      metrics.publishStoredMetrics();
    }
    if (report.overdue.length + report.expired.length + report.failed.length > 0)
      logger.info('Sweep marked submissions', {
        overdue: report.overdue.length,
        expired: report.expired.length,
        failed: report.failed.length,
        abortedUploads: report.aborted.length,
      });
    return report;
  };
}

export const handler = createHandler(() => depsFromEnv());
