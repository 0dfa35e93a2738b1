/**
 * The whole function set on one machine, in one Node process (docs/contract.md, "On one machine"):
 * dynalite with the ledger table, an S3 (embedded s3rver, or any S3 endpoint such as the
 * project's Ceph RGW), S3 → SQS delivery into object-created, the IVA sandbox (or the
 * real IVA endpoint), a local EventBridge, and an API Gateway emulation in front of
 * direct-submit and result-callback. The real handler modules are imported after the
 * environment they read is set; `handlers` replaces them in tests of the stack itself.
 *
 * The functions read process.env, so one stack runs per process at a time; a second
 * stack started after the first closed gets fresh handler module instances.
 */
import type { LocalStackFacts } from '../../lib/smoke/local';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULTS, ENV } from '../../lib/config';
import { createLedgerTable } from '../../lib/ledger/index';
import { createS3Client } from '../../lib/storage/s3-client';
import { SWEEP_ENV } from '../../lib/sweep/settings';
import type { VolcCredentials } from '../../lib/signer/index';
import { DEFAULT_SANDBOX_CREDENTIALS, startIvaSandbox, type IvaSandbox } from '../iva-sandbox/index';
import type { IvaSandboxOptions } from '../iva-sandbox/types';
import { enableBucketNotifications } from '../servers/ceph';
import { startDynalite } from '../servers/dynalite';
import { startS3rver, type LocalS3 } from '../servers/s3rver';
import { startApiGateway, type RouteTarget } from './api-gateway';
import { disableNotifications, startNotificationReceiver, type NotificationReceiver } from './ceph-notifications';
import { startEventBridge, type RecordedEvent } from './eventbridge';
import { invoke, type LocalFunction, type LocalHandler } from './lambda';
import { awsRecord, factsFrom, passesFilter, type ObjectCreatedFact } from './s3-events';
import { LocalQueue, type BatchOutcome, type DeadLetter } from './sqs';

export {
  ROUTES,
  REQUEST_TOO_LARGE_MESSAGE,
  INTEGRATION_FAILURE_MESSAGE,
  matchRoute,
  buildProxyEvent,
  type Route,
  type RestProxyEvent,
} from './api-gateway';
import { isAwsError } from '../../lib/aws/errors';
export { LocalQueue, type DeadLetter, type SqsBatchEvent, type SqsRecord } from './sqs';
export { awsRecord, type AwsS3EventRecord } from './s3-events';
export { lambdaContext, type LocalHandler, type LocalLambdaContext } from './lambda';
export type { RecordedEvent } from './eventbridge';

export const INCOMING_PREFIX = 'incoming/';
export const DEFAULT_BUCKET = 'iva-bridge-local';
export const DEFAULT_TABLE = 'iva-bridge-local-ledger';

/** Timeouts and memory as infra/stack.ts FUNCTION_SPECS (not imported: that pulls in aws-cdk-lib). */
const FUNCTIONS = {
  objectCreated: { dir: 'object-created', name: 'iva-bridge-local-ObjectCreated', timeoutMs: 60_000, memoryMb: 512 },
  directSubmit: { dir: 'direct-submit', name: 'iva-bridge-local-DirectSubmit', timeoutMs: 29_000, memoryMb: 1024 },
  resultCallback: { dir: 'result-callback', name: 'iva-bridge-local-ResultCallback', timeoutMs: 15_000, memoryMb: 256 },
  sweep: { dir: 'sweep', name: 'iva-bridge-local-Sweep', timeoutMs: 300_000, memoryMb: 256 },
} as const;

