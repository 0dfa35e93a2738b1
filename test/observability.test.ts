import { describe, expect, it } from 'vitest';
import {
  countFailure,
  FAILURE_CODE_DIMENSION,
  logger,
  METRIC,
  type LoggerPort,
  metrics,
  type MetricsPort,
  noMetrics,
  silentLogger,
  withObservability,
} from '../lib/observability';
import { lazy } from '../lib/runtime';

describe('logger and metrics ports', () => {
  it("take Powertools' Logger and Metrics as they are (no adapter)", () => {
    // Compile-time: these assignments fail `tsc` if the ports drift from Powertools' shapes.
    const ports: { logger: LoggerPort; metrics: MetricsPort } = { logger, metrics };
    expect(ports.logger).toBe(logger);
    expect(silentLogger.info('nothing')).toBeUndefined();
    expect(noMetrics.addMetric('Nothing', 'Count', 1)).toBeUndefined();
  });

  it('handlers fill in the Powertools instances only where none was given', () => {
    const own: LoggerPort = { ...silentLogger };
    expect(withObservability({ logger: own })).toMatchObject({ logger: own, metrics });
    const deps: { x: number; logger?: LoggerPort } = { x: 1 };
    expect(withObservability(deps)).toEqual({ x: 1, logger, metrics });
  });
});

describe('countFailure', () => {
  it('counts Failed, and FailedByCode with the code as its Code dimension where the port can', () => {
    const plain: string[] = [];
    const single: string[] = [];
    countFailure(
      {
        addMetric: (name) => plain.push(name),
        singleMetric: () => ({
          addDimension: (name, value) => single.push(`${name}=${value}`),
          addMetric: (name, unit, value) => single.push(`${name}:${unit}:${value}`),
        }),
      },
      'InvalidParameter',
    );
    expect(plain).toEqual([METRIC.failed]);
    expect(single).toEqual([`${FAILURE_CODE_DIMENSION}=InvalidParameter`, `${METRIC.failedByCode}:Count:1`]);
    // A port without singleMetric (most fakes) still gets Failed; no port, nothing.
    const only: string[] = [];
    countFailure({ addMetric: (name) => only.push(name) }, '');
    expect(only).toEqual([METRIC.failed]);
    expect(() => countFailure(undefined, 'X')).not.toThrow();
  });
});

describe('lazy', () => {
  it('builds a factory once, on first use, and passes a value through', () => {
    let builds = 0;
    const get = lazy(() => ({ built: ++builds }));
    expect(builds).toBe(0);
    expect(get()).toBe(get());
    expect(builds).toBe(1);
    const value = { ready: true };
    expect(lazy(value)()).toBe(value);
  });
});
