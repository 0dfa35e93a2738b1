/**
 * `npm start`: the whole function set on this machine, built from the synthesized
 * template (local/stack). Every setting is listed in the README ("On one machine:
 * npm start"); `npm start -- --help` prints them.
 *
 * Runs until SIGINT/SIGTERM, then stops everything and exits 0. State (S3 objects, the
 * ledger, undelivered queue messages, the API key and callback secret) stays in
 * .local/state (IVA_BRIDGE_STATE_DIR) for the next start; `npm start -- --fresh` starts
 * from nothing.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV } from '../lib/config';
import { SWEEP_ENV } from '../lib/sweep/settings';
import {
  DEFAULT_STATE_DIR,
  startLocalStack,
  type ExternalS3,
  type LocalStack,
  type LocalStackOptions,
  type RealIva,
  type StackInfo,
} from '../local/stack/index';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every variable npm start reads besides the functions' own settings (README, "On one machine"). */
export const SETTINGS: ReadonlyArray<[name: string, fallback: string, meaning: string]> = [
  ['IVA_BRIDGE_API_PORT', '3000', 'API Gateway emulation (0 picks a free port, as for every port)'],
  ['IVA_BRIDGE_S3_PORT', '4569', 'embedded S3 (s3rver)'],
  ['IVA_BRIDGE_IVA_PORT', '4570', 'IVA sandbox'],
  ['IVA_BRIDGE_DDB_PORT', '4571', 'DynamoDB (dynalite)'],
  ['IVA_BRIDGE_EVENTS_PORT', '4572', 'EventBridge PutEvents endpoint'],
  ['IVA_BRIDGE_AWS_PORT', '4573', 'STS and Secrets Manager endpoint'],
  ['IVA_BRIDGE_IAM_API_PORT', '4574', "the IAM API (SigV4, the template's AWS_IAM methods)"],
  ['IVA_BRIDGE_BUCKET', 'iva-bridge-local', 'bucket name'],
  ['IVA_BRIDGE_API_KEY', 'random, kept in the state folder', 'x-api-key the API accepts'],
  ['IVA_BRIDGE_CALLBACK_SECRET', 'random, kept in the state folder', 'callback path secret'],
  ['IVA_BRIDGE_STATE_DIR', '.local/state', 'S3 objects, ledger, undelivered messages, keys (--fresh empties it)'],
  ['IVA_BRIDGE_STACK_JSON', '.local/stack.json', 'where the connection facts go'],
  ['IVA_BRIDGE_VISIBILITY_TIMEOUT_MS', "the template's (365 s)", 'SQS visibility timeout'],
  ['IVA_BRIDGE_MAX_RECEIVE_COUNT', "the template's (5)", 'receives before the dead-letter list'],
  ['IVA_BRIDGE_SANDBOX_CALLBACK_DELAY_MS', '1000', 'sandbox delay before posting a result'],
  ['IVA_BRIDGE_FUNCTION_NODE', 'Node 22 from npx', 'Node binary the function processes run on'],
  ['IVA_BRIDGE_S3', 's3rver', '`ceph`: the Ceph RGW of scripts/ceph-rgw.sh (CEPH_S3_* from .local/ceph/env)'],
  [
    'IVA_BRIDGE_S3_ENDPOINT',
    '',
    'any S3 endpoint with Ceph-style notifications, with _ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _REGION',
  ],
  ['IVA_ENDPOINT', 'the sandbox', 'the real IVA (with VOLC_ACCESSKEY / VOLC_SECRETKEY; IVA_REGION, IVA_SERVICE)'],
  ['VOLC_ACCESSKEY / VOLC_SECRETKEY', "the sandbox's key", 'without IVA_ENDPOINT: the key pair the sandbox accepts'],
];

/** The functions' own settings that pass from npm start's environment to every function. */
export const FUNCTION_SETTINGS: readonly string[] = [
  ENV.defaultTaskId,
  ENV.ivaTimeoutMs,
  ENV.ivaConcurrency,
  ENV.ivaPacing,
  ENV.ivaRateLimit,
  ENV.presignTtlSeconds,
  ENV.uploadUrlTtlSeconds,
  ENV.directMaxBytes,
  ENV.eventBusName,
  SWEEP_ENV.overdueAfterSeconds,
  SWEEP_ENV.expireUploadsAfterSeconds,
  SWEEP_ENV.abandonedAfterSeconds,
  'POWERTOOLS_LOG_LEVEL',
  'LOG_LEVEL',
  'POWERTOOLS_METRICS_DISABLED',
];
const env = process.env;
// Node 20 runs this fine; the SDK's notice is about its releases after January 2027.
env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function port(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535)
    throw new Error(`${name} must be a port number (0 picks a free one), got "${raw}"`);
  return value;
}

