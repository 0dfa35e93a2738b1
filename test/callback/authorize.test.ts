import { describe, expect, it } from 'vitest';
import { authorizeCallback } from '../../lib/callback/authorize';
import { SecretUnavailableError } from '../../lib/callback/errors';

describe('authorizeCallback', () => {
  const secrets = (...values: string[]) => ({ get: async () => values });

  it('allows the current and, while rotating, the previous secret', async () => {
    expect(await authorizeCallback({ secrets: secrets('cur-0123456789', 'prev-0123456789') }, 'cur-0123456789')).toBe(
      'allow',
    );
    expect(await authorizeCallback({ secrets: secrets('cur-0123456789', 'prev-0123456789') }, 'prev-0123456789')).toBe(
      'allow',
    );
  });

  it.each([undefined, null, '', 'cur-012345678', 'cur-01234567890', 'CUR-0123456789'])(
    'answers not-found for %j',
    async (candidate) => {
      expect(await authorizeCallback({ secrets: secrets('cur-0123456789') }, candidate)).toBe('not-found');
    },
  );

  it('throws SecretUnavailable (a 5xx, so IVA retries) when the secret cannot be read, never not-found', async () => {
    const failing = {
      get: async (): Promise<string[]> => {
        throw new Error('ThrottlingException');
      },
    };
    await expect(authorizeCallback({ secrets: failing }, 'anything')).rejects.toBeInstanceOf(SecretUnavailableError);
  });
});
