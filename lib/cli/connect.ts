/** What every command that talks to iva-bridge's own API shares: where it connects, how it fails. */
import { createIvaBridgeClient, type IvaBridgeClient, type IvaBridgeClientOptions } from '../client/client';
import { type AuthMode, resolveConnection } from '../client/connection';
import { IvaBridgeError, IvaBridgeInputError } from '../client/errors';
import { EXIT_IVA, EXIT_USAGE, type CliIo } from './submit';

export const CONNECTION_OPTIONS = {
  'api-url': { type: 'string' },
  'api-key': { type: 'string' },
  'access-key-id': { type: 'string' },
  'secret-access-key': { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  auth: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CONNECTION_HELP = `Where it connects (first match wins):
  --api-url URL                 the API's base URL (stage included)
  IVA_BRIDGE_API_URL            the same from the environment
  --stack NAME [--region R]     a deployed stack: its ApiUrl, read with your AWS
                                credentials (cloudformation:DescribeStacks)
  (nothing)                     the local stack of "npm start" (.local/stack.json, with
                                the client key it issued)
Every request is signed with your client access key (iva-bridge keys issue):
  --access-key-id AK --secret-access-key SK, or
  IVA_BRIDGE_ACCESS_KEY_ID, IVA_BRIDGE_SECRET_ACCESS_KEY
or, inside AWS, with your AWS credentials (SigV4, the stack's IAM API):
  --auth iam / IVA_BRIDGE_AUTH=iam   the default provider chain (AWS_PROFILE, environment,
                                SSO, role); --stack NAME reads IamApiUrl, --api-url takes
                                it directly, npm start's IAM API is used locally`;

export class UsageError extends Error {}

export interface ConnectionValues {
  'api-url'?: string;
  'api-key'?: string;
  'access-key-id'?: string;
  'secret-access-key'?: string;
  stack?: string;
  region?: string;
  auth?: string;
}

export async function connect(
  values: ConnectionValues,
  io: CliIo,
  clientOptions: Omit<IvaBridgeClientOptions, 'apiUrl' | 'apiKey'> = {},
): Promise<IvaBridgeClient> {
  const connection = await resolveConnection({
    ...(values['api-url'] ? { apiUrl: values['api-url'] } : {}),
    ...(values['api-key'] ? { apiKey: values['api-key'] } : {}),
    ...(values['access-key-id'] ? { accessKeyId: values['access-key-id'] } : {}),
    ...(values['secret-access-key'] ? { secretAccessKey: values['secret-access-key'] } : {}),
    ...(values.stack ? { stack: values.stack } : {}),
    ...(values.region ? { region: values.region } : {}),
    ...(values.auth ? { auth: authMode(values.auth) } : {}),
    env: io.env,
  });
  // Every route but IVA's callback takes a signed request: without an access key (or IAM
  // signing) every call would be refused (403 MissingSignature). An API key alone
  // (--api-key, IVA_BRIDGE_API_KEY) only names a usage plan, so say so before sending anything.
  if (!connection.credentials && !connection.aws)
    throw new IvaBridgeInputError(
      'MissingCredentials',
      `no client access key for ${connection.apiUrl}: every request is signed with one (npx iva-bridge keys issue); pass --access-key-id and --secret-access-key, or set IVA_BRIDGE_ACCESS_KEY_ID and IVA_BRIDGE_SECRET_ACCESS_KEY, or sign with AWS credentials (--auth iam); an API key alone is not a credential`,
    );
  return createIvaBridgeClient({
    ...(io.fetch ? { fetch: io.fetch } : {}),
    ...clientOptions,
    apiUrl: connection.apiUrl,
    ...(connection.apiKey ? { apiKey: connection.apiKey } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
    ...(connection.aws ? { aws: connection.aws } : {}),
  });
}

/** `--auth client-key|iam`. */
export function authMode(value: string): AuthMode {
  if (value === 'iam' || value === 'client-key') return value;
  throw new UsageError(`--auth takes client-key or iam, got "${value}"`);
}

/** One line, never the API key, whatever a message carries. */
export function cliLine(text: string, secrets: (string | undefined)[] = []): string {
  let out = text.replace(/[\r\n]+/g, ' ');
  for (const secret of secrets) if (secret && secret.length >= 8) out = out.split(secret).join('***');
  return `${out}\n`;
}

/** `Code: Message (RequestId …) [HTTP n]`, like `iva-bridge submit`'s error lines. */
export function describeError(error: unknown): string {
  if (error instanceof IvaBridgeError) {
    const rid = error.requestId ? ` (RequestId ${error.requestId})` : '';
    const status = error.status !== undefined ? ` [HTTP ${error.status}]` : '';
    return `${error.code}: ${error.message}${rid}${status}`;
  }
  return `unexpected failure: ${(error as Error)?.message ?? String(error)}`;
}

/** Exit code for an error: 2 when nothing was sent because of local input, else 1. */
export function exitCodeOf(error: unknown): number {
  return error instanceof IvaBridgeInputError || error instanceof UsageError ? EXIT_USAGE : EXIT_IVA;
}

export function failWith(command: string, io: CliIo, error: unknown): number {
  const message =
    error instanceof UsageError
      ? `${error.message} (see --help)`
      : error instanceof IvaBridgeInputError
        ? error.message
        : describeError(error);
  io.stderr.write(
    cliLine(`iva-bridge ${command}: ${message}`, [io.env.IVA_BRIDGE_API_KEY, io.env.IVA_BRIDGE_SECRET_ACCESS_KEY]),
  );
  return exitCodeOf(error);
}
