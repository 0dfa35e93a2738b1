/**
 * Client access keys in Secrets Manager: one secret per access key id, named
 * `<prefix><AccessKeyId>` (the prefix is the stack's `ClientKeyPrefix` output,
 * `iva-bridge/<StackName>/client-keys/`), value
 * `{"accessKeyId","secretAccessKey","client","usageKey","createdAt"}`, tagged
 * `iva-bridge:client=<name>`.
 *
 * Why one secret per key rather than one map of every client: the authorizer reads
 * exactly the key it is asked about (GetSecretValue by name, no scan); revoking is
 * deleting one secret (nothing else is rewritten, so two operators cannot lose each
 * other's edits); CloudTrail records each read and change per key; and IAM can grant or
 * deny one client's key. A client has one key, two while rotating (issue the new one,
 * move the client, revoke the old one).
 *
 * `usageKey` is the API Gateway API key value whose usage plan counts the client's calls
 * (the API's key source is the authorizer): clients never send it.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { BridgeError } from '../errors';
import type { ClientKey } from './verify';

export const CLIENT_TAG = 'iva-bridge:client';
/** At most this many live keys per client: the current one and the one being rotated in. */
export const MAX_KEYS_PER_CLIENT = 2;

export class ClientKeyError extends BridgeError {
  override readonly name = 'ClientKeyError';
}

export const clientKeyPrefix = (stackName: string): string => `iva-bridge/${stackName}/client-keys/`;

/** `AKIB` + 16 upper-case base32-ish characters: recognisable, and never a Volcengine `AKLT…` key. */
export function newAccessKeyId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return `AKIB${[...randomBytes(16)].map((b) => alphabet[b % 32]).join('')}`;
}

export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64url');
}

const CLIENT_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function parseClientKey(raw: string): ClientKey & { createdAt?: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ClientKeyError('ClientKeyFormat', 'A client key secret must be a JSON object');
  }
  const v = (value ?? {}) as Record<string, unknown>;
  const pick = (k: string) => (typeof v[k] === 'string' && v[k] !== '' ? (v[k] as string) : undefined);
  const accessKeyId = pick('accessKeyId');
  const secretAccessKey = pick('secretAccessKey');
  const client = pick('client');
  const usageKey = pick('usageKey');
  if (!accessKeyId || !secretAccessKey || !client || !usageKey)
    throw new ClientKeyError(
      'ClientKeyFormat',
      'A client key secret needs "accessKeyId", "secretAccessKey", "client" and "usageKey"',
    );
  const createdAt = pick('createdAt');
  return { accessKeyId, secretAccessKey, client, usageKey, ...(createdAt ? { createdAt } : {}) };
}

export interface ListedKey {
  accessKeyId: string;
  client: string;
  createdAt?: string;
}

export interface ClientKeyStore {
  issue(client: string, usageKey: string): Promise<ClientKey & { createdAt: string }>;
  /** Issues a second key for a client that has exactly one (refuses a third). */
  rotate(client: string, usageKey?: string): Promise<ClientKey & { createdAt: string }>;
  revoke(accessKeyId: string): Promise<void>;
  list(): Promise<ListedKey[]>;
  get(accessKeyId: string): Promise<ClientKey | undefined>;
}

export function createClientKeyStore(client: SecretsManagerClient, prefix: string): ClientKeyStore {
  const list = async (): Promise<ListedKey[]> => {
    const out: ListedKey[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [prefix] }], MaxResults: 100, NextToken: token }),
      );
      for (const s of page.SecretList ?? []) {
        if (!s.Name?.startsWith(prefix) || s.DeletedDate) continue;
        const tag = s.Tags?.find((t) => t.Key === CLIENT_TAG)?.Value ?? '';
        out.push({
          accessKeyId: s.Name.slice(prefix.length),
          client: tag,
          ...(s.CreatedDate ? { createdAt: new Date(s.CreatedDate).toISOString() } : {}),
        });
      }
      token = page.NextToken;
    } while (token);
    return out.sort((a, b) => a.client.localeCompare(b.client) || (a.createdAt ?? '').localeCompare(b.createdAt ?? ''));
  };
  const get = async (accessKeyId: string): Promise<ClientKey | undefined> => {
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: `${prefix}${accessKeyId}` }));
      return out.SecretString ? parseClientKey(out.SecretString) : undefined;
    } catch (error) {
      if ((error as { name?: string }).name === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  };
  const issue = async (name: string, usageKey: string) => {
    if (!CLIENT_NAME.test(name))
      throw new ClientKeyError('InvalidClientName', 'A client name is 1-64 letters, digits, ".", "_" or "-"');
    const key = {
      accessKeyId: newAccessKeyId(),
      secretAccessKey: newSecretAccessKey(),
      client: name,
      usageKey,
      createdAt: new Date().toISOString(),
    };
    await client.send(
      new CreateSecretCommand({
        Name: `${prefix}${key.accessKeyId}`,
        Description: `iva-bridge client key of ${name}`,
        SecretString: JSON.stringify(key),
        Tags: [{ Key: CLIENT_TAG, Value: name }],
      }),
    );
    return key;
  };
  return {
    issue,
    async rotate(name, usageKey) {
      const live = (await list()).filter((k) => k.client === name);
      if (live.length === 0)
        throw new ClientKeyError('NoSuchClient', `Client ${name} has no key to rotate: issue one first`);
      if (live.length >= MAX_KEYS_PER_CLIENT)
        throw new ClientKeyError(
          'RotationInProgress',
          `Client ${name} already has ${live.length} keys (${live.map((k) => k.accessKeyId).join(', ')}): revoke the old one first`,
        );
      const current = live[0] ? await get(live[0].accessKeyId) : undefined;
      const usage = usageKey ?? current?.usageKey;
      if (!usage) throw new ClientKeyError('NoSuchClient', `Client ${name}'s key could not be read`);
      return issue(name, usage);
    },
    async revoke(accessKeyId) {
      try {
        await client.send(
          new DeleteSecretCommand({ SecretId: `${prefix}${accessKeyId}`, ForceDeleteWithoutRecovery: true }),
        );
      } catch (error) {
        if ((error as { name?: string }).name === 'ResourceNotFoundException')
          throw new ClientKeyError('NoSuchKey', `No client key ${accessKeyId}`);
        throw error;
      }
    },
    list,
    get,
  };
}
