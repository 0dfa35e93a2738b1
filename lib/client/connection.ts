/**
 * Where the client connects, first match wins:
 *
 * 1. an explicit API URL (`--api-url`), with `--api-key` or `IVA_BRIDGE_API_KEY`;
 * 2. `IVA_BRIDGE_API_URL` (+ `IVA_BRIDGE_API_KEY`);
 * 3. a deployed stack by name (`--stack NAME`): its CloudFormation outputs `ApiUrl` and
 *    `ApiKeyId`, and the key's value from API Gateway, read with the caller's AWS
 *    credentials (the usual chain: AWS_PROFILE, environment, SSO, instance role);
 * 4. the `.local/stack.json` that `npm start` writes (in the working directory, or this
 *    package's own folder; `IVA_BRIDGE_STACK_JSON` names another file).
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IvaBridgeError, IvaBridgeInputError } from './errors';

export const CONNECTION_ENV = {
  apiUrl: 'IVA_BRIDGE_API_URL',
  apiKey: 'IVA_BRIDGE_API_KEY',
  stackJson: 'IVA_BRIDGE_STACK_JSON',
  accessKeyId: 'IVA_BRIDGE_ACCESS_KEY_ID',
  secretAccessKey: 'IVA_BRIDGE_SECRET_ACCESS_KEY',
} as const;

export interface Connection {
  apiUrl: string;
  apiKey?: string;
  /** The client's access key (every API request is signed with it). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Where the values came from, for messages. */
  source: 'flags' | 'env' | 'stack' | 'local';
  /** The file or stack name behind `local`/`stack`. */
  origin?: string;
}

export interface ConnectionInput {
  apiUrl?: string;
  apiKey?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  stack?: string;
  /** AWS region of `stack` (default: the SDK's own resolution, e.g. AWS_REGION). */
  region?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

type StackJson = { apiUrl?: unknown; apiKey?: unknown; clientAccessKeyId?: unknown; clientSecretAccessKey?: unknown };

async function readStackJson(path: string): Promise<StackJson | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as StackJson;
  } catch {
    throw new IvaBridgeInputError('InvalidStackJson', `${path} is not valid JSON; restart npm start to rewrite it`);
  }
}

/** ApiUrl and the API key of a deployed stack, with the caller's AWS credentials. */
export async function connectionFromStack(stackName: string, region?: string): Promise<Connection> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const { APIGatewayClient, GetApiKeyCommand } = await import('@aws-sdk/client-api-gateway');
  const config = region ? { region } : {};
  const cfn = new CloudFormationClient(config);
  const apigw = new APIGatewayClient(config);
  try {
    let outputs: { OutputKey?: string; OutputValue?: string }[];
    try {
      const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
      outputs = out.Stacks?.[0]?.Outputs ?? [];
    } catch (error) {
      throw new IvaBridgeError(
        'StackUnreadable',
        `cannot read the outputs of stack ${stackName}: ${(error as Error).name}: ${(error as Error).message} (check AWS credentials, AWS_REGION and the stack name)`,
        { cause: error },
      );
    }
    const output = (key: string) => outputs.find((o) => o.OutputKey === key)?.OutputValue;
    const apiUrl = output('ApiUrl');
    const apiKeyId = output('ApiKeyId');
    if (!apiUrl)
      throw new IvaBridgeError(
        'StackUnreadable',
        `stack ${stackName} has no ApiUrl output: is it an iva-bridge stack?`,
      );
    let apiKey: string | undefined;
    if (apiKeyId) {
      try {
        apiKey = (await apigw.send(new GetApiKeyCommand({ apiKey: apiKeyId, includeValue: true }))).value;
      } catch (error) {
        throw new IvaBridgeError(
          'StackUnreadable',
          `cannot read the value of API key ${apiKeyId} of stack ${stackName}: ${(error as Error).name} (needs apigateway:GET on it)`,
          { cause: error },
        );
      }
    }
    return { apiUrl, ...(apiKey ? { apiKey } : {}), source: 'stack', origin: stackName };
  } finally {
    cfn.destroy();
    apigw.destroy();
  }
}

/**
 * The client's access key: flags, else IVA_BRIDGE_ACCESS_KEY_ID + IVA_BRIDGE_SECRET_ACCESS_KEY,
 * else (local stack only) the key `npm start` issued. Both halves or neither.
 */
function credentialsOf(
  input: ConnectionInput,
  env: Record<string, string | undefined>,
): Connection['credentials'] | undefined {
  const accessKeyId = input.accessKeyId ?? (env[CONNECTION_ENV.accessKeyId] || undefined);
  const secretAccessKey = input.secretAccessKey ?? (env[CONNECTION_ENV.secretAccessKey] || undefined);
  if (!accessKeyId && !secretAccessKey) return undefined;
  if (!accessKeyId || !secretAccessKey)
    throw new IvaBridgeInputError(
      'IncompleteCredentials',
      `give both the access key id and the secret access key (--access-key-id/--secret-access-key or ${CONNECTION_ENV.accessKeyId}/${CONNECTION_ENV.secretAccessKey})`,
    );
  return { accessKeyId, secretAccessKey };
}

export async function resolveConnection(input: ConnectionInput = {}): Promise<Connection> {
  const env = input.env ?? process.env;
  const envKey = env[CONNECTION_ENV.apiKey] || undefined;
  const apiKey = input.apiKey ?? envKey;
  const credentials = credentialsOf(input, env);
  const withKeys = { ...(apiKey ? { apiKey } : {}), ...(credentials ? { credentials } : {}) };
  if (input.apiUrl) return { apiUrl: input.apiUrl, ...withKeys, source: 'flags' };
  const envUrl = env[CONNECTION_ENV.apiUrl];
  if (envUrl) return { apiUrl: envUrl, ...withKeys, source: 'env' };
  if (input.stack) {
    const found = await connectionFromStack(input.stack, input.region);
    return { ...found, ...(input.apiKey ? { apiKey: input.apiKey } : {}), ...(credentials ? { credentials } : {}) };
  }
  const cwd = input.cwd ?? process.cwd();
  const named = env[CONNECTION_ENV.stackJson];
  const candidates = named
    ? [isAbsolute(named) ? named : resolve(cwd, named)]
    : [...new Set([resolve(cwd, '.local/stack.json'), resolve(PACKAGE_ROOT, '.local/stack.json')])];
  for (const path of candidates) {
    const facts = await readStackJson(path);
    if (!facts) continue;
    if (typeof facts.apiUrl !== 'string' || facts.apiUrl === '')
      throw new IvaBridgeInputError('InvalidStackJson', `${path} has no apiUrl; restart npm start to rewrite it`);
    const key = apiKey ?? (typeof facts.apiKey === 'string' ? facts.apiKey : undefined);
    const local =
      credentials ??
      (typeof facts.clientAccessKeyId === 'string' && typeof facts.clientSecretAccessKey === 'string'
        ? { accessKeyId: facts.clientAccessKeyId, secretAccessKey: facts.clientSecretAccessKey }
        : undefined);
    return {
      apiUrl: facts.apiUrl,
      ...(key ? { apiKey: key } : {}),
      ...(local ? { credentials: local } : {}),
      source: 'local',
      origin: path,
    };
  }
  throw new IvaBridgeInputError(
    'NoConnection',
    `no API to talk to: pass --api-url URL --api-key KEY, set ${CONNECTION_ENV.apiUrl} and ${CONNECTION_ENV.apiKey}, pass --stack NAME (a deployed stack, read with your AWS credentials), or run "npm start" (writes .local/stack.json)`,
  );
}
