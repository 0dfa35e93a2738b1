/**
 * `npm start`: the whole function set on this machine (local/stack). Environment:
 *
 *   IVA_BRIDGE_API_PORT=3000      API Gateway emulation (POST /v1/images, /callbacks/{secret}, ...)
 *   IVA_BRIDGE_S3_PORT=4569       embedded S3 (s3rver)
 *   IVA_BRIDGE_IVA_PORT=4570      IVA sandbox
 *   IVA_BRIDGE_DDB_PORT=4571      DynamoDB (dynalite)
 *   IVA_BRIDGE_EVENTS_PORT=4572   EventBridge PutEvents endpoint
 *                                 (any port set to 0 picks a free one)
 *   IVA_BRIDGE_BUCKET             bucket name (default iva-bridge-local)
 *   IVA_BRIDGE_API_KEY            x-api-key to accept (default: random, printed)
 *   IVA_BRIDGE_CALLBACK_SECRET    callback path secret (default: random)
 *   IVA_BRIDGE_STACK_JSON         where the connection details go (default .local/stack.json)
 *   IVA_BRIDGE_VISIBILITY_TIMEOUT_MS   SQS visibility timeout (default 30000)
 *   IVA_BRIDGE_MAX_RECEIVE_COUNT       receives before the dead-letter list (default 5)
 *   IVA_BRIDGE_SANDBOX_CALLBACK_DELAY_MS   sandbox delay before posting a result (default 1000)
 *
 * S3 elsewhere (instead of s3rver): IVA_BRIDGE_S3_ENDPOINT, IVA_BRIDGE_S3_ACCESS_KEY_ID,
 * IVA_BRIDGE_S3_SECRET_ACCESS_KEY (IVA_BRIDGE_S3_REGION, default us-east-1) — a Ceph RGW,
 * whose bucket notifications feed the queue; or IVA_BRIDGE_S3=ceph to take the CEPH_S3_*
 * variables written by `scripts/ceph-rgw.sh start` (.local/ceph/env).
 *
 * Real IVA (instead of the sandbox): IVA_ENDPOINT=https://open.volcengineapi.com with
 * VOLC_ACCESSKEY / VOLC_SECRETKEY. IVA then needs a callback URL it can reach (a tunnel
 * to the API port); the printed one is local.
 *
 * The functions' own settings (DEFAULT_TASK_ID, POWERTOOLS_LOG_LEVEL, ...) pass through.
 * Runs until SIGINT/SIGTERM, then stops everything and exits 0.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV } from '../lib/config';
import {
  startLocalStack,
  type ExternalS3,
  type LocalStack,
  type LocalStackOptions,
  type RealIva,
  type StackInfo,
} from '../local/stack/index';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
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

function banner(info: StackInfo): string {
  const s3 = `AWS_ACCESS_KEY_ID=${info.s3AccessKeyId} AWS_SECRET_ACCESS_KEY=${info.s3SecretAccessKey} AWS_REGION=${info.s3Region}`;
  return [
    '',
    'iva-bridge local stack is ready',
    `  S3           ${info.s3Endpoint}  bucket ${info.bucket}  (path-style; access key ${info.s3AccessKeyId}, secret ${info.s3SecretAccessKey})`,
    `  API          ${info.apiUrl}  (header x-api-key: ${info.apiKey})`,
    `  callback URL ${info.apiUrl}/callbacks/<secret>  (full URL in the stack JSON file: it holds the secret)`,
    `  IVA          ${info.ivaEndpoint}  (${info.ivaMode === 'sandbox' ? 'local sandbox: control at /__sandbox/{submissions,callbacks,faults,reset}' : 'REAL endpoint: submissions are processed and billed'})`,
    `  DynamoDB     ${info.dynamodbEndpoint}   EventBridge ${info.eventBridgeEndpoint} (events also at ${info.apiUrl}/__local/events)`,
    `  dead letters ${info.apiUrl}/__local/dead-letters  (POST ${info.apiUrl}/__local/dead-letters/redrive sends them back)`,
    '',
    'Try it:',
    `  # upload: becomes a Source=url submission (objects under incoming/<TaskID>/ are submitted)`,
    `  ${s3} aws --endpoint-url ${info.s3Endpoint} s3 cp ./cat.jpg s3://${info.bucket}/incoming/demo/cat.jpg`,
    `  # direct multipart submission, IVA's own format`,
    `  curl -H "x-api-key: ${info.apiKey}" -F 'Request={"TaskID":"demo","Image":{"Name":"cat.jpg","Source":"file"}}' -F 'ImageFile=@cat.jpg' ${info.apiUrl}/v1/images`,
    `  # status of one submission (SubmissionId from the answer above), or of the whole task`,
    `  curl -H "x-api-key: ${info.apiKey}" ${info.apiUrl}/v1/submissions/SUBMISSION_ID`,
    `  curl -H "x-api-key: ${info.apiKey}" ${info.apiUrl}/v1/tasks/demo/submissions`,
    `  # large files: ask for an upload URL, then PUT the file with the returned Headers`,
    `  curl -H "x-api-key: ${info.apiKey}" -H 'content-type: application/json' -d '{"TaskID":"demo","Kind":"video","Name":"clip.mp4","ContentType":"video/mp4","Size":12345678}' ${info.apiUrl}/v1/uploads`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const iva = realIva();
  const options: LocalStackOptions = {
    ports: {
      api: port('IVA_BRIDGE_API_PORT', 3000),
      s3: port('IVA_BRIDGE_S3_PORT', 4569),
      iva: port('IVA_BRIDGE_IVA_PORT', 4570),
      dynamodb: port('IVA_BRIDGE_DDB_PORT', 4571),
      eventBridge: port('IVA_BRIDGE_EVENTS_PORT', 4572),
    },
    ...(env.IVA_BRIDGE_BUCKET ? { bucket: env.IVA_BRIDGE_BUCKET } : {}),
    ...(env.IVA_BRIDGE_API_KEY ? { apiKey: env.IVA_BRIDGE_API_KEY } : {}),
    ...(env.IVA_BRIDGE_CALLBACK_SECRET ? { callbackSecret: env.IVA_BRIDGE_CALLBACK_SECRET } : {}),
    ...(externalS3() ? { s3: externalS3() } : {}),
    ...(iva ? { iva } : {}),
    ...(!iva && volcKeys() ? { sandboxCredentials: volcKeys() } : {}),
    sandbox: { callbackDelayMs: positive('IVA_BRIDGE_SANDBOX_CALLBACK_DELAY_MS', 1000) },
    sqs: {
      visibilityTimeoutMs: positive('IVA_BRIDGE_VISIBILITY_TIMEOUT_MS', 30_000),
      maxReceiveCount: positive('IVA_BRIDGE_MAX_RECEIVE_COUNT', 5) || 5,
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

  stack = await startLocalStack(options);
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
    callbackUrl: stack.callbackUrl,
    ivaEndpoint: stack.ivaEndpoint,
    ivaMode: stack.ivaMode,
    dynamodbEndpoint: stack.dynamodbEndpoint,
    eventBridgeEndpoint: stack.eventBridgeEndpoint,
  };
  // Written last, in one go, and only readable by this user: it holds the keys.
  const tmp = `${jsonPath}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, jsonPath);
  console.log(banner(stack.info));
  console.log(`Connection details: ${jsonPath}`);
}

main().catch((err: unknown) => {
  console.error(`local stack failed to start: ${(err as Error).message}`);
  process.exit(1);
});
