/**
 * Builds the clients a function needs from its environment, once per container.
 * Local runs point the AWS SDK elsewhere with AWS_ENDPOINT_URL_S3 / _DYNAMODB /
 * _EVENTBRIDGE / _SECRETS_MANAGER, which the SDK reads itself.
 */
import { ENV, ivaTarget, required, type Env } from './config';
import { createIvaClient } from './iva/client';
import type { IvaClient } from './iva/types';
import { createDynamoLedger, type Ledger } from './ledger/index';
import { volcCredentialsFrom, type CachedSecret } from './secrets/index';
import type { VolcCredentials } from './signer/index';

export interface IvaRuntime {
  client: IvaClient;
  credentials: CachedSecret<VolcCredentials>;
}

export function ledgerFromEnv(env: Env = process.env, leaseMs?: number): Ledger {
  return createDynamoLedger({ tableName: required(env, ENV.ledgerTable), leaseMs });
}

export function ivaFromEnv(env: Env = process.env): IvaRuntime {
  const target = ivaTarget(env);
  const credentials = volcCredentialsFrom(env);
  const client = createIvaClient({
    endpoint: target.endpoint,
    region: target.region,
    service: target.service,
    timeoutMs: target.timeoutMs,
    credentials: () => credentials.get(),
  });
  return { client, credentials };
}

/**
 * A value, or a factory called once on first use: how handlers take their deps, so
 * importing a handler reads no environment and builds no client (tests pass the value).
 */
export function lazy<T>(value: T | (() => T)): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: typeof value === 'function' ? (value as () => T)() : value };
    return built.value;
  };
}