/** As infra/stack.ts SWEEP_SCHEDULE_MINUTES (not imported: that pulls in aws-cdk-lib). */
const SWEEP_INTERVAL_MS = 15 * 60 * 1000;
export type FunctionKey = keyof typeof FUNCTIONS;

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
  ports?: { api?: number; s3?: number; iva?: number; dynamodb?: number; eventBridge?: number };
  bucket?: string;
  tableName?: string;
  /** `x-api-key` the API accepts; random when omitted. */
  apiKey?: string;
  /** Path secret of the callback URL; random (64 hex) when omitted. */
  callbackSecret?: string;
  /** Any S3 endpoint instead of the embedded s3rver (e.g. the Ceph RGW of scripts/ceph-rgw.sh). */
  s3?: ExternalS3;
  /** The real IVA endpoint and keys instead of the sandbox. */
  iva?: RealIva;
  /** Keys the sandbox accepts and the functions sign with (default: the sandbox's built-in key). */
  sandboxCredentials?: VolcCredentials;
  /** Sandbox settings (callback delay, status...); the callback URL is always the stack's. */
  sandbox?: Omit<IvaSandboxOptions, 'port' | 'callbackUrl' | 'credentials' | 'log'>;
  sqs?: {
    visibilityTimeoutMs?: number;
    maxReceiveCount?: number;
    maxConcurrency?: number;
    batchSize?: number;
    batchingWindowMs?: number;
  };
  /** Stand-ins for the real handler modules (tests of the stack itself). */
  handlers?: Partial<Record<FunctionKey, LocalHandler>>;
  /**
   * The sweep's timer (the deployed stack's schedule) and settings: every 15 min with the
   * deployed defaults unless given; short values for tests and demos.
   */
  sweep?: { intervalMs?: number; overdueAfterSeconds?: number; expireUploadsAfterSeconds?: number };
  /** Extra environment for the functions (e.g. DEFAULT_TASK_ID, POWERTOOLS_LOG_LEVEL). */
  functionEnv?: Record<string, string>;
  /** Human-readable progress lines; default console.log with a time stamp. */
  log?: (line: string) => void;
}

/** What `npm start` writes to .local/stack.json. */
export interface StackInfo extends LocalStackFacts {
  ivaEndpoint: string;
  /** `sandbox` or `remote`. */
  ivaMode: 'sandbox' | 'remote';
  dynamodbEndpoint: string;
  eventBridgeEndpoint: string;
}

export interface LocalStack extends StackInfo {
  info: StackInfo;
  /** Present unless a real IVA endpoint is used. */
  sandbox?: IvaSandbox;
  queue: LocalQueue;
  deadLetters: DeadLetter[];
  /** Every PutEvents entry the functions sent. */
  events: RecordedEvent[];
  close(): Promise<void>;
}

let generation = 0;
let active = false;

async function loadHandler(key: FunctionKey, gen: number): Promise<LocalHandler> {
  const file = new URL(`../../functions/${FUNCTIONS[key].dir}/handler.ts`, import.meta.url);
  // A later stack in the same process needs module instances that have not cached the
  // previous stack's clients: a distinct query string is a distinct ESM module.
  const spec = gen > 1 ? `${file.href}?stack=${gen}` : file.href;
  const mod = (await import(spec)) as { handler?: unknown };
  if (typeof mod.handler !== 'function')
    throw new Error(`functions/${FUNCTIONS[key].dir}/handler.ts does not export a handler function`);
  return mod.handler as LocalHandler;
}

