/**
 * Logging and metrics, one vocabulary for the whole code base:
 *
 * - `LoggerPort` / `MetricsPort`: what lib/ asks for. They are the subsets of Powertools'
 *   Logger and Metrics that lib/ uses, so the real ones are passed in without adapters.
 *   Every lib/ entry point takes them the same way, as `logger?` and `metrics?` in its
 *   deps, and the same default applies everywhere: `silentLogger` / `noMetrics` (library
 *   code says nothing unless given somewhere to say it; tests stay quiet).
 * - `logger` / `metrics`: one Powertools instance of each per container, which every
 *   handler passes to lib/ (see `withObservability`). Every line is JSON; the functions
 *   append submission id, TaskID, data id and IVA RequestId as persistent or per-line
 *   keys. Service name and namespace come from POWERTOOLS_SERVICE_NAME /
 *   POWERTOOLS_METRICS_NAMESPACE (set by the stack), with defaults for local runs.
 * - `METRIC`: the metric names dashboards and alarms rely on.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

export { MetricUnit };

export type LogAttributes = Record<string, unknown>;

/** The logging lib/ does. Powertools' `Logger` fits as it is. */
export interface LoggerPort {
  debug(message: string, ...attributes: LogAttributes[]): void;
  info(message: string, ...attributes: LogAttributes[]): void;
  warn(message: string, ...attributes: LogAttributes[]): void;
  error(message: string, ...attributes: LogAttributes[]): void;
  /** Keys added to every later line of the invocation. */
  appendKeys(attributes: LogAttributes): void;
}

export type MetricUnitValue = (typeof MetricUnit)[keyof typeof MetricUnit];

/** The metrics lib/ records. Powertools' `Metrics` fits as it is. */
export interface MetricsPort {
  addMetric(name: string, unit: MetricUnitValue, value: number): void;
  /**
   * One metric with dimensions of its own, written at once (Powertools' `singleMetric`).
   * Optional: a port without it records only the dimensionless metrics.
   */
  singleMetric?(): {
    addDimension(name: string, value: string): void;
    addMetric(name: string, unit: MetricUnitValue, value: number): void;
  };
}

/** The default logger of every lib/ entry point: says nothing. */
export const silentLogger: LoggerPort = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  appendKeys: () => {},
};

/** The default metrics of every lib/ entry point: records nothing. */
export const noMetrics: MetricsPort = { addMetric: () => {} };

/** What a lib/ entry point takes for observability; handlers fill it with `withObservability`. */
export interface ObservabilityDeps {
  /** @default silentLogger */
  logger?: LoggerPort;
  /** @default noMetrics */
  metrics?: MetricsPort;
}

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
  /** IVA may have it (answer lost after sending): recorded `uncertain`, never retried. */
  uncertain: 'Uncertain',
  retried: 'Retried',
  duplicate: 'Duplicate',
  callbacksReceived: 'CallbacksReceived',
  callbacksUnmatched: 'CallbacksUnmatched',
  callbacksRejected: 'CallbacksRejected',
  resultsStored: 'ResultsStored',
  /** `Failed` again with a `Code` dimension (the error code recorded): the dashboard's failures by code. */
  failedByCode: 'FailedByCode',
  /** The sweep marked a submission overdue (no final result in time) / an upload URL expired unused. */
  overdue: 'Overdue',
  uploadsExpired: 'UploadsExpired',
  /** Milliseconds from IVA accepting a submission to the final result being recorded (callback). */
  submissionToResult: 'SubmissionToResult',
} as const;

/** The dimension of METRIC.failedByCode. */
export const FAILURE_CODE_DIMENSION = 'Code';

/**
 * Counts one failed submission: `Failed`, and `FailedByCode` with the code as its
 * dimension. Codes are stable identifiers (ours, or IVA's), a bounded set; an empty one is
 * reported as `Unknown` and a long one cut to CloudWatch's 255-character dimension limit.
 */
export function countFailure(metrics: MetricsPort | undefined, code: string): void {
  if (!metrics) return;
  metrics.addMetric(METRIC.failed, MetricUnit.Count, 1);
  const single = metrics.singleMetric?.();
  if (!single) return;
  single.addDimension(FAILURE_CODE_DIMENSION, code.slice(0, 255) || 'Unknown');
  single.addMetric(METRIC.failedByCode, MetricUnit.Count, 1);
}

/** The deps with the container's Powertools logger and metrics where the caller gave none (handlers). */
export function withObservability<T extends ObservabilityDeps>(deps: T): T & Required<ObservabilityDeps> {
  return { ...deps, logger: deps.logger ?? logger, metrics: deps.metrics ?? metrics };
}
