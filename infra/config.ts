/**
 * Deployment settings of the IvaBridge stack, read from CDK context
 * (`cdk deploy -c ivaConcurrency=8 -c alarmEmail=ops@example.com`, or the `context`
 * block of cdk.json). Every key is optional; DEFAULT_CONFIG documents the defaults.
 * Values given with `-c` arrive as strings, so numbers and booleans are parsed here
 * and a bad value fails synthesis with a message naming the key.
 */
import type { StackProps } from 'aws-cdk-lib';
import { DEFAULTS } from '../lib/config';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
/** `vendor`: the functions call Volcengine; `sandbox`: the stack deploys the IVA sandbox and calls it. */
export type IvaMode = 'vendor' | 'sandbox';

export interface IvaBridgeConfig {
  /**
   * `sandbox` deploys the IVA sandbox in the stack (a function URL, credentials from a
   * generated secret, callbacks through a queue) and points the functions at it instead
   * of ivaEndpoint: the whole pipeline runs with no Volcengine account.
   */
  ivaMode: IvaMode;
  /** IVA OpenAPI endpoint (scheme + host). */
  ivaEndpoint: string;
  ivaRegion: string;
  ivaService: string;
  /** TaskID used when an upload names none (metadata or `incoming/<TaskID>/…`). */
  defaultTaskId?: string;
  /** Lifetime asked for presigned GET URLs handed to IVA (seconds). */
  presignTtlSeconds: number;
  /** Lifetime of presigned PUT URLs returned by `POST /v1/uploads` (seconds). */
  uploadUrlTtlSeconds: number;
  /**
   * Most IVA calls in flight at once from uploads, across all containers: split into
   * concurrent invocations (SQS event source MaximumConcurrency, AWS minimum 2) times
   * records submitted at once per invocation (see ivaConcurrencySplit).
   */
  ivaConcurrency: number;
  /** Records of one SQS batch submitted at once by one invocation (at most). */
  ivaCallsPerInvocation: number;
  /**
   * IVA submissions per second the account may make (its flow limit), when known. Uploads
   * then share one schedule of send slots at that rate, in the ledger table, however many
   * object-created invocations run (IVA_RATE_LIMIT); unset: paced at the rate learnt from
   * IVA's throttles, when IVA_PACING is on (lib/s3-intake/README.md).
   */
  ivaRateLimit?: number;
  logLevel: LogLevel;
  /** Use this existing bucket instead of creating one (no lifecycle/versioning/logging set by the stack). */
  existingBucketName?: string;
  /** Region of the existing bucket; checked against the stack's region before anything is created. */
  existingBucketRegion?: string;
  /** E-mail subscribed to the alarm topic; no topic when unset. */
  alarmEmail?: string;
  /** HTTPS URL that receives result, overdue, expired and uncertain events (infra/webhooks.ts); none when unset. */
  resultWebhookUrl?: string;
  /** Webhook deliveries per second at most (EventBridge API destination, 1–300). */
  webhookRateLimit: number;
  /** Days after which objects under `incoming/` expire (and noncurrent versions of every object). */
  incomingExpirationDays: number;
  /** Secret with long-lived AWS keys `{"accessKeyId","secretAccessKey"}` used to presign GET URLs. */
  presignSecretArn?: string;
  /** Receives of one S3 event before it moves to the dead-letter queue. */
  maxReceiveCount: number;
  /** Retention of every log group of the stack (a CloudWatch Logs retention value, in days). */
  logRetentionDays: number;
  /** Usage plan: steady requests per second and burst per API key. */
  apiRateLimit: number;
  apiBurstLimit: number;
  /** Usage plan: requests per day per API key; 0 = no quota. */
  apiQuotaPerDay: number;
  /** EventBridge bus receiving result events. */
  eventBusName: string;
  /**
   * Let the stack set the account's API Gateway CloudWatch role (AWS::ApiGateway::Account,
   * one per account and region: it replaces whatever role other APIs of the account log
   * through). Off by default; turn on only in an account and region that has none yet
   * (`aws apigateway get-account` shows no cloudwatchRoleArn), since access logs need one.
   */
  apiGatewayCloudWatchRole: boolean;
  /**
   * Who may call the IAM API (SigV4, AWS_IAM methods; lib/client-auth/README.md, "Callers
   * inside AWS"): 12-digit account ids and IAM role or user ARNs, named in its resource
   * policy. `['self']` (the default) names the stack's own account, which delegates to
   * that account's IAM policies (a caller there needs `execute-api:Invoke` in its own
   * policy); `[]` (`-c iamPrincipals=none`) builds no IAM API.
   */
  iamPrincipals: readonly string[];
}

export type IvaBridgeProps = StackProps & IvaBridgeConfig;

