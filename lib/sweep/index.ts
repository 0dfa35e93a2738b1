/**
 * The sweep: notices missing results and unused uploads (README.md in this folder).
 *
 * Each run reads the ledger's candidates and, for each, sets its mark with a
 * conditional write (so two overlapping runs cannot both announce it), then announces
 * the change on EventBridge. When the announcement fails the mark is taken back, so the
 * next run tries again; a crash between the mark and PutEvents leaves the status
 * changed without its event (the window is one PutEvents call).
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import type { Ledger, SubmissionRecord } from '../ledger/types';
import { type LoggerPort, METRIC, type MetricsPort, MetricUnit } from '../observability';
import { sdkRequestHandler } from '../aws/sdk-http';
import { SUBMISSION_UNCERTAIN_DETAIL_TYPE } from '../callback/events';
import { DEFAULT_SWEEP, type SweepSettings } from './settings';

export { DEFAULT_SWEEP, SWEEP_ENV, type SweepSettings, sweepSettingsFromEnv } from './settings';
export { s3MultipartUploads } from './multipart';

export const EVENT_SOURCE = 'iva-bridge';
export const RESULT_OVERDUE_DETAIL_TYPE = 'IVA Result Overdue';
export const UPLOAD_EXPIRED_DETAIL_TYPE = 'Upload Expired';

export interface SweepPublisher {
  /** Resolves once the bus accepted the event; throws otherwise. */
  publish(detailType: string, detail: Record<string, unknown>, time: Date): Promise<void>;
}

export function createSweepPublisher(
  options: { client?: EventBridgeClient; eventBusName?: string } = {},
): SweepPublisher {
  const client = options.client ?? new EventBridgeClient({ requestHandler: sdkRequestHandler() });
  return {
    async publish(detailType, detail, time) {
      const out: PutEventsCommandOutput = await client.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: EVENT_SOURCE,
              DetailType: detailType,
              Detail: JSON.stringify(detail),
              EventBusName: options.eventBusName || 'default',
              Time: time,
            },
          ],
        }),
      );
      // PutEvents answers 200 even when an entry is refused: the count is the only signal.
      if ((out.FailedEntryCount ?? 0) > 0)
        throw new Error(`PutEvents refused the entry: ${out.Entries?.[0]?.ErrorCode ?? 'unknown'}`);
    },
  };
}

/**
 * The S3 side of a reserved multipart upload (lib/api/multipart-uploads.ts). Without it
 * the sweep still marks such an upload `expired`; the bucket's lifecycle rule then
 * removes its parts (AbortIncompleteMultipartUpload on incoming/, 1 day).
 */
export interface MultipartUploads {
  /** When its latest part was stored; undefined when it has none or S3 no longer knows the upload. */
  lastPartAt(record: SubmissionRecord): Promise<Date | undefined>;
  /** Aborts it (its parts are deleted); an upload S3 no longer knows is not an error. */
  abort(record: SubmissionRecord): Promise<void>;
}

export interface SweepDeps {
  ledger: Ledger;
  multipart?: MultipartUploads;
  publisher: SweepPublisher;
  settings?: SweepSettings;
  now?: () => Date;
  log?: Pick<LoggerPort, 'warn'>;
  /** `Overdue` / `UploadsExpired` per announced mark (the dashboard's overdue widget). */
  metrics?: MetricsPort;
}

export interface SweepReport {
  overdue: string[];
  expired: string[];
  /** Direct submissions whose invocation stopped before IVA's answer was recorded: now `uncertain`. */
  abandoned: string[];
  /** Marked, but the event failed: unmarked again for the next run. */
  failed: string[];
  /** Expired multipart uploads whose S3 upload was aborted. */
  aborted: string[];
}

/** The fields that are set (EventBridge details carry no nulls). */
function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

function detailOf(record: SubmissionRecord): Record<string, unknown> {
  return defined({
    submissionId: record.id,
    status: record.status,
    source: record.source,
    taskId: record.taskId,
    kind: record.kind,
    name: record.name,
    dataId: record.dataId,
    createdAt: record.createdAt,
    submittedAt: record.submittedAt,
    overdueAt: record.overdueAt,
    expiredAt: record.expiredAt,
    object: record.object ? { bucket: record.object.bucket, key: record.object.key } : undefined,
  });
}

