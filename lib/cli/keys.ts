/**
 * `iva-bridge keys issue|rotate|revoke|list`: the client access keys the API's authorizer
 * accepts (lib/client-auth/keys.ts), one Secrets Manager secret per key.
 *
 * Deployed (`--stack NAME`, your AWS credentials): the stack's `ClientKeyPrefix` and
 * `UsagePlanId` outputs; `issue` also creates the client's own API Gateway API key and
 * adds it to the usage plan (its throttle and quota count that client alone), `rotate`
 * reuses it. Local (default: the `.local/stack.json` of `npm start`): the local Secrets
 * Manager stand-in, and every client counts against the local API key.
 */
import { parseArgs } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createClientKeyStore, type ClientKeyStore } from '../client-auth/keys';
import { cliLine } from './connect';
import { EXIT_IVA, EXIT_OK, EXIT_USAGE, type CliIo } from './submit';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

export const KEYS_HELP = `Usage: iva-bridge keys issue --client NAME      a new key for a new client
       iva-bridge keys rotate --client NAME     a second key for a client (both work until you revoke one)
       iva-bridge keys revoke ACCESS_KEY_ID     delete a key (refused within 60 s everywhere)
       iva-bridge keys list                     every key: access key id and client, never secrets
Where (first match wins):
  --stack NAME [--region R]   a deployed stack, with your AWS credentials (cloudformation:DescribeStacks,
                              secretsmanager:CreateSecret/DeleteSecret/ListSecrets/GetSecretValue on its
                              prefix; issue also apigateway:POST for the client's usage plan key)
  (nothing)                   the local stack of "npm start" (.local/stack.json, or IVA_BRIDGE_STACK_JSON)
issue and rotate print {"accessKeyId","secretAccessKey","client"} once: the secret is not shown again.
`;

interface Target {
  store: ClientKeyStore;
  /** The usage plan key value for a new client. */
  usageKeyFor(client: string): Promise<string>;
  close(): void;
}

async function localTarget(env: CliIo['env']): Promise<Target> {
  const path = resolve(env.IVA_BRIDGE_STACK_JSON || '.local/stack.json');
  let facts: { awsEndpoint?: string; clientKeyPrefix?: string; apiKey?: string; s3Region?: string };
  try {
    facts = JSON.parse(await readFile(path, 'utf8')) as typeof facts;
  } catch {
    throw new Error(`no local stack: ${path} is missing (run npm start, or pass --stack NAME)`);
  }
  if (!facts.awsEndpoint || !facts.clientKeyPrefix || !facts.apiKey)
    throw new Error(`${path} has no awsEndpoint/clientKeyPrefix: restart npm start to rewrite it`);
  const sm = new SecretsManagerClient({
    endpoint: facts.awsEndpoint,
    region: facts.s3Region ?? 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const apiKey = facts.apiKey;
  return {
    store: createClientKeyStore(sm, facts.clientKeyPrefix),
    usageKeyFor: async () => apiKey,
    close: () => sm.destroy(),
  };
}

async function stackTarget(stack: string, region: string | undefined): Promise<Target> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const { APIGatewayClient, CreateApiKeyCommand, CreateUsagePlanKeyCommand } = await import(
    '@aws-sdk/client-api-gateway'
  );
  const config = region ? { region } : {};
  const cfn = new CloudFormationClient(config);
  const outputs = (await cfn.send(new DescribeStacksCommand({ StackName: stack }))).Stacks?.[0]?.Outputs ?? [];
  cfn.destroy();
  const output = (key: string) => outputs.find((o) => o.OutputKey === key)?.OutputValue;
  const prefix = output('ClientKeyPrefix');
  const usagePlanId = output('UsagePlanId');
  if (!prefix || !usagePlanId)
    throw new Error(`stack ${stack} has no ClientKeyPrefix/UsagePlanId output: deploy this version first`);
  const sm = new SecretsManagerClient(config);
  const apigw = new APIGatewayClient(config);
  return {
    store: createClientKeyStore(sm, prefix),
    async usageKeyFor(client) {
      const key = await apigw.send(
        new CreateApiKeyCommand({
          name: `iva-bridge-${stack}-${client}`,
          enabled: true,
          description: `usage of client ${client}`,
        }),
      );
      if (!key.id || !key.value) throw new Error('API Gateway created an API key without id or value');
      await apigw.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId: key.id, keyType: 'API_KEY' }));
      return key.value;
    },
    close: () => {
      sm.destroy();
      apigw.destroy();
    },
  };
}

export async function runKeys(args: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{
      options: {
        client: { type: 'string' };
        stack: { type: 'string' };
        region: { type: 'string' };
        help: { type: 'boolean'; short: 'h' };
      };
      allowPositionals: true;
      args: string[];
      strict: true;
    }>
  >;
  try {
    parsed = parseArgs({
      args,
      options: {
        client: { type: 'string' },
        stack: { type: 'string' },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    io.stderr.write(cliLine(`iva-bridge keys: ${(error as Error).message} (see --help)`));
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (values.help || !action) {
    (values.help ? io.stdout : io.stderr).write(KEYS_HELP);
    return values.help ? EXIT_OK : EXIT_USAGE;
  }
  const usage = (message: string) => {
    io.stderr.write(cliLine(`iva-bridge keys: ${message} (see --help)`));
    return EXIT_USAGE;
  };
  if ((action === 'issue' || action === 'rotate') && !values.client) return usage(`${action} needs --client NAME`);
  if (action === 'revoke' && rest.length !== 1) return usage('revoke needs one ACCESS_KEY_ID');
  if (!['issue', 'rotate', 'revoke', 'list'].includes(action)) return usage(`unknown action "${action}"`);
  let target: Target | undefined;
  try {
    target = values.stack ? await stackTarget(values.stack, values.region) : await localTarget(io.env);
    if (action === 'list') {
      for (const key of await target.store.list()) io.stdout.write(`${JSON.stringify(key)}\n`);
    } else if (action === 'revoke') {
      await target.store.revoke(rest[0] as string);
      io.stdout.write(`${JSON.stringify({ revoked: rest[0] })}\n`);
    } else {
      const client = values.client as string;
      const key =
        action === 'issue'
          ? await target.store.issue(client, await target.usageKeyFor(client))
          : await target.store.rotate(client);
      io.stdout.write(
        `${JSON.stringify({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, client: key.client, createdAt: key.createdAt })}\n`,
      );
    }
    return EXIT_OK;
  } catch (error) {
    const e = error as { code?: string; name?: string; message?: string };
    io.stderr.write(
      cliLine(`iva-bridge keys ${action}: ${e.code ?? e.name ?? 'Error'}: ${e.message ?? String(error)}`),
    );
    return EXIT_IVA;
  } finally {
    target?.close();
  }
}