function positive(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
}

function externalS3(): ExternalS3 | undefined {
  if (env.IVA_BRIDGE_S3_ENDPOINT) {
    const accessKeyId = env.IVA_BRIDGE_S3_ACCESS_KEY_ID;
    const secretAccessKey = env.IVA_BRIDGE_S3_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey)
      throw new Error('IVA_BRIDGE_S3_ENDPOINT needs IVA_BRIDGE_S3_ACCESS_KEY_ID and IVA_BRIDGE_S3_SECRET_ACCESS_KEY');
    return {
      endpoint: env.IVA_BRIDGE_S3_ENDPOINT,
      accessKeyId,
      secretAccessKey,
      region: env.IVA_BRIDGE_S3_REGION || 'us-east-1',
      notifications: 'ceph',
    };
  }
  if (env.IVA_BRIDGE_S3 === 'ceph') {
    const endpoint = env.CEPH_S3_ENDPOINT;
    const accessKeyId = env.CEPH_S3_ACCESS_KEY_ID;
    const secretAccessKey = env.CEPH_S3_SECRET_ACCESS_KEY;
    if (!endpoint || !accessKeyId || !secretAccessKey)
      throw new Error(
        'IVA_BRIDGE_S3=ceph needs CEPH_S3_ENDPOINT, CEPH_S3_ACCESS_KEY_ID and CEPH_S3_SECRET_ACCESS_KEY (source .local/ceph/env after scripts/ceph-rgw.sh start)',
      );
    return { endpoint, accessKeyId, secretAccessKey, region: env.CEPH_S3_REGION || 'us-east-1', notifications: 'ceph' };
  }
  return undefined;
}

function volcKeys(): RealIva['credentials'] | undefined {
  const accessKeyId = env[ENV.volcAccessKey];
  const secretAccessKey = env[ENV.volcSecretKey];
  if (!accessKeyId || !secretAccessKey) return undefined;
  return {
    accessKeyId,
    secretAccessKey,
    ...(env[ENV.volcSessionToken] ? { sessionToken: env[ENV.volcSessionToken] } : {}),
  };
}

function realIva(): RealIva | undefined {
  const endpoint = env[ENV.ivaEndpoint];
  if (!endpoint) return undefined;
  const credentials = volcKeys();
  if (!credentials)
    throw new Error(
      `${ENV.ivaEndpoint} is set, so the stack calls the real IVA: set ${ENV.volcAccessKey} and ${ENV.volcSecretKey} too (or unset ${ENV.ivaEndpoint} to use the sandbox)`,
    );
  return {
    endpoint,
    credentials,
    ...(env[ENV.ivaRegion] ? { region: env[ENV.ivaRegion] } : {}),
    ...(env[ENV.ivaService] ? { service: env[ENV.ivaService] } : {}),
  };
}

function banner(info: StackInfo, stateDir: string): string {
  const s3 = `AWS_ACCESS_KEY_ID=${info.s3AccessKeyId} AWS_SECRET_ACCESS_KEY=${info.s3SecretAccessKey} AWS_REGION=${info.s3Region}`;
  const sandbox =
    info.ivaMode === 'sandbox'
      ? `  IVA          ${info.ivaEndpoint}  (local sandbox; its key: VOLC_ACCESSKEY=${info.sandboxAccessKeyId} VOLC_SECRETKEY=${info.sandboxSecretAccessKey})`
      : `  IVA          ${info.ivaEndpoint}  (REAL endpoint: submissions are processed and billed)`;
  return [
    '',
    'iva-bridge local stack is ready',
    `  S3           ${info.s3Endpoint}  bucket ${info.bucket}  (path-style; access key ${info.s3AccessKeyId}, secret ${info.s3SecretAccessKey})`,
    `  API          ${info.apiUrl}  (requests are signed, HMAC-SHA256 as IVA's; usage plan key ${info.apiKey})`,
    `  client key   IVA_BRIDGE_ACCESS_KEY_ID=${info.clientAccessKeyId} IVA_BRIDGE_SECRET_ACCESS_KEY=${info.clientSecretAccessKey}  (client local; more: npx iva-bridge keys issue --client NAME)`,
    ...(info.iamApiUrl
      ? [
          `  IAM API      ${info.iamApiUrl}  (SigV4, service execute-api, region ${info.iamRegion}; caller ${info.iamCallerArn}: AWS_ACCESS_KEY_ID=${info.awsAccessKeyId} AWS_SECRET_ACCESS_KEY=${info.awsSecretAccessKey}; npx iva-bridge --auth iam …)`,
        ]
      : []),
    `  callback URL ${info.apiUrl}callbacks/<secret>  (full URL in the stack JSON file: it holds the secret)`,
    sandbox,
    `  DynamoDB     ${info.dynamodbEndpoint}   EventBridge ${info.eventBridgeEndpoint} (events also at ${info.apiUrl}__local/events)`,
    `  dead letters ${info.apiUrl}__local/dead-letters  (POST ${info.apiUrl}__local/dead-letters/redrive sends them back)`,
    `  state        ${stateDir}  (kept across restarts; npm start -- --fresh starts from nothing)`,
    '',
    'Try it (in another shell, from the repository):',
    `  export API_URL=${info.apiUrl}`,
    `  # upload: becomes a Source=url submission (objects under incoming/<TaskID>/ are submitted)`,
    `  ${s3} aws --endpoint-url ${info.s3Endpoint} s3 cp docs/samples/cat.jpg s3://${info.bucket}/incoming/demo/cat.jpg`,
    `  # direct multipart submission, IVA's own format`,
    `  npx iva-bridge api v1/images -F 'Request={"TaskID":"demo","Image":{"Name":"cat.jpg","Source":"file"}}' -F ImageFile=@docs/samples/cat.jpg`,
    `  # status of the whole task (iva-bridge api signs with the client key of .local/stack.json)`,
    `  npx iva-bridge api v1/tasks/demo/submissions`,
    `  # or the command line: sends, waits, saves the results`,
    `  npx iva-bridge send docs/samples/cat.jpg docs/samples/clip.mp4 --task-id demo --wait --out results/`,
    '',
    'Ctrl-C stops everything; what was accepted is kept.',
    '',
  ].join('\n');
}

