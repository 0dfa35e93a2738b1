import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG, configFromContext, ivaConcurrencySplit } from '../../infra/config';

const ctx = (values: Record<string, unknown>) => ({ tryGetContext: (key: string) => values[key] });

describe('configFromContext', () => {
  it('returns the documented defaults for an empty context', () => {
    expect(configFromContext(ctx({}))).toEqual({
      ...DEFAULT_CONFIG,
      defaultTaskId: undefined,
      existingBucketName: undefined,
      alarmEmail: undefined,
      presignSecretArn: undefined,
    });
    expect(DEFAULT_CONFIG.ivaConcurrency).toBeGreaterThanOrEqual(2);
    expect(DEFAULT_CONFIG.maxReceiveCount).toBe(5);
  });

  it('parses the strings that `cdk -c key=value` passes', () => {
    const config = configFromContext(
      ctx({
        ivaConcurrency: '8',
        presignTtlSeconds: '3600',
        logLevel: 'warn',
        apiGatewayCloudWatchRole: 'false',
        ivaEndpoint: 'https://iva.example.com/',
      }),
    );
    expect(config.ivaConcurrency).toBe(8);
    expect(config.presignTtlSeconds).toBe(3600);
    expect(config.logLevel).toBe('WARN');
    expect(config.apiGatewayCloudWatchRole).toBe(false);
    expect(config.ivaEndpoint).toBe('https://iva.example.com');
  });

  it.each([
    [{ ivaConcurrency: '1' }, /ivaConcurrency/],
    [{ ivaConcurrency: 'four' }, /ivaConcurrency/],
    [{ presignTtlSeconds: String(8 * 24 * 3600) }, /presignTtlSeconds/],
    [{ logLevel: 'verbose' }, /logLevel/],
    [{ logRetentionDays: '10' }, /logRetentionDays/],
    [{ ivaEndpoint: 'open.volcengineapi.com' }, /ivaEndpoint/],
    [{ alarmEmail: 'nobody' }, /alarmEmail/],
    [{ presignSecretArn: 'my-secret' }, /presignSecretArn/],
    [{ apiGatewayCloudWatchRole: 'yes' }, /apiGatewayCloudWatchRole/],
    [{ incomingExpirationDays: '0' }, /incomingExpirationDays/],
  ])('rejects %o with a message naming the key', (values, key) => {
    expect(() => configFromContext(ctx(values))).toThrow(ConfigError);
    expect(() => configFromContext(ctx(values))).toThrow(key);
  });
});

describe('ivaMode', () => {
  it('is vendor by default, sandbox on request, and refuses anything else', () => {
    expect(configFromContext(ctx({})).ivaMode).toBe('vendor');
    expect(configFromContext(ctx({ ivaMode: 'sandbox' })).ivaMode).toBe('sandbox');
    expect(() => configFromContext(ctx({ ivaMode: 'fake' }))).toThrow(/"ivaMode" must be one of vendor, sandbox/);
  });

  it('refuses an ivaEndpoint in sandbox mode (the functions call the in-stack sandbox)', () => {
    expect(() => configFromContext(ctx({ ivaMode: 'sandbox', ivaEndpoint: 'https://iva.example.com' }))).toThrow(
      ConfigError,
    );
  });
});

describe('ivaConcurrencySplit', () => {
  it('never lets invocations × calls per invocation exceed the total', () => {
    for (let total = 2; total <= 64; total++) {
      for (let per = 1; per <= 10; per++) {
        const split = ivaConcurrencySplit(total, per);
        expect(split.invocations).toBeGreaterThanOrEqual(2);
        expect(split.perInvocation).toBeGreaterThanOrEqual(1);
        expect(split.perInvocation).toBeLessThanOrEqual(Math.max(1, per));
        expect(split.invocations * split.perInvocation).toBeLessThanOrEqual(total);
      }
    }
    expect(ivaConcurrencySplit(8, 2)).toEqual({ invocations: 4, perInvocation: 2 });
    expect(ivaConcurrencySplit(4, 2)).toEqual({ invocations: 2, perInvocation: 2 });
  });
});