function defaultLog(line: string): void {
  console.log(`${new Date().toISOString().slice(11, 23)} [local-stack] ${line}`);
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (active)
    throw new Error(
      'A local stack is already running in this process: the functions read process.env, so only one can run at a time.',
    );
  active = true;
  const gen = ++generation;
  const log = options.log ?? defaultLog;
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const tableName = options.tableName ?? DEFAULT_TABLE;
  const apiKey = options.apiKey ?? randomBytes(20).toString('hex');
  const callbackSecret = options.callbackSecret ?? randomBytes(32).toString('hex');
  const ports = options.ports ?? {};
  const cleanups: (() => Promise<void>)[] = [];
  const savedEnv = new Map<string, string | undefined>();
  const setEnv = (name: string, value: string | undefined): void => {
    if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse().splice(0))
      await fn().catch((err: unknown) => log(`close: ${(err as Error).message}`));
    for (const [name, value] of savedEnv) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    active = false;
  };

  try {
    // ------------------------------------------------------------------ DynamoDB
    const dynalite = await startDynalite({ port: ports.dynamodb ?? 0 });
    cleanups.push(() => dynalite.close());
    const ddb = new DynamoDBClient({
      endpoint: dynalite.endpoint,
      region: dynalite.region,
      credentials: dynalite.credentials,
    });
    await createLedgerTable(ddb, tableName);
    ddb.destroy();
    log(`dynamodb (dynalite) on ${dynalite.endpoint}, table ${tableName}`);

    // ------------------------------------------------------------------ S3 + SQS
    // The queue exists before any object can be written; its consumer is set below.
    let objectCreated: LocalFunction | undefined;
    const region = options.s3?.region ?? 'us-east-1';
    const queue = new LocalQueue({
      region,
      batchSize: options.sqs?.batchSize,
      batchingWindowMs: options.sqs?.batchingWindowMs,
      visibilityTimeoutMs: options.sqs?.visibilityTimeoutMs ?? 30_000,
      maxReceiveCount: options.sqs?.maxReceiveCount ?? 5,
      maxConcurrency: options.sqs?.maxConcurrency ?? DEFAULTS.ivaConcurrency,
      log,
      consume: async (event): Promise<BatchOutcome> => {
        if (!objectCreated) return { kind: 'error', error: new Error('object-created is not loaded yet') };
        const counts = event.Records.map((r) => r.attributes.ApproximateReceiveCount).join(',');
        const result = (await invoke(objectCreated, event, region)) as
          | { batchItemFailures?: { itemIdentifier?: unknown }[] }
          | undefined
          | null;
        const failedIds = (result?.batchItemFailures ?? []).map((f) =>
          typeof f?.itemIdentifier === 'string' ? f.itemIdentifier : '',
        );
        log(
          `object-created: batch of ${event.Records.length} (receive counts ${counts}): ${event.Records.length - failedIds.length} done, ${failedIds.length} to retry`,
        );
        return { kind: 'partial', failedIds };
      },
    });
    cleanups.push(() => queue.stop());

    const onFact = (fact: ObjectCreatedFact): void => {
      const where = `s3://${fact.bucket}/${fact.key}`;
      if (!passesFilter(fact, bucket, INCOMING_PREFIX)) {
        if (fact.eventName.includes('ObjectCreated'))
          log(`s3: ${where} written (${fact.size ?? '?'} bytes; not under ${INCOMING_PREFIX}, no notification)`);
        return;
      }
      const body = JSON.stringify({ Records: [awsRecord(fact, region)] });
      const messageId = queue.send(body);
      log(`s3: upload seen ${where} (${fact.size ?? '?'} bytes, ${fact.eventName}) → SQS message ${messageId}`);
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
        prefix: INCOMING_PREFIX,
        topicName: `${bucket}-iva-bridge-local`,
        pushEndpoint: receiver.url,
      });
      cleanups.push(() => disableNotifications(s3, bucket));
      log(`s3 (external, Ceph RGW notifications) on ${s3Endpoint}, bucket ${bucket}, events pushed to ${receiver.url}`);
    } else {
      const s3rver: LocalS3 = await startS3rver({ buckets: [bucket], port: ports.s3 ?? 0 });
      cleanups.push(() => s3rver.close());
      // local/servers re-emits s3rver's events with AWS-encoded keys.
      s3rver.events.on('event', (notification) => factsFrom(notification, true).forEach(onFact));
      s3Endpoint = s3rver.endpoint;
      s3Creds = { accessKeyId: s3rver.accessKeyId, secretAccessKey: s3rver.secretAccessKey };
      log(`s3 (s3rver) on ${s3Endpoint}, bucket ${bucket}`);
    }

    // ------------------------------------------------------------------ EventBridge
    const eventBridge = await startEventBridge({ port: ports.eventBridge ?? 0, log });
    cleanups.push(() => eventBridge.close());

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

    // ------------------------------------------------------------------ env, then handlers
    const env: Record<string, string | undefined> = {
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      // One key pair serves S3; dynalite and the local EventBridge accept any.
      AWS_ACCESS_KEY_ID: s3Creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3Creds.secretAccessKey,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL_S3: s3Endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.url,
      [ENV.s3ForcePathStyle]: 'true',
      [ENV.ledgerTable]: tableName,
      [ENV.bucket]: bucket,
      [ENV.ivaEndpoint]: iva.endpoint,
      [ENV.ivaRegion]: iva.region,
      [ENV.ivaService]: iva.service,
      [ENV.volcAccessKey]: iva.credentials.accessKeyId,
      [ENV.volcSecretKey]: iva.credentials.secretAccessKey,
      [ENV.volcSessionToken]: iva.credentials.sessionToken,
      [ENV.volcSecretArn]: undefined,
      [ENV.callbackSecretArn]: undefined,
      [ENV.callbackSecrets]: callbackSecret,
      [ENV.eventBusName]: process.env[ENV.eventBusName] || DEFAULTS.eventBusName,
      POWERTOOLS_SERVICE_NAME: process.env.POWERTOOLS_SERVICE_NAME || 'iva-bridge',
      POWERTOOLS_METRICS_NAMESPACE: process.env.POWERTOOLS_METRICS_NAMESPACE || 'IvaBridge',
      // EMF metric lines would double the output locally; set it to false to see them.
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      ...(options.sweep?.overdueAfterSeconds !== undefined
        ? { [SWEEP_ENV.overdueAfterSeconds]: String(options.sweep.overdueAfterSeconds) }
        : {}),
      ...(options.sweep?.expireUploadsAfterSeconds !== undefined
        ? { [SWEEP_ENV.expireUploadsAfterSeconds]: String(options.sweep.expireUploadsAfterSeconds) }
        : {}),
      ...options.functionEnv,
    };
    for (const [name, value] of Object.entries(env)) setEnv(name, value);

    const fn = async (key: FunctionKey): Promise<LocalFunction> => ({
      name: FUNCTIONS[key].name,
      timeoutMs: FUNCTIONS[key].timeoutMs,
      memoryMb: FUNCTIONS[key].memoryMb,
      handler: options.handlers?.[key] ?? (await loadHandler(key, gen)),
    });
    objectCreated = await fn('objectCreated');
    const functions: Record<RouteTarget, LocalFunction> = {
      directSubmit: await fn('directSubmit'),
      resultCallback: await fn('resultCallback'),
    };

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
      else if (route === 'GET /__local/queue') send(200, { depth: queue.depth, deadLetters: queue.deadLetters.length });
      else send(404, { error: 'NotFound', message: `No local control route ${route}.` });
      return true;
    };
    const api = await startApiGateway({ port: ports.api ?? 0, apiKeys: [apiKey], functions, region, control, log });
    cleanups.push(() => api.close());
    // Stop delivering first on close, so no invocation runs against closed servers.
    cleanups.push(() => queue.stop());
    // ------------------------------------------------------------------ sweep timer
    // The deployed schedule: one run at a time (a run still going skips the tick).
    const sweepFn = await fn('sweep');
    let sweeping = false;
    const sweepTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      invoke(sweepFn, { source: 'aws.events', 'detail-type': 'Scheduled Event' }, region)
        .catch((err: unknown) => log(`sweep failed: ${(err as Error)?.message ?? String(err)}`))
        .finally(() => {
          sweeping = false;
        });
    }, options.sweep?.intervalMs ?? SWEEP_INTERVAL_MS);
    sweepTimer.unref();
    cleanups.push(async () => clearInterval(sweepTimer));

    const callbackUrl = `${api.url}/callbacks/${callbackSecret}`;
    sandbox?.setCallbackUrl(callbackUrl);
    log(`api on ${api.url} (x-api-key required on /v1/* and POST /)`);

    const info: StackInfo = {
      s3Endpoint,
      s3AccessKeyId: s3Creds.accessKeyId,
      s3SecretAccessKey: s3Creds.secretAccessKey,
      s3Region: region,
      bucket,
      apiUrl: api.url,
      apiKey,
      callbackUrl,
      ivaEndpoint: iva.endpoint,
      ivaMode: sandbox ? 'sandbox' : 'remote',
      dynamodbEndpoint: dynalite.endpoint,
      eventBridgeEndpoint: eventBridge.url,
    };
    let closing: Promise<void> | undefined;
    return {
      ...info,
      info,
      sandbox,
      queue,
      deadLetters: queue.deadLetters,
      events: eventBridge.events,
      close: () => (closing ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
