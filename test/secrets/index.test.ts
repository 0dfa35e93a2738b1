import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { cachedSecret } from '../../lib/secrets/index';

/** A Secrets Manager stand-in: each read returns the current value or throws the current error. */
function fakeSecretsManager() {
  const state = { value: 'v1', error: undefined as Error | undefined, reads: 0 };
  const client = {
    send: async () => {
      state.reads++;
      if (state.error) throw state.error;
      return { SecretString: state.value };
    },
  } as unknown as SecretsManagerClient;
  return { state, client };
}

describe('cachedSecret', () => {
  it('reads once per TTL and picks up a rotated value after it', async () => {
    const { state, client } = fakeSecretsManager();
    let t = 0;
    const secret = cachedSecret('arn:s', (raw) => raw, { client, ttlMs: 1_000, now: () => t });
    expect(await secret.get()).toBe('v1');
    expect(await secret.get()).toBe('v1');
    expect(state.reads).toBe(1);
    state.value = 'v2';
    t = 1_000;
    expect(await secret.get()).toBe('v2');
    expect(state.reads).toBe(2);
  });

  it('serves the last good value when a re-read fails, and retries after a pause, not on every call', async () => {
    const { state, client } = fakeSecretsManager();
    let t = 0;
    const secret = cachedSecret('arn:s', (raw) => raw, { client, ttlMs: 300_000, now: () => t });
    expect(await secret.get()).toBe('v1');
    state.error = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    t = 300_000;
    expect(await secret.get()).toBe('v1');
    expect(state.reads).toBe(2);
    t += 1_000;
    expect(await secret.get()).toBe('v1');
    expect(state.reads).toBe(2);
    // An explicit refresh (the keys were refused) still reports the failure.
    await expect(secret.refresh()).rejects.toThrow('Rate exceeded');
    state.error = undefined;
    state.value = 'v2';
    t += 30_000;
    expect(await secret.get()).toBe('v2');
  });

  it('fails the first read when there is no value to fall back on', async () => {
    const { state, client } = fakeSecretsManager();
    state.error = new Error('unreachable');
    const secret = cachedSecret('arn:s', (raw) => raw, { client });
    await expect(secret.get()).rejects.toThrow('unreachable');
  });
});