function usage(): string {
  const width = Math.max(...SETTINGS.map(([name]) => name.length));
  return [
    'npm start [-- --fresh]   the whole stack on 127.0.0.1, built from the synthesized template',
    '',
    '  --fresh   remove the state folder first (S3 objects, ledger, queue, API key, callback secret)',
    '',
    'Environment:',
    ...SETTINGS.map(
      ([name, fallback, meaning]) => `  ${name.padEnd(width)}  ${meaning}${fallback ? ` (default: ${fallback})` : ''}`,
    ),
    `  ${'and'.padEnd(width)}  the functions' own settings: ${FUNCTION_SETTINGS.join(', ')}`,
  ].join('\n');
}

/** The variable that sets the port a start failed on, for the error message. */
function portVariable(err: unknown, ports: Record<string, number>): string | undefined {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e?.code !== 'EADDRINUSE') return undefined;
  const name = Object.entries(ports).find(([, p]) => p === e.port)?.[0];
  return name
    ? `port ${e.port} is in use: set ${name} to another port (or 0 for a free one), e.g. ${name}=0 npm start`
    : `port ${e.port ?? '?'} is in use: set the IVA_BRIDGE_*_PORT variable that names it to another port (0 picks a free one)`;
}

const readPorts = () => ({
  IVA_BRIDGE_API_PORT: port('IVA_BRIDGE_API_PORT', 3000),
  IVA_BRIDGE_S3_PORT: port('IVA_BRIDGE_S3_PORT', 4569),
  IVA_BRIDGE_IVA_PORT: port('IVA_BRIDGE_IVA_PORT', 4570),
  IVA_BRIDGE_DDB_PORT: port('IVA_BRIDGE_DDB_PORT', 4571),
  IVA_BRIDGE_EVENTS_PORT: port('IVA_BRIDGE_EVENTS_PORT', 4572),
  IVA_BRIDGE_AWS_PORT: port('IVA_BRIDGE_AWS_PORT', 4573),
  IVA_BRIDGE_IAM_API_PORT: port('IVA_BRIDGE_IAM_API_PORT', 4574),
});

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage());
    return;
  }
  const unknown = args.filter((a) => a !== '--fresh');
  if (unknown.length) throw new Error(`unknown argument ${unknown[0]}\n${usage()}`);
  const PORTS = readPorts();
  const stateDir = resolve(REPO_ROOT, env.IVA_BRIDGE_STATE_DIR || DEFAULT_STATE_DIR);
  if (args.includes('--fresh')) {
    await rm(stateDir, { recursive: true, force: true });
    console.log(`--fresh: removed ${stateDir}`);
  }
  const functionEnv = Object.fromEntries(
    FUNCTION_SETTINGS.filter((name) => env[name] !== undefined && env[name] !== '').map((name) => [name, env[name]!]),
  );
  const iva = realIva();
  const options: LocalStackOptions = {
    ports: {
      api: PORTS.IVA_BRIDGE_API_PORT,
      s3: PORTS.IVA_BRIDGE_S3_PORT,
      iva: PORTS.IVA_BRIDGE_IVA_PORT,
      dynamodb: PORTS.IVA_BRIDGE_DDB_PORT,
      eventBridge: PORTS.IVA_BRIDGE_EVENTS_PORT,
      aws: PORTS.IVA_BRIDGE_AWS_PORT,
      iamApi: PORTS.IVA_BRIDGE_IAM_API_PORT,
    },
    stateDir,
    functionEnv,
    ...(env.IVA_BRIDGE_BUCKET ? { bucket: env.IVA_BRIDGE_BUCKET } : {}),
    ...(env.IVA_BRIDGE_API_KEY ? { apiKey: env.IVA_BRIDGE_API_KEY } : {}),
    ...(env.IVA_BRIDGE_CALLBACK_SECRET ? { callbackSecret: env.IVA_BRIDGE_CALLBACK_SECRET } : {}),
    ...(env.IVA_BRIDGE_RESULT_WEBHOOK_URL
      ? {
          webhook: {
            url: env.IVA_BRIDGE_RESULT_WEBHOOK_URL,
            // The deployed stack generates it in Secrets Manager; locally it is yours to set.
            secret: env.IVA_BRIDGE_RESULT_WEBHOOK_SECRET || 'local-webhook-secret',
          },
        }
      : {}),
    ...(externalS3() ? { s3: externalS3() } : {}),
    ...(iva ? { iva } : {}),
    ...(!iva && volcKeys() ? { sandboxCredentials: volcKeys() } : {}),
    sandbox: { callbackDelayMs: positive('IVA_BRIDGE_SANDBOX_CALLBACK_DELAY_MS', 1000) },
    sqs: {
      ...(env.IVA_BRIDGE_VISIBILITY_TIMEOUT_MS
        ? { visibilityTimeoutMs: positive('IVA_BRIDGE_VISIBILITY_TIMEOUT_MS', 0) }
        : {}),
      ...(env.IVA_BRIDGE_MAX_RECEIVE_COUNT
        ? { maxReceiveCount: positive('IVA_BRIDGE_MAX_RECEIVE_COUNT', 5) || 5 }
        : {}),
    },
  };
  const jsonPath = resolve(REPO_ROOT, env.IVA_BRIDGE_STACK_JSON || '.local/stack.json');

  let stack: LocalStack | undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the local stack...`);
    void (async () => {
      await rm(jsonPath, { force: true }).catch(() => undefined);
      await stack?.close();
      console.log('stopped.');
      process.exit(0);
    })().catch((err: unknown) => {
      console.error(`stopping failed: ${(err as Error).message}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const started = Date.now();
  try {
    stack = await startLocalStack(options);
  } catch (err) {
    throw new Error(portVariable(err, PORTS) ?? (err as Error).message);
  }
  if (stopping) return;
  await mkdir(dirname(jsonPath), { recursive: true });
  const json = {
    s3Endpoint: stack.s3Endpoint,
    s3AccessKeyId: stack.s3AccessKeyId,
    s3SecretAccessKey: stack.s3SecretAccessKey,
    s3Region: stack.s3Region,
    bucket: stack.bucket,
    apiUrl: stack.apiUrl,
    apiKey: stack.apiKey,
    clientAccessKeyId: stack.clientAccessKeyId,
    clientSecretAccessKey: stack.clientSecretAccessKey,
    clientKeyPrefix: stack.clientKeyPrefix,
    awsEndpoint: stack.awsEndpoint,
    callbackUrl: stack.callbackUrl,
    ivaEndpoint: stack.ivaEndpoint,
    ivaMode: stack.ivaMode,
    dynamodbEndpoint: stack.dynamodbEndpoint,
    eventBridgeEndpoint: stack.eventBridgeEndpoint,
    ...(stack.iamApiUrl
      ? {
          iamApiUrl: stack.iamApiUrl,
          iamRegion: stack.iamRegion,
          awsAccessKeyId: stack.awsAccessKeyId,
          awsSecretAccessKey: stack.awsSecretAccessKey,
          iamCallerArn: stack.iamCallerArn,
        }
      : {}),
    ...(stack.sandboxAccessKeyId
      ? { sandboxAccessKeyId: stack.sandboxAccessKeyId, sandboxSecretAccessKey: stack.sandboxSecretAccessKey }
      : {}),
  };
  // Written last, in one go, and only readable by this user: it holds the keys.
  const tmp = `${jsonPath}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, jsonPath);
  console.log(banner(stack.info, stateDir));
  console.log(`Connection details: ${jsonPath} (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

main().catch((err: unknown) => {
  console.error(`local stack failed to start: ${(err as Error).message}`);
  process.exit(1);
});
