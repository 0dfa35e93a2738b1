import { describe, expect, it } from 'vitest';
import {
  logger,
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