export async function runSweep(deps: SweepDeps): Promise<SweepReport> {
  const settings = deps.settings ?? DEFAULT_SWEEP;
  const now = deps.now?.() ?? new Date();
  const report: SweepReport = { overdue: [], expired: [], abandoned: [], failed: [], aborted: [] };
  /** True when the bus took the event; false when the mark was taken back. */
  const announce = async (record: SubmissionRecord, which: 'overdue' | 'expired'): Promise<boolean> => {
    try {
      await deps.publisher.publish(
        which === 'overdue' ? RESULT_OVERDUE_DETAIL_TYPE : UPLOAD_EXPIRED_DETAIL_TYPE,
        detailOf(record),
        now,
      );
      report[which].push(record.id);
      deps.metrics?.addMetric(which === 'overdue' ? METRIC.overdue : METRIC.uploadsExpired, MetricUnit.Count, 1);
      return true;
    } catch (error) {
      report.failed.push(record.id);
      deps.log?.warn('Sweep event not published; the mark is taken back for the next run', {
        submissionId: record.id,
        mark: which,
        errorName: (error as { name?: string })?.name,
      });
      await deps.ledger.unmark(record.id, which);
      return false;
    }
  };
  // The same event the direct route publishes when IVA's answer is lost (lib/callback/events.ts).
  // Not taken back when it fails: `uncertain` is the record, and the status routes list it.
  const announceUncertain = async (record: SubmissionRecord): Promise<void> => {
    report.abandoned.push(record.id);
    deps.metrics?.addMetric(METRIC.uncertain, MetricUnit.Count, 1);
    try {
      await deps.publisher.publish(
        SUBMISSION_UNCERTAIN_DETAIL_TYPE,
        defined({
          submissionId: record.id,
          source: record.source,
          taskId: record.taskId,
          kind: record.kind,
          name: record.name,
          code: record.uncertain?.code,
          message: record.uncertain?.message,
          failedAt: record.uncertain?.failedAt,
        }),
        now,
      );
    } catch (error) {
      deps.log?.warn('Sweep: the uncertain submission is recorded, its event was not published', {
        submissionId: record.id,
        errorName: (error as { name?: string })?.name,
      });
    }
  };
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await deps.ledger.sweepCandidates({
      submittedBefore: new Date(now.getTime() - settings.overdueAfterMs).toISOString(),
      reservedBefore: new Date(now.getTime() - settings.expireUploadsAfterMs).toISOString(),
      abandonedBefore: new Date(now.getTime() - settings.abandonedAfterMs).toISOString(),
      ...(cursor ? { cursor } : {}),
    });
    for (const candidate of page.overdue) {
      const marked = await deps.ledger.markOverdue(candidate.id);
      if (marked) await announce(marked, 'overdue');
    }
    for (const candidate of page.expired) {
      // A large multipart upload outlives the expiry time while its parts still arrive:
      // it expires that long after its latest part, not after its creation.
      if (candidate.multipart && deps.multipart) {
        const last = await deps.multipart.lastPartAt(candidate).catch(() => undefined);
        if (last && last.getTime() > now.getTime() - settings.expireUploadsAfterMs) continue;
      }
      const marked = await deps.ledger.markExpired(candidate.id);
      if (!marked) continue;
      // Aborted only once announced: a mark taken back is tried again, whole, next run.
      if ((await announce(marked, 'expired')) && marked.multipart && deps.multipart) {
        try {
          await deps.multipart.abort(marked);
          report.aborted.push(marked.id);
        } catch (error) {
          deps.log?.warn('Expired multipart upload not aborted; the lifecycle rule removes its parts later', {
            submissionId: marked.id,
            errorName: (error as { name?: string })?.name,
          });
        }
      }
    }
    for (const candidate of page.abandoned) {
      const marked = await deps.ledger.markAbandoned(candidate.id, {
        code: 'InvocationLost',
        message:
          'The function handling this request stopped (its timeout or a crash) before it recorded IVA’s answer: IVA may or may not have it. Resolve it with POST /v1/submissions/{id}/resolve',
        failedAt: now.toISOString(),
      });
      if (marked) await announceUncertain(marked);
    }
    cursor = page.cursor;
  } while (cursor);
  return report;
}
