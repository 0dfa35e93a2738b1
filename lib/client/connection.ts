/**
 * Where the client connects, first match wins:
 *
 * 1. an explicit API URL (`--api-url`);
 * 2. `IVA_BRIDGE_API_URL`;
 * 3. a deployed stack by name (`--stack NAME`): its CloudFormation outputs `ApiUrl` and
 *    `ApiKeyId`, and the key's value from API Gateway, read with the caller's AWS
 *    credentials (the usual chain: AWS_PROFILE, environment, SSO, instance role);
 * 4. the `.local/stack.json` that `npm start` writes (in the working directory, or this
 *    package's own folder; `IVA_BRIDGE_STACK_JSON` names another file).
 *
 * How requests are signed: with the client's access key (HMAC-SHA256, IVA's scheme; the
 * default), or with `auth: 'iam'` (`--auth iam`, `IVA_BRIDGE_AUTH=iam`) with the caller's
 * AWS credentials (SigV4, service execute-api) against the IAM API: `--stack` then reads
 * `IamApiUrl`, the local stack its `iamApiUrl` and the AWS key pair it knows; an explicit
 * URL is taken as the IAM API's, its region from the execute-api host (else --region or
 * AWS_REGION).
 *
 * The client access key (the default signing): `--access-key-id` /
 * `--secret-access-key`, else `IVA_BRIDGE_ACCESS_KEY_ID` / `IVA_BRIDGE_SECRET_ACCESS_KEY`,
 * else (4 only) the key `npm start` issued. An API key (`--api-key`, `IVA_BRIDGE_API_KEY`)
 * only names a usage plan: it is not a credential, and the API refuses a request that
 * carries nothing else (403 MissingSignature). The CLI refuses to connect with neither an
 * access key nor IAM signing (lib/cli/connect.ts); a Connection without either is for
 * callers that sign by themselves.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IvaBridgeError, IvaBridgeInputError } from './errors';
import { type AwsSigning, regionOfApiUrl } from './signing';

export const CONNECTION_ENV = {
  apiUrl: 'IVA_BRIDGE_API_URL',
  apiKey: 'IVA_BRIDGE_API_KEY',
  stackJson: 'IVA_BRIDGE_STACK_JSON',
  accessKeyId: 'IVA_BRIDGE_ACCESS_KEY_ID',
  secretAccessKey: 'IVA_BRIDGE_SECRET_ACCESS_KEY',
  auth: 'IVA_BRIDGE_AUTH',
} as const;

/** `client-key`: HMAC-SHA256 with an iva-bridge client key (ApiUrl); `iam`: SigV4 with AWS credentials (IamApiUrl). */
export type AuthMode = 'client-key' | 'iam';

