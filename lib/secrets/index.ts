/**
 * Secrets read once per container and refreshed: a cached value is served for `ttlMs`
 * (rotation is picked up within that time) and `refresh()` forces a re-read, which the
 * callers use when a key is refused (rotation just happened). Values never reach logs:
 * errors name the secret's ARN, never its content.
 */
import { BridgeError } from '../errors';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ENV, type Env } from '../config';
import type { VolcCredentials } from '../signer/index';
import { sdkRequestHandler } from '../aws/sdk-http';

/** The secret's value is not the documented shape: fixing the secret (not retrying) cures it. */
export class SecretFormatError extends BridgeError {
  override readonly name = 'SecretFormatError';
  constructor(message: string) {
    super('SecretFormat', message);
  }
}

export interface CachedSecret<T> {
  get(): Promise<T>;
  refresh(): Promise<T>;
}

export interface SecretSourceOptions {
  client?: SecretsManagerClient;
  ttlMs?: number;
  now?: () => number;
}

const DEFAULT_TTL_MS = 5 * 60 * 1000;
/** After a failed re-read, the previous value is served this long before trying again. */
const STALE_RETRY_MS = 30 * 1000;

/** A Secrets Manager secret, parsed by `parse`, cached per container. */
export function cachedSecret<T>(
  secretId: string,
  parse: (raw: string) => T,
  options: SecretSourceOptions = {},
): CachedSecret<T> {
  const client = options.client ?? new SecretsManagerClient({ requestHandler: sdkRequestHandler() });
  const ttl = options.ttlMs ?? DEFAULT_TTL_MS;
  const now = options.now ?? Date.now;
  let value: T | undefined;
  let fetchedAt = 0;
  let inflight: Promise<T> | undefined;

  async function load(): Promise<T> {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    const raw = out.SecretString ?? (out.SecretBinary ? Buffer.from(out.SecretBinary).toString('utf8') : undefined);
    if (raw === undefined) throw new SecretFormatError(`Secret ${secretId} has no value`);
    const parsed = parse(raw);
    value = parsed;
    fetchedAt = now();
    return parsed;
  }

  function refresh(): Promise<T> {
    // One read in flight per container, however many concurrent callers ask.
    inflight ??= load().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  return {
    async get() {
      if (value !== undefined && now() - fetchedAt < ttl) return value;
      if (value === undefined) return refresh();
      const stale = value;
      try {
        return await refresh();
      } catch {
        // A Secrets Manager blip must not stop a warm container whose keys still work: the
        // last good value is served, and re-read after a pause rather than on every call.
        // An explicit refresh() (keys refused, a rotation) still reports the failure.
        fetchedAt = now() - ttl + STALE_RETRY_MS;
        return stale;
      }
    },
    refresh,
  };
}

function parseJsonObject(raw: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(raw);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through: the message below must not echo the secret
  }
  throw new SecretFormatError(`${what} must be a JSON object`);
}

/** `{"accessKeyId":"…","secretAccessKey":"…","sessionToken"?:"…"}`; the SDKs' AK/SK spellings are accepted too. */
export function parseKeyPair(raw: string, what = 'The credentials secret'): VolcCredentials {
  const obj = parseJsonObject(raw, what);
  const pick = (...names: string[]) =>
    names.map((n) => obj[n]).find((v): v is string => typeof v === 'string' && v.length > 0);
  const accessKeyId = pick('accessKeyId', 'AccessKeyId', 'AK', 'ak', 'VOLC_ACCESSKEY');
  const secretAccessKey = pick('secretAccessKey', 'SecretAccessKey', 'SecretKey', 'SK', 'sk', 'VOLC_SECRETKEY');
  if (!accessKeyId || !secretAccessKey)
    throw new SecretFormatError(`${what} needs "accessKeyId" and "secretAccessKey"`);
  const sessionToken = pick('sessionToken', 'SessionToken');
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

/**
 * Volcengine credentials: from Secrets Manager (VOLC_SECRET_ARN) when deployed; from
 * VOLC_ACCESSKEY/VOLC_SECRETKEY only when no ARN is configured (local runs).
 */
export function volcCredentialsFrom(
  env: Env = process.env,
  options?: SecretSourceOptions,
): CachedSecret<VolcCredentials> {
  const arn = env[ENV.volcSecretArn];
  if (arn) return cachedSecret(arn, (raw) => parseKeyPair(raw, 'The Volcengine credentials secret'), options);
  const accessKeyId = env[ENV.volcAccessKey];
  const secretAccessKey = env[ENV.volcSecretKey];
  const sessionToken = env[ENV.volcSessionToken];
  const fixed = async (): Promise<VolcCredentials> => {
    if (!accessKeyId || !secretAccessKey) {
      throw new SecretFormatError(
        `No Volcengine credentials: set ${ENV.volcSecretArn}, or ${ENV.volcAccessKey} and ${ENV.volcSecretKey}`,
      );
    }
    return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
  };
  return { get: fixed, refresh: fixed };
}

/**
 * Callback secrets: the secret's value is the current secret, or a JSON object
 * `{"current":"…","previous":"…"}` while rotating, so callbacks in flight with the old
 * URL are still accepted.
 */
export function parseCallbackSecrets(raw: string): string[] {
  const trimmed = raw.trim();
  if (trimmed.startsWith('{')) {
    const obj = parseJsonObject(trimmed, 'The callback secret');
    const values = ['current', 'previous']
      .map((k) => obj[k])
      .filter((v): v is string => typeof v === 'string' && v.length > 0);
    if (values.length === 0) throw new SecretFormatError('The callback secret JSON needs a "current" value');
    return values;
  }
  if (!trimmed) throw new SecretFormatError('The callback secret is empty');
  return [trimmed];
}

export function callbackSecretsFrom(env: Env = process.env, options?: SecretSourceOptions): CachedSecret<string[]> {
  const arn = env[ENV.callbackSecretArn];
  if (arn) return cachedSecret(arn, parseCallbackSecrets, options);
  const direct = (env[ENV.callbackSecrets] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const fixed = async () => {
    if (direct.length === 0)
      throw new SecretFormatError(`No callback secret: set ${ENV.callbackSecretArn} or ${ENV.callbackSecrets}`);
    return direct;
  };
  return { get: fixed, refresh: fixed };
}
