/**
 * The whole function set on one machine (docs/contract.md, "On one machine"), built from
 * the synthesized CloudFormation template (local/stack/template.ts): dynalite with the
 * template's ledger table, an S3 (embedded s3rver, or any S3 endpoint such as the
 * project's Ceph RGW) whose ObjectCreated events pass the template's notification filter
 * into a queue with the template's visibility timeout and redrive policy, consumed by the
 * template's event source mapping; the IVA sandbox (or the real IVA endpoint); a local
 * EventBridge, STS and Secrets Manager; and an API Gateway emulation with the template's
 * routes, API keys, authorizer and gateway responses. Each function runs in its own
 * processes (local/stack/function-host.ts) with the template's environment, timeout,
 * memory and concurrency; `handlers` replaces them with in-process stand-ins in tests of
 * the stack itself.
 *
 * With `stateDir`, the S3 objects, the ledger, the queue's undelivered messages, the API
 * key and the callback secret survive a restart (npm start keeps them in .local/state).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type CreateTableCommandInput, CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { isAwsError } from '../../lib/aws/errors';
import { clientKeyPrefix, createClientKeyStore } from '../../lib/client-auth/keys';
import { DEFAULTS, ENV } from '../../lib/config';
import type { LocalStackFacts } from '../../lib/smoke/local';
import { createS3Client } from '../../lib/storage/s3-client';
import { SWEEP_ENV } from '../../lib/sweep/settings';
import type { VolcCredentials } from '../../lib/signer/index';
import { DEFAULT_SANDBOX_CREDENTIALS, startIvaSandbox, type IvaSandbox } from '../iva-sandbox/index';
import type { IvaSandboxOptions } from '../iva-sandbox/types';
import { enableBucketNotifications } from '../servers/ceph';
import { startDynalite } from '../servers/dynalite';
import { startS3rver, type LocalS3 } from '../servers/s3rver';
import { startApiGateway } from './api-gateway';
import type { KnownAwsKey } from './sigv4';
import { type CreatedSecret, startLocalAwsEndpoints } from './aws-endpoints';
import { disableNotifications, startNotificationReceiver, type NotificationReceiver } from './ceph-notifications';
import { type LocalEventBridge, startEventBridge, type RecordedEvent } from './eventbridge';
import { deliverWebhooks } from './webhook';
import { bundleFunctions } from './bundle';
import { FunctionHost } from './function-host';
import { defaultFunctionOutput } from './function-output';
import { invoke, type LocalFunction, type LocalHandler } from './lambda';
import { functionNode, type FunctionNode } from './node-runtime';
import { awsRecord, factsFrom, passesFilter, type ObjectCreatedFact } from './s3-events';
import { LocalQueue, type BatchOutcome, type DeadLetter } from './sqs';
import {
  LOCAL_MAX_CONCURRENCY,
  LOCAL_STACK_NAME,
  loadTemplate,
  REPO_ROOT,
  resolveValue,
  type CfnResource,
  type LocalTemplate,
  type TemplateFunction,
} from './template';

export {
  REQUEST_TOO_LARGE_MESSAGE,
  INTEGRATION_FAILURE_MESSAGE,
  matchRoute,
  buildProxyEvent,
  type Route,
  type RestProxyEvent,
} from './api-gateway';
export { LocalQueue, type DeadLetter, type SqsBatchEvent, type SqsRecord } from './sqs';
export { awsRecord, type AwsS3EventRecord } from './s3-events';
export { lambdaContext, type LocalHandler, type LocalLambdaContext } from './lambda';
export type { RecordedEvent } from './eventbridge';
export { loadTemplate, NOT_DERIVED, type LocalTemplate } from './template';
export { recentFunctionOutput } from './function-output';
export type { KnownAwsKey } from './sigv4';

export const DEFAULT_BUCKET = 'iva-bridge-local';
export const DEFAULT_TABLE = 'iva-bridge-local-ledger';
/** Where the local stack keeps its state between runs (npm start); `--fresh` removes it. */
export const DEFAULT_STATE_DIR = join(REPO_ROOT, '.local/state');

/**
 * Variables the local stack adds to each function's environment besides the template's:
 * what the Lambda runtime provides (region, credentials, function name) and where the
 * local AWS endpoints are. Everything else comes from the template.
 */
export const LOCAL_ENVIRONMENT = [
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'AWS_ENDPOINT_URL_EVENTBRIDGE',
  'AWS_ENDPOINT_URL_STS',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'AWS_ENDPOINT_URL_SQS',
  'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
  ENV.s3ForcePathStyle,
  'POWERTOOLS_METRICS_DISABLED',
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
] as const;

export type FunctionKey = string;

export interface ExternalS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  /** How object-created events reach the stack: Ceph RGW topic pushes (the only kind supported). */
  notifications?: 'ceph';
}

export interface RealIva {
  endpoint: string;
  credentials: VolcCredentials;
  region?: string;
  service?: string;
}

