/**
 * Every setting the functions read, in one place. The CDK stack (infra/) sets these
 * environment variables; `npm start` (scripts/local-stack.ts) sets the same ones.
 * Nothing here is secret: secrets are referenced by ARN and read from Secrets Manager
 * (lib/secrets), except in local mode where VOLC_ACCESSKEY/VOLC_SECRETKEY may be used.
 */
export const ENV = {
  ivaEndpoint: 'IVA_ENDPOINT',
  ivaRegion: 'IVA_REGION',
  ivaService: 'IVA_SERVICE',
  /** Secrets Manager secret holding `{"accessKeyId":"…","secretAccessKey":"…"}` for Volcengine. */
  volcSecretArn: 'VOLC_SECRET_ARN',
  /** Local/dev only: the official SDKs' names. Never set on deployed functions. */
  volcAccessKey: 'VOLC_ACCESSKEY',
  volcSecretKey: 'VOLC_SECRETKEY',
  volcSessionToken: 'VOLC_SESSION_TOKEN',
  ledgerTable: 'LEDGER_TABLE',
  bucket: 'BUCKET_NAME',
  defaultTaskId: 'DEFAULT_TASK_ID',
  presignTtlSeconds: 'PRESIGN_TTL_SECONDS',
  /** Optional secret with long-lived AWS keys `{"accessKeyId","secretAccessKey"}` for presigning. */
  presignSecretArn: 'PRESIGN_SECRET_ARN',
  /**
   * Role assumed to sign the GET URLs handed to IVA (object-created) when no long-lived
   * keys are configured: its session has a known expiry, so the URL's real end is known.
   */
  presignRoleArn: 'PRESIGN_ROLE_ARN',
  /** Role assumed to sign the PUT URLs of POST /v1/uploads (direct-submit), for the same reason. */
  uploadRoleArn: 'UPLOAD_ROLE_ARN',
  ivaConcurrency: 'IVA_CONCURRENCY',
  /** `on` turns on the S3 path's adaptive pacing of IVA calls (lib/s3-intake/pacer.ts); default off. */
  ivaPacing: 'IVA_PACING',
  /**
   * IVA submissions per second the account may make: uploads then share one schedule of
   * send slots in the ledger table (lib/s3-intake/shared-pacer.ts).
   */
  ivaRateLimit: 'IVA_RATE_LIMIT',
  /** Object-created invocations that may run at once (the event source's MaximumConcurrency). */
  ivaInvocations: 'IVA_INVOCATIONS',
  /** The intake queue object-created reads (its own redelivery delays and requeues). */
  intakeQueueUrl: 'INTAKE_QUEUE_URL',
  /** That queue's redrive maxReceiveCount: a deferred message is requeued before it. */
  maxReceiveCount: 'MAX_RECEIVE_COUNT',
  /** Per-attempt HTTP timeout towards IVA. */
  ivaTimeoutMs: 'IVA_TIMEOUT_MS',
  callbackSecretArn: 'CALLBACK_SECRET_ARN',
  /** Local/dev only: the callback secret(s) directly, comma-separated. */
  callbackSecrets: 'CALLBACK_SECRETS',
  eventBusName: 'EVENT_BUS_NAME',
  /** Direct-submit: largest decoded body accepted before answering 413. */
  directMaxBytes: 'DIRECT_MAX_BYTES',
  uploadUrlTtlSeconds: 'UPLOAD_URL_TTL_SECONDS',
  /** Local S3 servers (s3rver, Ceph RGW) need path-style addressing. */
  s3ForcePathStyle: 'S3_FORCE_PATH_STYLE',
  /** Sandbox mode (functions/iva-sandbox): the queue its callbacks wait in. */
  sandboxCallbackQueueUrl: 'SANDBOX_CALLBACK_QUEUE_URL',
  /** Sandbox mode (functions/iva-sandbox-callbacks): `<ApiUrl>callbacks/`; the secret is appended. */
  callbackBaseUrl: 'CALLBACK_BASE_URL',
  /** client-auth: the Secrets Manager name prefix of the client keys (`iva-bridge/<stack>/client-keys/`). */
  clientKeyPrefix: 'CLIENT_KEY_PREFIX',
  /** client-auth: the credential scope clients sign with (default IVA's own, so vendor clients need no change). */
  clientAuthRegion: 'CLIENT_AUTH_REGION',
  clientAuthService: 'CLIENT_AUTH_SERVICE',
} as const;

/** The credential scope the API's clients sign with: IVA's, so a client written for IVA changes only host and keys. */
export const CLIENT_AUTH_DEFAULTS = { region: 'cn-north-1', service: 'iva' } as const;

export const DEFAULTS = {
  ivaEndpoint: 'https://open.volcengineapi.com',
  ivaRegion: 'cn-north-1',
  ivaService: 'iva',
  presignTtlSeconds: 6 * 60 * 60,
  ivaConcurrency: 4,
  ivaTimeoutMs: 20_000,
  /** API Gateway base64-encodes binary bodies into a 6 MB Lambda payload: 6 MB * 3/4 minus framing. */
  directMaxBytes: 4_500_000,
  uploadUrlTtlSeconds: 3600,
  eventBusName: 'default',
} as const;

/** IVA's published limit for one image (vendor page): 50 MB. */
export const IMAGE_MAX_BYTES = 50 * 1024 * 1024;

export type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`Environment variable ${name} must be a non-negative number, got "${raw}"`);
  return value;
}

export interface IvaTarget {
  endpoint: string;
  region: string;
  service: string;
  timeoutMs: number;
}

export function ivaTarget(env: Env = process.env): IvaTarget {
  return {
    endpoint: env[ENV.ivaEndpoint] || DEFAULTS.ivaEndpoint,
    region: env[ENV.ivaRegion] || DEFAULTS.ivaRegion,
    service: env[ENV.ivaService] || DEFAULTS.ivaService,
    timeoutMs: int(env, ENV.ivaTimeoutMs, DEFAULTS.ivaTimeoutMs),
  };
}

export function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`Environment variable ${name} is required`);
  return value;
}

export function optional(env: Env, name: string): string | undefined {
  return env[name] || undefined;
}

export function number(env: Env, name: string, fallback: number): number {
  return int(env, name, fallback);
}
