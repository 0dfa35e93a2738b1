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

/**
 * Metrics report their own problems through our logger, except the "no application
 * metrics to publish" notice: a status GET records none by design, and a warning on
 * every such invocation would bury real ones.
 */
const metricsLogger = {
  trace: (...args: unknown[]) => logger.trace(String(args[0] ?? '')),
  debug: (...args: unknown[]) => logger.debug(String(args[0] ?? '')),
  info: (...args: unknown[]) => logger.info(String(args[0] ?? '')),
  warn: (...args: unknown[]) => {
    const message = String(args[0] ?? '');
    if (message.startsWith('No application metrics to publish')) logger.debug(message);
    else logger.warn(message);
  },
  error: (...args: unknown[]) => logger.error(String(args[0] ?? '')),
};

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'IvaBridge',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'iva-bridge',
  logger: metricsLogger,
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