export interface LocalStackOptions {
  /** 0 (default) picks a free port. */
  ports?: {
    api?: number;
    /** The IAM API's port (the template's AWS_IAM methods), when the template has one. */
    iamApi?: number;
    s3?: number;
    iva?: number;
    dynamodb?: number;
    eventBridge?: number;
    aws?: number;
  };
  bucket?: string;
  tableName?: string;
  /** `x-api-key` the API accepts; random when omitted (kept in stateDir when given). */
  apiKey?: string;
  /** Path secret of the callback URL; random (64 hex) when omitted (kept in stateDir when given). */
  callbackSecret?: string;
  /**
   * AWS key pairs the IAM API knows besides the local caller's (LOCAL_IAM_CALLER_ARN,
   * generated and kept): each with the principal ARN API Gateway would report for it.
   */
  awsCallers?: KnownAwsKey[];
  /** Keeps S3 objects, the ledger, undelivered messages and the keys across restarts; in memory / temporary when omitted. */
  stateDir?: string;
  /** Folder of the synthesized template's cache (default .local/cache). */
  cacheDir?: string;
  /** Any S3 endpoint instead of the embedded s3rver (e.g. the Ceph RGW of scripts/ceph-rgw.sh). */
  s3?: ExternalS3;
  /** The real IVA endpoint and keys instead of the sandbox. */
  iva?: RealIva;
  /** Keys the sandbox accepts and the functions sign with (default: the sandbox's built-in key). */
  sandboxCredentials?: VolcCredentials;
  /** Sandbox settings (callback delay, status...); the callback URL is always the stack's. */
  sandbox?: Omit<IvaSandboxOptions, 'port' | 'callbackUrl' | 'credentials' | 'log'>;
  /** Overrides of the template's queue and event source settings (tests use short ones). */
  /** Overrides for the other pipelines' queues (the callback inbox); tests use a short visibility timeout. */
  pipelines?: { visibilityTimeoutMs?: number };
  sqs?: {
    visibilityTimeoutMs?: number;
    maxReceiveCount?: number;
    maxConcurrency?: number;
    batchSize?: number;
    batchingWindowMs?: number;
  };
  /** In-process stand-ins for the real handlers (tests of the stack itself). */
  handlers?: Partial<Record<FunctionKey, LocalHandler>>;
  /** The sweep's timer (the template's schedule unless given) and settings; short values for tests and demos. */
  /** Deliver result, overdue, expired and uncertain events to this URL (infra/webhooks.ts locally). */
  webhook?: { url: string; secret: string; attempts?: number; baseDelayMs?: number };
  sweep?: {
    intervalMs?: number;
    overdueAfterSeconds?: number;
    expireUploadsAfterSeconds?: number;
    abandonedAfterSeconds?: number;
  };
  /** Extra environment for the functions, over the template's (e.g. DEFAULT_TASK_ID, POWERTOOLS_LOG_LEVEL). */
  functionEnv?: Record<string, string>;
  /**
   * Each line a function process prints (its JSON logs). Default: printed as is, except
   * under vitest, where the lines are kept (recentFunctionOutput) and shown only when a
   * test fails.
   */
  functionOutput?: (line: string, functionName: string) => void;
  /** Human-readable progress lines; default console.log with a time stamp. */
  log?: (line: string) => void;
}

/** What `npm start` writes to .local/stack.json. */
export interface StackInfo extends LocalStackFacts {
  ivaEndpoint: string;
  /** `sandbox` or `remote`. */
  ivaMode: 'sandbox' | 'remote';
  /** Keys the sandbox accepts (`iva-bridge submit` against it: VOLC_ACCESSKEY / VOLC_SECRETKEY); absent for a real IVA. */
  sandboxAccessKeyId?: string;
  sandboxSecretAccessKey?: string;
  dynamodbEndpoint: string;
  eventBridgeEndpoint: string;
  /** The default client key (client `local`): what the CLI and client sign with locally. */
  clientAccessKeyId: string;
  clientSecretAccessKey: string;
  /** Where `iva-bridge keys --local` issues, rotates, revokes and lists keys (the local Secrets Manager). */
  clientKeyPrefix: string;
  awsEndpoint: string;
  /** The IAM API (SigV4, service execute-api, region iamRegion), when the template has one. */
  iamApiUrl?: string;
  iamRegion?: string;
  /** The local caller's AWS key pair, the one the IAM API knows (principal iamCallerArn). */
  awsAccessKeyId?: string;
  awsSecretAccessKey?: string;
  iamCallerArn?: string;
}

/** The principal of the local caller's AWS key pair (account 000000000000, the local account). */
export const LOCAL_IAM_CALLER_ARN = 'arn:aws:iam::000000000000:user/iva-bridge-local';

/** The client `npm start` issues its default key to. */
export const LOCAL_CLIENT = 'local';

export interface LocalStack extends StackInfo {
  info: StackInfo;
  template: LocalTemplate;
  /** The Node the function processes run on. */
  functionNode: FunctionNode;
  /** Each function as started, by key (objectCreated, directSubmit, …). */
  functions: Record<string, LocalFunction & { env: Record<string, string> }>;
  /** Present unless a real IVA endpoint is used. */
  sandbox?: IvaSandbox;
  queue: LocalQueue;
  /** The queues of the other pipelines, by the key of the function they feed (resultCallback). */
  pipelineQueues: Record<string, LocalQueue>;
  deadLetters: DeadLetter[];
  /** Every PutEvents entry the functions sent, as EventBridge delivers them. */
  events: RecordedEvent[];
  /** The local EventBridge's fault injection (failPutEvents, faultsLeft). */
  eventBridge: Pick<LocalEventBridge, 'failPutEvents' | 'faultsLeft'>;
  close(): Promise<void>;
}

