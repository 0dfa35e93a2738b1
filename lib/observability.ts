/**
 * One Powertools logger and metrics instance per container. Every line is JSON; the
 * functions append submission id, TaskID, data id and IVA RequestId as persistent or
 * per-line keys. Service name and namespace come from POWERTOOLS_SERVICE_NAME /
 * POWERTOOLS_METRICS_NAMESPACE (set by the stack), with defaults for local runs.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

export { MetricUnit };

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'iva-bridge' });

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'IvaBridge',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'iva-bridge',
});

/** The metric names dashboards and alarms rely on. */
export const METRIC = {
  submitted: 'Submitted',
  failed: 'Failed',
  retried: 'Retried',
  duplicate: 'Duplicate',
  callbacksReceived: 'CallbacksReceived',
  callbacksUnmatched: 'CallbacksUnmatched',
  callbacksRejected: 'CallbacksRejected',
  resultsStored: 'ResultsStored',
} as const;