export const DEFAULT_CONFIG: IvaBridgeConfig = {
  ivaMode: 'vendor',
  ivaEndpoint: DEFAULTS.ivaEndpoint,
  ivaRegion: DEFAULTS.ivaRegion,
  ivaService: DEFAULTS.ivaService,
  // One hour: the longest a URL signed by an assumed role can live (role chaining). Longer
  // needs presignSecretArn; synth warns when the asked TTL cannot be reached.
  presignTtlSeconds: 3600,
  uploadUrlTtlSeconds: DEFAULTS.uploadUrlTtlSeconds,
  ivaConcurrency: DEFAULTS.ivaConcurrency,
  ivaCallsPerInvocation: 2,
  logLevel: 'INFO',
  incomingExpirationDays: 30,
  maxReceiveCount: 5,
  logRetentionDays: 30,
  apiRateLimit: 10,
  apiBurstLimit: 20,
  apiQuotaPerDay: 10_000,
  eventBusName: DEFAULTS.eventBusName,
  apiGatewayCloudWatchRole: false,
  webhookRateLimit: 10,
  iamPrincipals: ['self'],
};

/** `self`, a 12-digit account id, or an IAM role/user ARN (any partition). */
const IAM_PRINCIPAL = /^(self|\d{12}|arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]+)$/;

/** `-c iamPrincipals=123456789012,arn:aws:iam::123456789012:role/x` (or a JSON list in cdk.json); `none`: no IAM API. */
function iamPrincipals(ctx: ContextSource): string[] {
  const raw = ctx.tryGetContext('iamPrincipals');
  if (raw === undefined || raw === null || raw === '') return [...DEFAULT_CONFIG.iamPrincipals];
  const items = Array.isArray(raw)
    ? raw.map((v) => String(v).trim())
    : typeof raw === 'string' || typeof raw === 'number'
      ? String(raw)
          .split(',')
          .map((v) => v.trim())
      : undefined;
  if (!items) throw new ConfigError(`Context "iamPrincipals" must be a comma-separated list, got ${typeof raw}`);
  const list = items.filter((v) => v !== '');
  if (list.length === 1 && list[0] === 'none') return [];
  for (const item of list)
    if (!IAM_PRINCIPAL.test(item))
      throw new ConfigError(
        `Context "iamPrincipals" takes 12-digit account ids, IAM role or user ARNs (arn:aws:iam::123456789012:role/name), self, or none; got "${item}"`,
      );
  if (list.length === 0) throw new ConfigError('Context "iamPrincipals" is empty: name principals, self, or none');
  return [...new Set(list)];
}

/** Retention values CloudWatch Logs accepts. */
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
const LOG_LEVELS: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
const IVA_MODES: readonly IvaMode[] = ['vendor', 'sandbox'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Anything with CDK's `tryGetContext` (a Node, or a plain lookup in tests). */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

function str(ctx: ContextSource, key: keyof IvaBridgeConfig): string | undefined {
  const raw = ctx.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
    throw new ConfigError(`Context "${key}" must be a string, got ${typeof raw}`);
  }
  return String(raw).trim() || undefined;
}