function defaultLog(line: string): void {
  console.log(`${new Date().toISOString().slice(11, 23)} [local-stack] ${line}`);
}

// ---------------------------------------------------------------------------- state

interface KeptSecrets {
  apiKey: string;
  callbackSecret: string;
  /** The local caller's AWS key pair (LOCAL_IAM_CALLER_ARN). */
  awsAccessKeyId: string;
  awsSecretAccessKey: string;
}

async function keptSecrets(stateDir: string | undefined, given: Partial<KeptSecrets>): Promise<KeptSecrets> {
  const file = stateDir ? join(stateDir, 'keys.json') : undefined;
  let kept: Partial<KeptSecrets> = {};
  if (file) {
    try {
      kept = JSON.parse(await readFile(file, 'utf8')) as Partial<KeptSecrets>;
    } catch {
      // first start
    }
  }
  const out: KeptSecrets = {
    apiKey: given.apiKey ?? kept.apiKey ?? randomBytes(20).toString('hex'),
    callbackSecret: given.callbackSecret ?? kept.callbackSecret ?? randomBytes(32).toString('hex'),
    awsAccessKeyId: kept.awsAccessKeyId ?? `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    awsSecretAccessKey: kept.awsSecretAccessKey ?? randomBytes(30).toString('base64'),
  };
  if (
    file &&
    (out.apiKey !== kept.apiKey ||
      out.callbackSecret !== kept.callbackSecret ||
      out.awsAccessKeyId !== kept.awsAccessKeyId ||
      out.awsSecretAccessKey !== kept.awsSecretAccessKey)
  ) {
    await mkdir(stateDir!, { recursive: true });
    await writeFile(`${file}.tmp`, `${JSON.stringify(out, null, 2)}\n`, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
  return out;
}

/** The template's table definition (keys, indexes) under the local name; kept when it exists. */
async function createTableFromTemplate(client: DynamoDBClient, template: LocalTemplate, name: string): Promise<void> {
  const table = Object.values(template.template.Resources).find((r) => r.Type === 'AWS::DynamoDB::Table');
  if (!table?.Properties) throw new Error('the template has no DynamoDB table');
  const p = table.Properties as unknown as CreateTableCommandInput;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        KeySchema: p.KeySchema,
        AttributeDefinitions: p.AttributeDefinitions,
        BillingMode: p.BillingMode ?? 'PAY_PER_REQUEST',
        ...(p.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: p.GlobalSecondaryIndexes } : {}),
      }),
    );
  } catch (err) {
    if (!isAwsError(err, 'ResourceInUseException')) throw err;
  }
}

// ---------------------------------------------------------------------------- the stack

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? defaultLog;
  const output = options.functionOutput ?? defaultFunctionOutput;
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const tableName = options.tableName ?? DEFAULT_TABLE;
  const stateDir = options.stateDir;
  const cacheDir = options.cacheDir ?? join(REPO_ROOT, '.local/cache');
  const ports = options.ports ?? {};
  const cleanups: (() => Promise<void>)[] = [];
  const savedEnv = new Map<string, string | undefined>();
  const setEnv = (name: string, value: string): void => {
    if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
    process.env[name] = value;
  };
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse().splice(0))
      await fn().catch((err: unknown) => log(`close: ${(err as Error).message}`));
    for (const [name, value] of savedEnv) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    savedEnv.clear();
  };

  try {
    const template = await loadTemplate({ cacheDir, log });
    const ignored = Object.entries(template.ignored)
      .map(([type, n]) => `${type}${n > 1 ? ` ×${n}` : ''}`)
      .join(', ');
    log(
      `template ${template.hash}: ${template.routes.length} API methods, ${Object.keys(template.functions).length} functions; not emulated: ${ignored}`,
    );
    const node = await functionNode(cacheDir);
    log(`functions run on ${node.note}`);
    if (!node.matchesRuntime) log(`WARNING: ${node.note}`);
    const secrets = await keptSecrets(stateDir, { apiKey: options.apiKey, callbackSecret: options.callbackSecret });
    if (stateDir) await mkdir(stateDir, { recursive: true });

    // ------------------------------------------------------------------ DynamoDB
    const dynalite = await startDynalite({
      port: ports.dynamodb ?? 0,
      ...(stateDir ? { path: join(stateDir, 'dynamodb') } : {}),
    });
    cleanups.push(() => dynalite.close());
    const ddb = new DynamoDBClient({
      endpoint: dynalite.endpoint,
      region: dynalite.region,
      credentials: dynalite.credentials,
    });
    await createTableFromTemplate(ddb, template, tableName);
    ddb.destroy();
    log(
      `dynamodb (dynalite) on ${dynalite.endpoint}, table ${tableName}${stateDir ? ' (kept in the state folder)' : ''}`,
    );

    // ------------------------------------------------------------------ S3 + SQS
    // The queue exists before any object can be written; its consumer is set below.
    let objectCreated: LocalFunction | undefined;
    const region = options.s3?.region ?? 'us-east-1';
    const es = template.eventSource;
    const sqsMaxConcurrency = options.sqs?.maxConcurrency ?? es.maximumConcurrency ?? LOCAL_MAX_CONCURRENCY;
    const queue = new LocalQueue({
      region,
      batchSize: options.sqs?.batchSize ?? es.batchSize,
      batchingWindowMs: options.sqs?.batchingWindowMs ?? es.maximumBatchingWindowSeconds * 1000,
      visibilityTimeoutMs: options.sqs?.visibilityTimeoutMs ?? template.queue.visibilityTimeoutSeconds * 1000,
      maxReceiveCount: options.sqs?.maxReceiveCount ?? template.queue.maxReceiveCount ?? Number.POSITIVE_INFINITY,
      maxConcurrency: sqsMaxConcurrency,
      ...(stateDir ? { persistPath: join(stateDir, 'queue.json') } : {}),
      // Nothing is delivered before object-created runs (see queue.resume() below).
      autoStart: false,
      log,
      consume: async (event): Promise<BatchOutcome> => {
        if (!objectCreated) return { kind: 'error', error: new Error('object-created is not running') };
        const counts = event.Records.map((r) => r.attributes.ApproximateReceiveCount).join(',');
        const result = (await invoke(objectCreated, event, region)) as
          | { batchItemFailures?: { itemIdentifier?: unknown }[] }
          | undefined
          | null;
        const failedIds = es.reportBatchItemFailures
          ? (result?.batchItemFailures ?? []).map((f) =>
              typeof f?.itemIdentifier === 'string' ? f.itemIdentifier : '',
            )
          : [];
        log(
          `object-created: batch of ${event.Records.length} (receive counts ${counts}): ${event.Records.length - failedIds.length} done, ${failedIds.length} to retry`,
        );
        return { kind: 'partial', failedIds };
      },
    });
    cleanups.push(() => queue.stop());
    if (queue.depth > 0) log(`sqs: ${queue.depth} undelivered message(s) kept from the last run`);

    // The other S3 → SQS → function pipelines of the template (the callback inbox): the
    // same queue semantics (visibility timeout, receive counts, partial batch failures,
    // dead letters), consumed by their function; no SQS API of their own.
    const pipelineFunctions: Record<string, LocalFunction> = {};
    const otherPipelines = template.pipelines.filter((p) => p.queue.logicalId !== template.queue.logicalId);
    const pipelineQueues: Record<string, LocalQueue> = {};
    for (const p of otherPipelines) {
      const key = p.eventSource.functionKey;
      const q = new LocalQueue({
        name: `iva-bridge-local-${p.queue.logicalId.replace(/[0-9A-F]{8}$/, '')}`,
        region,
        batchSize: p.eventSource.batchSize,
        batchingWindowMs: p.eventSource.maximumBatchingWindowSeconds * 1000,
        visibilityTimeoutMs: options.pipelines?.visibilityTimeoutMs ?? p.queue.visibilityTimeoutSeconds * 1000,
        maxReceiveCount: p.queue.maxReceiveCount ?? Number.POSITIVE_INFINITY,
        maxConcurrency: Math.min(p.eventSource.maximumConcurrency ?? LOCAL_MAX_CONCURRENCY, LOCAL_MAX_CONCURRENCY),
        ...(stateDir ? { persistPath: join(stateDir, `queue-${p.queue.logicalId}.json`) } : {}),
        autoStart: false,
        log,
        consume: async (event): Promise<BatchOutcome> => {
          const fn = pipelineFunctions[key];
          if (!fn) return { kind: 'error', error: new Error(`${key} is not running`) };
          const result = (await invoke(fn, event, region)) as
            | { batchItemFailures?: { itemIdentifier?: unknown }[] }
            | undefined
            | null;
          const failedIds = p.eventSource.reportBatchItemFailures
            ? (result?.batchItemFailures ?? []).map((f) =>
                typeof f?.itemIdentifier === 'string' ? f.itemIdentifier : '',
              )
            : [];
          log(
            `${key}: batch of ${event.Records.length}: ${event.Records.length - failedIds.length} done, ${failedIds.length} to retry`,
          );
          return { kind: 'partial', failedIds };
        },
      });
      pipelineQueues[key] = q;
      cleanups.push(() => q.stop());
    }

    const routesOfFacts = template.pipelines.map((p) => ({
      filter: { prefix: p.notification.prefix, suffix: p.notification.suffix },
      queue: p.queue.logicalId === template.queue.logicalId ? queue : pipelineQueues[p.eventSource.functionKey]!,
      what: p.eventSource.functionKey,
    }));
    const filterText = routesOfFacts
      .map(
        ({ filter }) =>
          `${filter.prefix ? `prefix ${filter.prefix}` : 'any key'}${filter.suffix ? ` suffix ${filter.suffix}` : ''}`,
      )
      .join('; ');
    const onFact = (fact: ObjectCreatedFact): void => {
      const where = `s3://${fact.bucket}/${fact.key}`;
      const targets = routesOfFacts.filter((r) => passesFilter(fact, bucket, r.filter));
      if (targets.length === 0) {
        if (fact.eventName.includes('ObjectCreated'))
          log(`s3: ${where} written (${fact.size ?? '?'} bytes; outside the notification filters, ${filterText})`);
        return;
      }
      for (const target of targets) {
        const body = JSON.stringify({ Records: [awsRecord(fact, region)] });
        const messageId = target.queue.send(body);
        const what = target.queue === queue ? 'upload seen ' : '';
        log(
          `s3: ${what}${where} (${fact.size ?? '?'} bytes, ${fact.eventName}) → SQS message ${messageId} for ${target.what}`,
        );
      }
    };

    let s3Endpoint: string;
    let s3Creds: { accessKeyId: string; secretAccessKey: string };
    if (options.s3) {
      s3Endpoint = options.s3.endpoint.replace(/\/+$/, '');
      s3Creds = { accessKeyId: options.s3.accessKeyId, secretAccessKey: options.s3.secretAccessKey };
      const s3: S3Client = createS3Client({ endpoint: s3Endpoint, region, forcePathStyle: true, credentials: s3Creds });
      cleanups.push(async () => s3.destroy());
      try {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      } catch (err) {
        if (!isAwsError(err, 'BucketAlreadyOwnedByYou')) throw err;
      }
      const receiver: NotificationReceiver = await startNotificationReceiver(
        (body) => factsFrom(body, false).forEach(onFact),
        log,
      );
      cleanups.push(() => receiver.close());
      // Deterministic per bucket: a restart replaces the topic instead of adding one.
      await enableBucketNotifications({
        ceph: { endpoint: s3Endpoint, region, ...s3Creds },
        bucket,
        // One topic for every pipeline: their common prefix (none when they differ); each
        // event is then routed by the pipelines' own filters (onFact).
        prefix: commonPrefix(routesOfFacts.map((r) => r.filter.prefix ?? '')),
        topicName: `${bucket}-iva-bridge-local`,
        pushEndpoint: receiver.url,
      });
      cleanups.push(() => disableNotifications(s3, bucket));
      log(`s3 (external, Ceph RGW notifications) on ${s3Endpoint}, bucket ${bucket}, events pushed to ${receiver.url}`);
    } else {
      const s3rver: LocalS3 = await startS3rver({
        buckets: [bucket],
        port: ports.s3 ?? 0,
        ...(stateDir ? { directory: join(stateDir, 's3') } : {}),
      });
      cleanups.push(() => s3rver.close());
      // s3rver removes a folder once its last object is deleted, and a PUT into that
      // folder at the same moment fails with ENOENT, crashing s3rver (docs/local-s3.md).
      // result-callback deletes each inbox object while API Gateway puts the next one: a
      // folder marker (written before events are wired, so it notifies nothing) keeps
      // the folder of every pipeline other than the intake from ever being empty.
      const markers = createS3Client({
        endpoint: s3rver.endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3rver.accessKeyId, secretAccessKey: s3rver.secretAccessKey },
      });
      for (const p of otherPipelines)
        if (p.notification.prefix?.endsWith('/'))
          await markers.send(new PutObjectCommand({ Bucket: bucket, Key: p.notification.prefix, Body: '' }));
      markers.destroy();
      // local/servers re-emits s3rver's events with AWS-encoded keys.
      s3rver.events.on('event', (notification) => factsFrom(notification, true).forEach(onFact));
      s3Endpoint = s3rver.endpoint;
      s3Creds = { accessKeyId: s3rver.accessKeyId, secretAccessKey: s3rver.secretAccessKey };
      log(`s3 (s3rver) on ${s3Endpoint}, bucket ${bucket}${stateDir ? ' (kept in the state folder)' : ''}`);
    }

    // ------------------------------------------------------------------ EventBridge
    const eventBridge = await startEventBridge({ port: ports.eventBridge ?? 0, region, log });
    cleanups.push(() => eventBridge.close());
    if (options.webhook) {
      const webhook = deliverWebhooks(eventBridge, { ...options.webhook, log });
      cleanups.push(async () => webhook.stop());
      log(`webhook: result, overdue, expired and uncertain events go to ${options.webhook.url}`);
    }

    // ------------------------------------------------------------------ IVA
    let sandbox: IvaSandbox | undefined;
    let iva: { endpoint: string; credentials: VolcCredentials; region: string; service: string };
    if (options.iva) {
      iva = {
        endpoint: options.iva.endpoint,
        credentials: options.iva.credentials,
        region: options.iva.region ?? DEFAULTS.ivaRegion,
        service: options.iva.service ?? DEFAULTS.ivaService,
      };
      log(
        `iva: REAL endpoint ${iva.endpoint} (access key id ${iva.credentials.accessKeyId}); submissions are billed and processed for real`,
      );
    } else {
      const credentials = options.sandboxCredentials ?? DEFAULT_SANDBOX_CREDENTIALS;
      sandbox = await startIvaSandbox({
        ...options.sandbox,
        port: ports.iva ?? 0,
        credentials,
        log: (line) => log(`iva-sandbox: ${line}`),
      });
      const sb = sandbox;
      cleanups.push(() => sb.close());
      iva = { endpoint: sandbox.url, credentials, region: sandbox.region, service: sandbox.service };
      log(`iva sandbox on ${sandbox.url}`);
    }

    // ------------------------------------------------------------------ STS, Secrets Manager
    const secretArn = (logicalId: string): string =>
      `arn:aws:secretsmanager:${region}:000000000000:secret:${logicalId.replace(/[0-9A-F]{8}$/, '')}-local`;
    const secretValues: Record<string, string> = {};
    for (const [logicalId, r] of Object.entries(template.template.Resources)) {
      if (r.Type !== 'AWS::SecretsManager::Secret') continue;
      const arn = secretArn(logicalId);
      // Which secret is which: by the variable that names it in the functions' environment.
      const names = Object.values(template.functions).flatMap((f) =>
        Object.entries(f.environment)
          .filter(([, v]) => JSON.stringify(v) === JSON.stringify({ Ref: logicalId }))
          .map(([k]) => k),
      );
      if (names.includes(ENV.volcSecretArn))
        secretValues[arn] = JSON.stringify({
          accessKeyId: iva.credentials.accessKeyId,
          secretAccessKey: iva.credentials.secretAccessKey,
          ...(iva.credentials.sessionToken ? { sessionToken: iva.credentials.sessionToken } : {}),
        });
      else if (names.includes(ENV.callbackSecretArn)) secretValues[arn] = secrets.callbackSecret;
    }
    // Client keys (iva-bridge keys …, lib/client-auth/keys.ts) are created secrets, kept in the state folder.
    const clientKeysFile = stateDir ? join(stateDir, 'client-keys.json') : undefined;
    let keptClientKeys: Record<string, CreatedSecret> = {};
    if (clientKeysFile) {
      try {
        keptClientKeys = JSON.parse(readFileSync(clientKeysFile, 'utf8')) as Record<string, CreatedSecret>;
      } catch {
        // first start
      }
    }
    const aws = await startLocalAwsEndpoints({
      port: ports.aws ?? 0,
      sessionCredentials: s3Creds,
      secrets: secretValues,
      created: keptClientKeys,
      ...(clientKeysFile
        ? {
            onSecretsChanged: (created: Record<string, CreatedSecret>) => {
              writeFileSync(`${clientKeysFile}.tmp`, `${JSON.stringify(created, null, 2)}\n`, { mode: 0o600 });
              renameSync(`${clientKeysFile}.tmp`, clientKeysFile);
            },
          }
        : {}),
      queues: { [queue.name]: queue },
      log,
    });
    cleanups.push(() => aws.close());
    // The default client key `npm start` prints: the first key of client `local`, issued once.
    const keyPrefix = clientKeyPrefix(LOCAL_STACK_NAME);
    const sm = new SecretsManagerClient({
      endpoint: aws.url,
      region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const keyStore = createClientKeyStore(sm, keyPrefix);
    const localKeys = (await keyStore.list()).filter((k) => k.client === LOCAL_CLIENT);
    const clientKey =
      (localKeys[0] ? await keyStore.get(localKeys[0].accessKeyId) : undefined) ??
      (await keyStore.issue(LOCAL_CLIENT, secrets.apiKey));
    sm.destroy();

    // ------------------------------------------------------------------ functions
    const resolver = (logicalId: string, resource: CfnResource | undefined, attribute?: string): string => {
      switch (resource?.Type) {
        case 'AWS::S3::Bucket':
          return attribute === 'Arn' ? `arn:aws:s3:::${bucket}` : bucket;
        case 'AWS::DynamoDB::Table':
          return attribute === 'Arn' ? `arn:aws:dynamodb:${region}:000000000000:table/${tableName}` : tableName;
        case 'AWS::SecretsManager::Secret':
          return secretArn(logicalId);
        case 'AWS::IAM::Role':
          return `arn:aws:iam::000000000000:role/${logicalId}`;
        case 'AWS::SQS::Queue':
          return attribute === 'Arn' ? queue.arn : `${aws.url}/000000000000/${queue.name}`;
        default:
          throw new Error(
            `the template passes ${logicalId} (${resource?.Type ?? 'unknown'}) to a function; the local stack has no stand-in for it`,
          );
      }
    };
    const passthrough = (name: string): Record<string, string> =>
      process.env[name] !== undefined ? { [name]: process.env[name]! } : {};
    const envFor = (fn: TemplateFunction, name: string): Record<string, string> => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(fn.environment)) env[k] = resolveValue(v, template.template, resolver);
      // Not derivable: where IVA is (NOT_DERIVED).
      if (ENV.ivaEndpoint in env) env[ENV.ivaEndpoint] = iva.endpoint;
      if (ENV.ivaRegion in env) env[ENV.ivaRegion] = iva.region;
      if (ENV.ivaService in env) env[ENV.ivaService] = iva.service;
      if (options.sweep?.overdueAfterSeconds !== undefined && SWEEP_ENV.overdueAfterSeconds in env)
        env[SWEEP_ENV.overdueAfterSeconds] = String(options.sweep.overdueAfterSeconds);
      if (options.sweep?.expireUploadsAfterSeconds !== undefined && SWEEP_ENV.expireUploadsAfterSeconds in env)
        env[SWEEP_ENV.expireUploadsAfterSeconds] = String(options.sweep.expireUploadsAfterSeconds);
      if (options.sweep?.abandonedAfterSeconds !== undefined && SWEEP_ENV.abandonedAfterSeconds in env)
        env[SWEEP_ENV.abandonedAfterSeconds] = String(options.sweep.abandonedAfterSeconds);
      return {
        ...env,
        ...options.functionEnv,
        AWS_REGION: region,
        AWS_DEFAULT_REGION: region,
        // One key pair serves S3; dynalite, EventBridge, STS and Secrets Manager accept any.
        AWS_ACCESS_KEY_ID: s3Creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3Creds.secretAccessKey,
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_ENDPOINT_URL_S3: s3Endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
        AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.url,
        AWS_ENDPOINT_URL_STS: aws.url,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.url,
        AWS_ENDPOINT_URL_SQS: aws.url,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        [ENV.s3ForcePathStyle]: 'true',
        // EMF metric lines would double the output locally; set it to false to see them.
        POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
        ...passthrough('PATH'),
        ...passthrough('HOME'),
        ...passthrough('TMPDIR'),
        ...passthrough('LANG'),
      };
    };

    const real = Object.values(template.functions).filter((fn) => !options.handlers?.[fn.key]);
    const bundling = Date.now();
    const bundles = await bundleFunctions(Object.fromEntries(real.map((fn) => [fn.key, fn.entry])), cacheDir);
    if (bundles.built) log(`functions: bundled ${real.length} handlers with esbuild in ${Date.now() - bundling} ms`);
    const functions: LocalStack['functions'] = {};
    const hosts: FunctionHost[] = [];
    for (const fn of Object.values(template.functions)) {
      const name = `iva-bridge-local-${fn.id}`;
      const env = envFor(fn, name);
      const timeoutMs = fn.timeoutSeconds * 1000;
      const standIn = options.handlers?.[fn.key];
      const maxConcurrency =
        fn.key === es.functionKey
          ? sqsMaxConcurrency
          : Math.min(fn.reservedConcurrency ?? LOCAL_MAX_CONCURRENCY, LOCAL_MAX_CONCURRENCY);
      let run: LocalFunction['run'];
      if (standIn) {
        run = standIn;
        // A stand-in runs in this process: it finds the local endpoints where the SDK looks.
        for (const [k, v] of Object.entries(env)) if (k.startsWith('AWS_') || k === ENV.s3ForcePathStyle) setEnv(k, v);
      } else {
        const host = new FunctionHost({
          name,
          entry: bundles.files[fn.key]!,
          runner: bundles.runner,
          exportName: fn.handlerExport,
          timeoutMs,
          memoryMb: fn.memoryMb,
          env,
          maxConcurrency,
          node: node.path,
          region,
          output: (line) => output(line, name),
          log,
        });
        hosts.push(host);
        run = host;
      }
      functions[fn.key] = { name, timeoutMs, memoryMb: fn.memoryMb, run, env };
    }
    cleanups.push(async () => {
      await Promise.all(hosts.map((h) => h.close()));
    });
    // One warm process per function before the stack says it is ready (a module that
    // fails to load stops the start here, with its error).
    const warming = Date.now();
    await Promise.all(hosts.map((h) => h.prewarm()));
    if (hosts.length) log(`functions: ${hosts.length} processes started in ${Date.now() - warming} ms`);
    objectCreated = functions[es.functionKey];
    if (!objectCreated) throw new Error(`the event source mapping's function ${es.functionKey} was not started`);
    queue.resume();
    for (const [key, q] of Object.entries(pipelineQueues)) {
      const fn = functions[key];
      if (!fn) throw new Error(`the event source mapping's function ${key} was not started`);
      pipelineFunctions[key] = fn;
      q.resume();
    }

    // ------------------------------------------------------------------ API
    const control = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
      if (!url.pathname.startsWith('/__local/')) return false;
      const send = (status: number, body: unknown): void => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      req.resume();
      const route = `${req.method} ${url.pathname}`;
      if (route === 'GET /__local/dead-letters') send(200, queue.deadLetters);
      else if (route === 'POST /__local/dead-letters/redrive') send(200, { redriven: queue.redrive() });
      else if (route === 'GET /__local/events') send(200, eventBridge.events);
      else if (route === 'GET /__local/queue')
        send(200, {
          depth: queue.depth,
          deadLetters: queue.deadLetters.length,
          ...Object.fromEntries(
            Object.entries(pipelineQueues).map(([k, q]) => [k, { depth: q.depth, deadLetters: q.deadLetters.length }]),
          ),
        });
      else if (route === 'GET /__local/functions')
        send(
          200,
          Object.fromEntries(
            Object.entries(functions).map(([k, f]) => [
              k,
              {
                name: f.name,
                timeoutMs: f.timeoutMs,
                memoryMb: f.memoryMb,
                ...(f.run instanceof FunctionHost ? { stats: f.run.stats } : {}),
              },
            ]),
          ),
        );
      else if (req.method === 'GET' && url.pathname.startsWith('/__local/samples/')) serveSample(res, url.pathname);
      else send(404, { error: 'NotFound', message: `No local control route ${route}.` });
      return true;
    };
    const gatewayS3 = createS3Client({ endpoint: s3Endpoint, region, forcePathStyle: true, credentials: s3Creds });
    cleanups.push(async () => gatewayS3.destroy());
    const api = await startApiGateway({
      port: ports.api ?? 0,
      s3: { client: gatewayS3, resolveUri: (uri) => resolveValue(uri, template.template, resolver) },
      apiKeys: [secrets.apiKey],
      apiKeySource: template.apiKeySource,
      routes: template.routes,
      gatewayResponses: template.gatewayResponses,
      binaryMediaTypes: template.binaryMediaTypes,
      stage: template.stage,
      functions,
      region,
      control,
      log,
    });
    cleanups.push(() => api.close());

    // The IAM API: the template's AWS_IAM methods behind its resource policy, on a port of
    // its own (a second REST API has its own URL), SigV4 checked against the known keys.
    let iamApiUrl: string | undefined;
    if (template.iamApi) {
      const iamTemplate = template.iamApi;
      const principals = iamTemplate.principals.map((p) => resolveValue(p, template.template, resolver));
      const keys = new Map<string, KnownAwsKey>();
      for (const key of [
        {
          accessKeyId: secrets.awsAccessKeyId,
          secretAccessKey: secrets.awsSecretAccessKey,
          arn: LOCAL_IAM_CALLER_ARN,
        },
        ...(options.awsCallers ?? []),
      ])
        keys.set(key.accessKeyId, key);
      const iamApi = await startApiGateway({
        port: ports.iamApi ?? 0,
        apiKeys: [],
        routes: iamTemplate.routes,
        gatewayResponses: iamTemplate.gatewayResponses,
        binaryMediaTypes: iamTemplate.binaryMediaTypes,
        stage: iamTemplate.stage,
        functions,
        region,
        iam: { keyOf: (ak) => keys.get(ak), principals },
        log: (line) => log(line.replace(/^api: /, 'iam-api: ')),
      });
      cleanups.push(() => iamApi.close());
      iamApiUrl = `${iamApi.url}/`;
      log(
        `iam api on ${iamApiUrl} (AWS_IAM methods of the template; SigV4 execute-api/${region}; resource policy principals ${principals.join(', ')})`,
      );
    }
    // Stop delivering first on close, so no invocation runs against closed servers (the
    // callback inbox's queue too: the gateway may have put a body just before).
    cleanups.push(() => queue.stop());
    cleanups.push(async () => {
      await Promise.all(Object.values(pipelineQueues).map((q) => q.stop()));
    });

    // ------------------------------------------------------------------ sweep timer
    // The template's schedule; one run at a time (a run still going skips the tick).
    const sweepFn = functions[template.sweep.functionKey];
    if (!sweepFn) throw new Error(`the schedule's function ${template.sweep.functionKey} was not started`);
    let sweeping = false;
    const sweepTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      invoke(sweepFn, { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }, region)
        .catch((err: unknown) => log(`sweep failed: ${(err as Error)?.message ?? String(err)}`))
        .finally(() => {
          sweeping = false;
        });
    }, options.sweep?.intervalMs ?? template.sweep.intervalMs);
    sweepTimer.unref();
    cleanups.push(async () => clearInterval(sweepTimer));

    const apiUrl = `${api.url}/`;
    const callbackUrl = `${apiUrl}callbacks/${secrets.callbackSecret}`;
    sandbox?.setCallbackUrl(callbackUrl);
    log(`api on ${apiUrl} (routes, API keys and gateway answers from the template)`);

    const info: StackInfo = {
      s3Endpoint,
      s3AccessKeyId: s3Creds.accessKeyId,
      s3SecretAccessKey: s3Creds.secretAccessKey,
      s3Region: region,
      bucket,
      apiUrl,
      apiKey: secrets.apiKey,
      clientAccessKeyId: clientKey.accessKeyId,
      clientSecretAccessKey: clientKey.secretAccessKey,
      clientKeyPrefix: keyPrefix,
      awsEndpoint: aws.url,
      ...(iamApiUrl
        ? {
            iamApiUrl,
            iamRegion: region,
            awsAccessKeyId: secrets.awsAccessKeyId,
            awsSecretAccessKey: secrets.awsSecretAccessKey,
            iamCallerArn: LOCAL_IAM_CALLER_ARN,
          }
        : {}),
      callbackUrl,
      ivaEndpoint: iva.endpoint,
      ivaMode: sandbox ? 'sandbox' : 'remote',
      ...(sandbox
        ? { sandboxAccessKeyId: iva.credentials.accessKeyId, sandboxSecretAccessKey: iva.credentials.secretAccessKey }
        : {}),
      dynamodbEndpoint: dynalite.endpoint,
      eventBridgeEndpoint: eventBridge.url,
    };
    let closing: Promise<void> | undefined;
    return {
      ...info,
      info,
      template,
      functionNode: node,
      functions,
      sandbox,
      queue,
      pipelineQueues,
      deadLetters: queue.deadLetters,
      events: eventBridge.events,
      eventBridge,
      close: () => (closing ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function commonPrefix(prefixes: string[]): string {
  if (prefixes.length === 0) return '';
  let out = prefixes[0]!;
  for (const p of prefixes) while (!p.startsWith(out)) out = out.slice(0, -1);
  return out;
}

/** docs/samples/* (the README's sample image and video), so `--video-url` works offline. */
function serveSample(res: ServerResponse, pathname: string): void {
  const name = pathname.slice('/__local/samples/'.length);
  const types: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', mp4: 'video/mp4' };
  const type = types[name.split('.').pop() ?? ''];
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.') || !type) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'NotFound', message: 'No such sample.' }));
    return;
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(REPO_ROOT, 'docs/samples', name));
  } catch {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'NotFound', message: 'No such sample.' }));
    return;
  }
  res.writeHead(200, { 'content-type': type, 'content-length': bytes.length });
  res.end(bytes);
}