export interface Connection {
  apiUrl: string;
  apiKey?: string;
  /** The client's access key (every API request is signed with it). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** `auth: 'iam'`: sign with SigV4 in this region, with these credentials (default: the SDK's provider chain). */
  aws?: AwsSigning;
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
  /** Default `IVA_BRIDGE_AUTH`, else `client-key`. */
  auth?: AuthMode;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

type StackJson = {
  apiUrl?: unknown;
  apiKey?: unknown;
  clientAccessKeyId?: unknown;
  clientSecretAccessKey?: unknown;
  iamApiUrl?: unknown;
  iamRegion?: unknown;
  awsAccessKeyId?: unknown;
  awsSecretAccessKey?: unknown;
};

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

/**
 * ApiUrl and the API key of a deployed stack, with the caller's AWS credentials; with
 * `auth: 'iam'`, its IamApiUrl (no API key: the IAM API takes none).
 */
export async function connectionFromStack(
  stackName: string,
  region?: string,
  auth: AuthMode = 'client-key',
): Promise<Connection> {
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
    if (auth === 'iam') {
      const iamApiUrl = output('IamApiUrl');
      if (!iamApiUrl)
        throw new IvaBridgeError(
          'StackUnreadable',
          `stack ${stackName} has no IamApiUrl output: was it deployed with -c iamPrincipals=none, or before the IAM API existed?`,
        );
      const apiRegion = regionOfApiUrl(iamApiUrl) ?? region ?? (await cfn.config.region());
      return { apiUrl: iamApiUrl, aws: { region: apiRegion }, source: 'stack', origin: stackName };
    }
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

function authOf(input: ConnectionInput, env: Record<string, string | undefined>): AuthMode {
  const raw = input.auth ?? (env[CONNECTION_ENV.auth] || undefined) ?? 'client-key';
  if (raw === 'iam' || raw === 'client-key') return raw;
  throw new IvaBridgeInputError(
    'InvalidAuth',
    `${CONNECTION_ENV.auth} / --auth takes client-key (the default: HMAC-SHA256 with a client key) or iam (SigV4 with your AWS credentials), got "${raw}"`,
  );
}

/** The IAM API's region: from its execute-api host, else --region, else AWS_REGION / AWS_DEFAULT_REGION. */
function iamRegionFor(apiUrl: string, input: ConnectionInput, env: Record<string, string | undefined>): string {
  const region = regionOfApiUrl(apiUrl) ?? input.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined);
  if (!region)
    throw new IvaBridgeInputError(
      'NoRegion',
      `cannot tell the AWS region to sign for from ${apiUrl}: pass --region or set AWS_REGION`,
    );
  return region;
}

export async function resolveConnection(input: ConnectionInput = {}): Promise<Connection> {
  const env = input.env ?? process.env;
  if (authOf(input, env) === 'iam') return resolveIamConnection(input, env);
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
  for (const path of stackJsonCandidates(input, env)) {
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
    `no API to talk to: pass --api-url URL, set ${CONNECTION_ENV.apiUrl}, pass --stack NAME (a deployed stack, read with your AWS credentials), each with your client access key (${CONNECTION_ENV.accessKeyId}, ${CONNECTION_ENV.secretAccessKey}), or run "npm start" (writes .local/stack.json with a key)`,
  );
}

/** Where npm start's stack.json may be: the named file, else the working folder's and this package's. */
function stackJsonCandidates(input: ConnectionInput, env: Record<string, string | undefined>): string[] {
  const cwd = input.cwd ?? process.cwd();
  const named = env[CONNECTION_ENV.stackJson];
  return named
    ? [isAbsolute(named) ? named : resolve(cwd, named)]
    : [...new Set([resolve(cwd, '.local/stack.json'), resolve(PACKAGE_ROOT, '.local/stack.json')])];
}

/** `auth: 'iam'`: where the IAM API is and how to sign for it; no client key, no API key. */
async function resolveIamConnection(
  input: ConnectionInput,
  env: Record<string, string | undefined>,
): Promise<Connection> {
  const explicit = input.apiUrl ?? (env[CONNECTION_ENV.apiUrl] || undefined);
  if (explicit)
    return {
      apiUrl: explicit,
      aws: { region: iamRegionFor(explicit, input, env) },
      source: input.apiUrl ? 'flags' : 'env',
    };
  if (input.stack) return connectionFromStack(input.stack, input.region, 'iam');
  for (const path of stackJsonCandidates(input, env)) {
    const facts = await readStackJson(path);
    if (!facts) continue;
    if (typeof facts.iamApiUrl !== 'string' || facts.iamApiUrl === '')
      throw new IvaBridgeInputError(
        'InvalidStackJson',
        `${path} has no iamApiUrl: the local stack serves no IAM API (restart npm start to rewrite it)`,
      );
    // The local IAM API knows only the key pair npm start generated (principal iamCallerArn).
    const credentials =
      typeof facts.awsAccessKeyId === 'string' && typeof facts.awsSecretAccessKey === 'string'
        ? { accessKeyId: facts.awsAccessKeyId, secretAccessKey: facts.awsSecretAccessKey }
        : undefined;
    return {
      apiUrl: facts.iamApiUrl,
      aws: {
        region: typeof facts.iamRegion === 'string' ? facts.iamRegion : iamRegionFor(facts.iamApiUrl, input, env),
        ...(credentials ? { credentials } : {}),
      },
      source: 'local',
      origin: path,
    };
  }
  throw new IvaBridgeInputError(
    'NoConnection',
    `no IAM API to talk to: pass --api-url URL (the stack's IamApiUrl), set ${CONNECTION_ENV.apiUrl}, pass --stack NAME, or run "npm start" (writes .local/stack.json)`,
  );
}