function int(
  ctx: ContextSource,
  key: keyof IvaBridgeConfig,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = str(ctx, key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`Context "${key}" must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function positive(ctx: ContextSource, key: keyof IvaBridgeConfig, max: number): number | undefined {
  const raw = str(ctx, key);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new ConfigError(`Context "${key}" must be a number above 0 and at most ${max}, got "${raw}"`);
  }
  return value;
}

function bool(ctx: ContextSource, key: keyof IvaBridgeConfig, fallback: boolean): boolean {
  const raw = str(ctx, key);
  if (raw === undefined) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ConfigError(`Context "${key}" must be true or false, got "${raw}"`);
}

function regionName(ctx: ContextSource, key: keyof IvaBridgeConfig): string | undefined {
  const raw = str(ctx, key);
  if (raw !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(raw)) {
    throw new ConfigError(`Context "${key}" must be an AWS region name such as eu-west-1, got "${raw}"`);
  }
  return raw;
}

export function configFromContext(ctx: ContextSource): IvaBridgeConfig {
  const d = DEFAULT_CONFIG;
  const logLevel = (str(ctx, 'logLevel') ?? d.logLevel).toUpperCase();
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new ConfigError(`Context "logLevel" must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const logRetentionDays = int(ctx, 'logRetentionDays', d.logRetentionDays, 1);
  if (!RETENTION_DAYS.includes(logRetentionDays)) {
    throw new ConfigError(
      `Context "logRetentionDays" must be one of ${RETENTION_DAYS.join(', ')}, got ${logRetentionDays}`,
    );
  }
  const ivaMode = (str(ctx, 'ivaMode') ?? d.ivaMode).toLowerCase();
  if (!IVA_MODES.includes(ivaMode as IvaMode)) {
    throw new ConfigError(`Context "ivaMode" must be one of ${IVA_MODES.join(', ')}, got "${ivaMode}"`);
  }
  if (ivaMode === 'sandbox' && str(ctx, 'ivaEndpoint') !== undefined) {
    throw new ConfigError(
      'Context "ivaEndpoint" cannot be combined with ivaMode=sandbox: the functions call the sandbox the stack deploys',
    );
  }
  const ivaEndpoint = str(ctx, 'ivaEndpoint') ?? d.ivaEndpoint;
  if (!/^https?:\/\/[^/\s]+\/?$/.test(ivaEndpoint)) {
    throw new ConfigError(`Context "ivaEndpoint" must be a URL with scheme and host only, got "${ivaEndpoint}"`);
  }
  const resultWebhookUrl = str(ctx, 'resultWebhookUrl');
  if (resultWebhookUrl !== undefined && !/^https:\/\/[^\s/?#]+[^\s]*$/.test(resultWebhookUrl)) {
    throw new ConfigError(
      `Context "resultWebhookUrl" must be an https:// URL (EventBridge API destinations call HTTPS only), got "${resultWebhookUrl}"`,
    );
  }
  const alarmEmail = str(ctx, 'alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) {
    throw new ConfigError(`Context "alarmEmail" must be an e-mail address, got "${alarmEmail}"`);
  }
  const presignSecretArn = str(ctx, 'presignSecretArn');
  if (presignSecretArn !== undefined && !/^arn:aws[a-z-]*:secretsmanager:/.test(presignSecretArn)) {
    throw new ConfigError(`Context "presignSecretArn" must be a Secrets Manager secret ARN, got "${presignSecretArn}"`);
  }
  const apiRateLimit = int(ctx, 'apiRateLimit', d.apiRateLimit, 1, 10_000);
  return {
    ivaMode: ivaMode as IvaMode,
    ivaEndpoint: ivaEndpoint.replace(/\/$/, ''),
    ivaRegion: str(ctx, 'ivaRegion') ?? d.ivaRegion,
    ivaService: str(ctx, 'ivaService') ?? d.ivaService,
    defaultTaskId: str(ctx, 'defaultTaskId'),
    // Presigned URLs (SigV4) cannot outlive 7 days.
    presignTtlSeconds: int(ctx, 'presignTtlSeconds', d.presignTtlSeconds, 60, 7 * 24 * 3600),
    uploadUrlTtlSeconds: int(ctx, 'uploadUrlTtlSeconds', d.uploadUrlTtlSeconds, 60, 7 * 24 * 3600),
    // SQS event sources accept MaximumConcurrency 2..1000.
    ivaConcurrency: int(ctx, 'ivaConcurrency', d.ivaConcurrency, 2, 1000),
    ivaCallsPerInvocation: int(ctx, 'ivaCallsPerInvocation', d.ivaCallsPerInvocation, 1, 10),
    ivaRateLimit: positive(ctx, 'ivaRateLimit', 10_000),
    logLevel: logLevel as LogLevel,
    existingBucketName: str(ctx, 'existingBucketName'),
    existingBucketRegion: regionName(ctx, 'existingBucketRegion'),
    alarmEmail,
    resultWebhookUrl,
    webhookRateLimit: int(ctx, 'webhookRateLimit', d.webhookRateLimit, 1, 300),
    incomingExpirationDays: int(ctx, 'incomingExpirationDays', d.incomingExpirationDays, 1),
    presignSecretArn,
    maxReceiveCount: int(ctx, 'maxReceiveCount', d.maxReceiveCount, 1, 1000),
    logRetentionDays,
    apiRateLimit,
    apiBurstLimit: int(ctx, 'apiBurstLimit', Math.max(d.apiBurstLimit, apiRateLimit), 1, 5000),
    apiQuotaPerDay: int(ctx, 'apiQuotaPerDay', d.apiQuotaPerDay, 0),
    eventBusName: str(ctx, 'eventBusName') ?? d.eventBusName,
    apiGatewayCloudWatchRole: bool(ctx, 'apiGatewayCloudWatchRole', d.apiGatewayCloudWatchRole),
    iamPrincipals: iamPrincipals(ctx),
  };
}

export interface ConcurrencySplit {
  /** SQS event source MaximumConcurrency: object-created invocations at once. */
  invocations: number;
  /** IVA_CONCURRENCY: records submitted at once inside one invocation. */
  perInvocation: number;
}

/**
 * Splits the total IVA-call bound so that invocations × perInvocation never exceeds it:
 * both the event source and each invocation bound their own concurrency, and the
 * product is what reaches IVA.
 */
export function ivaConcurrencySplit(total: number, callsPerInvocation: number): ConcurrencySplit {
  const invocations = Math.max(2, Math.floor(total / Math.max(1, callsPerInvocation)));
  return { invocations, perInvocation: Math.max(1, Math.min(callsPerInvocation, Math.floor(total / invocations))) };
}
