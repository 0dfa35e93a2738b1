/**
 * The whole of iva-bridge in one stack: bucket → SQS → object-created, a REST API in
 * front of direct-submit and result-callback, the DynamoDB ledger, two secrets,
 * alarms. Every role is written out by hand (no managed policies, no wildcard actions)
 * so the template shows exactly what each function may do.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Annotations,
  Aws,
  CfnOutput,
  CfnRule,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct, IConstruct } from 'constructs';
import { ROUTES } from '../lib/api/routes';
import { ROUTE_NOT_FOUND_CODE, ROUTE_NOT_FOUND_MESSAGE, ROUTE_NOT_FOUND_STATUS } from '../lib/http/route-not-found';
import { DEFAULTS, ENV } from '../lib/config';
import { DEFAULT_SWEEP, SWEEP_ENV } from '../lib/sweep/settings';
import { CALLBACK_INBOX_PREFIX, INCOMING_PREFIX, PINNED_PREFIX, RESULTS_PREFIX } from '../lib/storage/prefixes';
import { INBOX_METADATA } from '../lib/callback/inbox-metadata';
import { ConfigError, ivaConcurrencySplit, type IvaBridgeConfig, type IvaBridgeProps } from './config';
import { addMonitoring } from './monitoring';
import { ResultWebhook } from './webhooks';
import { clientKeyPrefix } from '../lib/client-auth/keys';
import { REPLAY_PREFIX } from '../lib/client-auth/replay';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const STAGE_NAME = 'prod';
/** Value put in the Volcengine secret at creation; the operator replaces it after deploy. */
export const VOLC_PLACEHOLDER_ACCESS_KEY = 'REPLACE_ME';

/**
 * Memory and timeout per function, and why.
 * - object-created: one IVA call per record of a batch of up to 10, bounded by
 *   IVA_CONCURRENCY; 60 s leaves a 20 s IVA attempt plus a retry with backoff and the
 *   ledger writes (IVA budget = timeout − margin). 512 MB: no bodies held, only JSON,
 *   but Lambda CPU scales with memory and signing/TLS are CPU-bound at cold start.
 * - direct-submit: API Gateway stops waiting after 29 s, so a longer timeout would only
 *   burn money. 1024 MB: the decoded body (≤ 4.5 MB) is held once plus the multipart
 *   re-encoding towards IVA, and more CPU shortens the upload.
 * - result-callback: files inbox objects (callback bodies up to 10 MB), see its spec below.
 * - callback-authorizer: the callback route's path-secret check, see its spec below.
 * - client-auth: the REQUEST authorizer of every route but the callback: one secret
 *   read (cached per container), two HMAC chains, one conditional DynamoDB put. 256 MB
 *   for the SDK's cold start; 5 s bounds a stuck Secrets Manager or DynamoDB call.
 */
export const FUNCTION_SPECS = {
  objectCreated: { dir: 'object-created', memorySize: 512, timeoutSeconds: 60, ivaTimeoutMs: DEFAULTS.ivaTimeoutMs },
  directSubmit: { dir: 'direct-submit', memorySize: 1024, timeoutSeconds: 29, ivaTimeoutMs: DEFAULTS.ivaTimeoutMs },
  // result-callback files bodies API Gateway put in the inbox (up to 10 MB each, one at a
  // time, a batch of CALLBACK_INBOX_BATCH): 512 MB holds a body, its copy to S3 and the
  // hash with room, and buys CPU for the hash. 60 s: a batch of 10 MB bodies at S3's
  // in-region speed plus a 3 s event-claim wait each.
  resultCallback: { dir: 'result-callback', memorySize: 512, timeoutSeconds: 60, ivaTimeoutMs: undefined },
  // The callback route's REQUEST authorizer: one cached Secrets Manager read and a
  // constant-time comparison; 256 MB for the SDK's cold start, 5 s bounds it.
  callbackAuthorizer: { dir: 'callback-authorizer', memorySize: 256, timeoutSeconds: 5, ivaTimeoutMs: undefined },
  clientAuth: { dir: 'client-auth', memorySize: 256, timeoutSeconds: 5, ivaTimeoutMs: undefined },
  // Scans the ledger once per run (lib/sweep/README.md): no bodies, small memory; 5 min
  // bounds a large table's scan, well under the schedule's period.
  sweep: { dir: 'sweep', memorySize: 256, timeoutSeconds: 300, ivaTimeoutMs: undefined },
  // Sandbox mode only. The sandbox holds a submitted file (≤ 6 MB through its function
  // URL) or a downloaded Source=url object in memory, verifies and hashes it: 1024 MB
  // for the CPU and the copy. 60 s: object-created's IVA attempt waits 20 s plus the
  // body's time, and the sandbox's own download is bounded by 30 s.
  ivaSandbox: { dir: 'iva-sandbox', memorySize: 1024, timeoutSeconds: 60, ivaTimeoutMs: undefined },
  // Posts one small JSON body per queued callback to the stack's own API.
  ivaSandboxCallbacks: { dir: 'iva-sandbox-callbacks', memorySize: 256, timeoutSeconds: 15, ivaTimeoutMs: undefined },
} as const;

/** Sandbox mode: the access key id of the generated sandbox key pair (its secret key is generated). */
export const SANDBOX_ACCESS_KEY_ID = 'AKLTIVABRIDGESANDBOX';
/** Sandbox mode: callbacks wait this long in the queue, as IVA's analysis would take a moment. */
export const SANDBOX_CALLBACK_DELAY_SECONDS = 2;
/** Sandbox mode: deliveries of one callback before it moves to the sandbox's DLQ (IVA retries a few times). */
export const SANDBOX_CALLBACK_ATTEMPTS = 4;

/** How often the sweep runs; its marks are hours apart, so minutes are precise enough. */
export const SWEEP_SCHEDULE_MINUTES = 15;

/** Inbox objects per result-callback invocation (each up to 10 MB, filed one after another). */
export const CALLBACK_INBOX_BATCH = 5;
/** Deliveries of one inbox event before it moves to the inbox DLQ (the inbox object stays). */
export const CALLBACK_INBOX_MAX_RECEIVES = 8;

/** SQS batching window: a few seconds groups bursts of uploads into one invocation. */
const MAX_BATCHING_WINDOW_SECONDS = 5;
/** Stage-wide throttle (all keys together, and the key-less callback route). */
const STAGE_RATE_LIMIT = 100;
const STAGE_BURST_LIMIT = 200;
/** The callback route has no API key, so no usage plan: its own, tighter limit. */
const CALLBACK_RATE_LIMIT = 50;
const CALLBACK_BURST_LIMIT = 100;

const ESM_REQUIRE_SHIM = "import { createRequire } from 'module';const require = createRequire(import.meta.url);";

export class IvaBridgeStack extends Stack {
  readonly bucket: s3.IBucket;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly table: dynamodb.Table;
  readonly api: apigw.RestApi;
  /** The IAM (SigV4) API; absent with `-c iamPrincipals=none`. */
  readonly iamApi?: apigw.RestApi;
  readonly functions: {
    objectCreated: NodejsFunction;
    directSubmit: NodejsFunction;
    resultCallback: NodejsFunction;
    sweep: NodejsFunction;
    clientAuth: NodejsFunction;
    callbackAuthorizer: NodejsFunction;
  };
  /** S3 events of callbacks-inbox/ objects, consumed by result-callback; and its dead letters. */
  readonly callbackInboxQueue: sqs.Queue;
  readonly callbackInboxDeadLetterQueue: sqs.Queue;
  /** Sandbox mode only: the IVA sandbox, its callback sender and queues. */
  readonly sandbox?: {
    fn: NodejsFunction;
    url: lambda.FunctionUrl;
    callbacks: NodejsFunction;
    queue: sqs.Queue;
    deadLetterQueue: sqs.Queue;
  };

  constructor(scope: Construct, id: string, props: IvaBridgeProps) {
    super(scope, id, props);
    // Server access logs are delivered through a bucket policy rather than ACLs, which
    // new buckets disable; set here so the stack does not depend on cdk.json flags.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    const config: IvaBridgeConfig = props;
    const retention = config.logRetentionDays as logs.RetentionDays;

    // ---------------------------------------------------------------- storage
    this.bucket = config.existingBucketName
      ? s3.Bucket.fromBucketName(this, 'Bucket', config.existingBucketName)
      : this.createBucket(config);

    this.table = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Idempotency-Key records (IDEM#…) carry it: DynamoDB removes them after their 24 h
      // (reads also treat an expired one as absent). Submissions never carry it.
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    // The status index (lib/ledger): GET /v1/submissions?status=… across tasks.
    this.table.addGlobalSecondaryIndex({
      indexName: 'gsi2',
      partitionKey: { name: 'gsi2pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi2sk', type: dynamodb.AttributeType.STRING },
    });

    // ---------------------------------------------------------------- secrets
    const volcSecret = new secretsmanager.Secret(this, 'VolcCredentials', {
      description:
        'Volcengine AK/SK used to sign IVA calls. Put {"accessKeyId":"…","secretAccessKey":"…"} after deploy.',
      // A generated placeholder keeps any real value out of the template.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ accessKeyId: VOLC_PLACEHOLDER_ACCESS_KEY }),
        generateStringKey: 'secretAccessKey',
        excludePunctuation: true,
        passwordLength: 40,
      },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const callbackSecret = new secretsmanager.Secret(this, 'CallbackSecret', {
      description: 'Path secret of the IVA callback URL (POST /callbacks/{secret}).',
      // Alphanumeric only: it travels in a URL path segment unescaped.
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(volcSecret, [
      {
        id: 'AwsSolutions-SMG4',
        reason:
          'Holds Volcengine keys managed outside AWS; they are rotated in the Volcengine console and written with put-secret-value (README). The functions re-read the secret within minutes and on an auth refusal.',
      },
    ]);
    acknowledge(callbackSecret, [
      {
        id: 'AwsSolutions-SMG4',
        reason:
          'The callback secret is part of the URL registered with IVA; rotating it needs the IVA task reconfigured, so rotation is a documented manual procedure (README) rather than a rotation Lambda.',
      },
    ]);
    const presignSecretArns = config.presignSecretArn ? secretResourceArns(config.presignSecretArn) : [];
    const sandboxMode = config.ivaMode === 'sandbox';
    // Sandbox mode: a generated key pair that both sides read (the functions sign with it,
    // the sandbox verifies with it): no key in the template, none to hand out. The
    // Volcengine secret above still exists, so real keys can be put before switching.
    const sandboxSecret = sandboxMode
      ? new secretsmanager.Secret(this, 'IvaSandboxCredentials', {
          description:
            'iva-bridge sandbox mode: generated key pair the functions sign IVA calls with and the sandbox verifies.',
          generateSecretString: {
            secretStringTemplate: JSON.stringify({ accessKeyId: SANDBOX_ACCESS_KEY_ID }),
            generateStringKey: 'secretAccessKey',
            excludePunctuation: true,
            passwordLength: 40,
          },
          removalPolicy: RemovalPolicy.DESTROY,
        })
      : undefined;
    if (sandboxSecret) {
      acknowledge(sandboxSecret, [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'Test-only key pair of the in-stack IVA sandbox (ivaMode=sandbox), read by the sandbox and the functions alone; it guards no real service and goes away with the stack or the switch to real keys.',
        },
      ]);
    }
    /** The secret the functions sign IVA calls with. */
    const ivaSecret = sandboxSecret ?? volcSecret;

    // ---------------------------------------------------------------- queue
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'ObjectCreatedQueue', {
      // SSE-SQS, not KMS: S3 event notifications cannot publish to a queue encrypted
      // with the AWS-managed SQS KMS key.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS guidance for SQS event sources: at least 6 × function timeout (+ batching window),
      // so a message is not redelivered while a throttled invocation still holds it.
      visibilityTimeout: Duration.seconds(
        6 * FUNCTION_SPECS.objectCreated.timeoutSeconds + MAX_BATCHING_WINDOW_SECONDS,
      ),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: config.maxReceiveCount },
    });
    this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, s3EventsTo(this.queue, this.bucket.bucketArn), {
      prefix: INCOMING_PREFIX,
    });
    // Callback bodies: API Gateway PUTs each under callbacks-inbox/ and S3 tells this
    // queue; result-callback files it (lib/callback/inbox.ts). A queue rather than S3
    // invoking the function directly: its retries are many and spaced (visibility
    // timeout), its dead letters can be moved back with start-message-move-task, and the
    // inbox object itself stays in the bucket until it was filed, whatever happens here.
    this.callbackInboxDeadLetterQueue = new sqs.Queue(this, 'CallbackInboxDlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.callbackInboxQueue = new sqs.Queue(this, 'CallbackInboxQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(6 * FUNCTION_SPECS.resultCallback.timeoutSeconds),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.callbackInboxDeadLetterQueue, maxReceiveCount: CALLBACK_INBOX_MAX_RECEIVES },
    });
    this.bucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      s3EventsTo(this.callbackInboxQueue, this.bucket.bucketArn),
      { prefix: CALLBACK_INBOX_PREFIX },
    );
    if (config.existingBucketName) this.requireBucketRegion(config);

    // ---------------------------------------------------------------- functions
    const shared: Record<string, string> = {
      [ENV.ledgerTable]: this.table.tableName,
      [ENV.bucket]: this.bucket.bucketName,
      POWERTOOLS_SERVICE_NAME: 'iva-bridge',
      POWERTOOLS_METRICS_NAMESPACE: 'IvaBridge',
      POWERTOOLS_LOG_LEVEL: config.logLevel,
      LOG_LEVEL: config.logLevel,
      NODE_OPTIONS: '--enable-source-maps',
    };
    const sandbox = sandboxMode && sandboxSecret ? this.createSandbox(config, retention, sandboxSecret) : undefined;
    const iva: Record<string, string> = {
      // The function URL ends in `/`; the IVA client posts to `<endpoint>/?Action=…` either way.
      [ENV.ivaEndpoint]: sandbox ? sandbox.url.url : config.ivaEndpoint,
      [ENV.ivaRegion]: config.ivaRegion,
      [ENV.ivaService]: config.ivaService,
      [ENV.volcSecretArn]: ivaSecret.secretArn,
      ...(config.defaultTaskId ? { [ENV.defaultTaskId]: config.defaultTaskId } : {}),
    };

    const ivaCalls = ivaConcurrencySplit(config.ivaConcurrency, config.ivaCallsPerInvocation);
    const objectCreated = this.createFunction('ObjectCreated', FUNCTION_SPECS.objectCreated, retention, {
      ...shared,
      ...iva,
      [ENV.ivaTimeoutMs]: String(FUNCTION_SPECS.objectCreated.ivaTimeoutMs),
      [ENV.presignTtlSeconds]: String(config.presignTtlSeconds),
      [ENV.ivaConcurrency]: String(ivaCalls.perInvocation),
      // The account's flow limit: one schedule of send slots shared by every invocation.
      ...(config.ivaRateLimit !== undefined
        ? { [ENV.ivaRateLimit]: String(config.ivaRateLimit), [ENV.ivaInvocations]: String(ivaCalls.invocations) }
        : {}),
      ...(config.presignSecretArn ? { [ENV.presignSecretArn]: config.presignSecretArn } : {}),
      // Its own redelivery: growing delays, and a deferred message requeued before the DLQ
      // (lib/s3-intake/redelivery.ts).
      [ENV.intakeQueueUrl]: this.queue.queueUrl,
      [ENV.maxReceiveCount]: String(config.maxReceiveCount),
      // `IVA Submission Uncertain` events for uploads (lib/iva/README.md).
      [ENV.eventBusName]: config.eventBusName,
    });
    const directSubmit = this.createFunction('DirectSubmit', FUNCTION_SPECS.directSubmit, retention, {
      ...shared,
      ...iva,
      [ENV.ivaTimeoutMs]: String(FUNCTION_SPECS.directSubmit.ivaTimeoutMs),
      [ENV.directMaxBytes]: String(DEFAULTS.directMaxBytes),
      [ENV.uploadUrlTtlSeconds]: String(config.uploadUrlTtlSeconds),
      // `IVA Submission Uncertain` events (lib/iva/README.md).
      [ENV.eventBusName]: config.eventBusName,
      // POST /v1/submissions/{id}/resubmit queues the object's S3 event again (lib/api/resubmit.ts).
      [ENV.intakeQueueUrl]: this.queue.queueUrl,
    });
    const resultCallback = this.createFunction('ResultCallback', FUNCTION_SPECS.resultCallback, retention, {
      ...shared,
      [ENV.eventBusName]: config.eventBusName,
    });
    // Only the secret: no table, bucket or bus (it runs before every callback).
    const callbackAuthorizer = this.createFunction('CallbackAuthorizer', FUNCTION_SPECS.callbackAuthorizer, retention, {
      [ENV.callbackSecretArn]: callbackSecret.secretArn,
      POWERTOOLS_SERVICE_NAME: 'iva-bridge',
      POWERTOOLS_LOG_LEVEL: config.logLevel,
      LOG_LEVEL: config.logLevel,
    });
    // The client keys' names (lib/client-auth/keys.ts), the ledger for used signatures,
    // and direct-submit's size limit (one authorizer per method: it is also the size guard).
    const clientAuth = this.createFunction('ClientAuth', FUNCTION_SPECS.clientAuth, retention, {
      [ENV.clientKeyPrefix]: clientKeyPrefix(this.stackName),
      [ENV.ledgerTable]: this.table.tableName,
      [ENV.directMaxBytes]: String(DEFAULTS.directMaxBytes),
    });
    const sweep = this.createFunction('Sweep', FUNCTION_SPECS.sweep, retention, {
      ...shared,
      [ENV.eventBusName]: config.eventBusName,
      [SWEEP_ENV.overdueAfterSeconds]: String(DEFAULT_SWEEP.overdueAfterMs / 1000),
      [SWEEP_ENV.expireUploadsAfterSeconds]: String(DEFAULT_SWEEP.expireUploadsAfterMs / 1000),
      [SWEEP_ENV.abandonedAfterSeconds]: String(DEFAULT_SWEEP.abandonedAfterMs / 1000),
    });
    // One run at a time: overlapping runs would be safe (conditional marks) but wasteful.
    (sweep.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions = 1;
    new events.Rule(this, 'SweepSchedule', {
      description: 'iva-bridge: marks overdue results and expired uploads (lib/sweep)',
      schedule: events.Schedule.rate(Duration.minutes(SWEEP_SCHEDULE_MINUTES)),
      targets: [new targets.LambdaFunction(sweep, { retryAttempts: 2 })],
    });
    this.functions = { objectCreated, directSubmit, resultCallback, clientAuth, sweep, callbackAuthorizer };
    resultCallback.addEventSource(
      new SqsEventSource(this.callbackInboxQueue, { batchSize: CALLBACK_INBOX_BATCH, reportBatchItemFailures: true }),
    );
    if (config.resultWebhookUrl) {
      const webhook = new ResultWebhook(this, 'ResultWebhook', {
        url: config.resultWebhookUrl,
        eventBus: config.eventBusName.startsWith('arn:')
          ? events.EventBus.fromEventBusArn(this, 'WebhookBus', config.eventBusName)
          : events.EventBus.fromEventBusName(this, 'WebhookBus', config.eventBusName),
        rateLimitPerSecond: config.webhookRateLimit,
      });
      acknowledge(webhook.secret, [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'The webhook secret is shared with the receiving system; rotating it needs that system updated too, so rotation is a documented manual step (README "Webhooks").',
        },
      ]);
      acknowledge(webhook.deadLetterQueue, [
        {
          id: 'AwsSolutions-SQS3',
          reason: 'This queue is the dead-letter queue of the webhook rule target; it has none of its own.',
        },
      ]);
    }

    objectCreated.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(MAX_BATCHING_WINDOW_SECONDS),
        reportBatchItemFailures: true,
        // With IVA_CONCURRENCY per invocation, the bound on IVA calls from uploads.
        maxConcurrency: ivaCalls.invocations,
      }),
    );

    // ---------------------------------------------------------------- grants
    // Only the calls lib/ledger makes: single-item reads and writes for every function,
    // and Query on the task index for the one that serves listings (direct-submit).
    const ledgerAccess = new iam.PolicyStatement({
      sid: 'LedgerReadWrite',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      resources: [this.table.tableArn],
    });
    const ledgerListing = new iam.PolicyStatement({
      sid: 'LedgerListByTask',
      actions: ['dynamodb:Query'],
      resources: [`${this.table.tableArn}/index/gsi1`, `${this.table.tableArn}/index/gsi2`],
    });
    const readSecret = (sid: string, ...arns: string[]) =>
      new iam.PolicyStatement({ sid, actions: ['secretsmanager:GetSecretValue'], resources: arns });

    objectCreated.addToRolePolicy(ledgerAccess);
    // The event source mapping grants receive, delete and ChangeMessageVisibility; a
    // deferred message on its last receive is sent again (lib/s3-intake/redelivery.ts).
    this.queue.grantSendMessages(objectCreated);
    // Resubmitting an uncertain upload sends its S3 event again (lib/api/resubmit.ts).
    this.queue.grantSendMessages(directSubmit);
    objectCreated.addToRolePolicy(
      // GetObject covers HeadObject and lets the presigned GET work; nothing else in the bucket.
      new iam.PolicyStatement({
        sid: 'ReadIncoming',
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.bucket.arnForObjects(`${INCOMING_PREFIX}*`)],
      }),
    );
    objectCreated.addToRolePolicy(
      // Unversioned buckets only (an existing bucket without versioning): the upload is
      // copied to pinned/ before IVA gets a URL, so IVA fetches the announced bytes
      // (lib/s3-intake/pin.ts). The copy is deleted again when it did not match.
      new iam.PolicyStatement({
        sid: 'PinUnversionedUploads',
        actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
        resources: [this.bucket.arnForObjects(`${PINNED_PREFIX}*`)],
      }),
    );
    objectCreated.addToRolePolicy(readSecret('ReadVolcSecret', ivaSecret.secretArn, ...presignSecretArns));
    // Roles the functions assume to sign URLs: an assumed session has a known expiry, so
    // the functions report each URL's real end (Lambda's own role credentials carry none,
    // and a URL dies with the session that signed it). Chained from the function's role,
    // a session lives at most 1 h; longer IVA URLs need presignSecretArn.
    if (!config.presignSecretArn) {
      const role = this.signingRole(
        'PresignGetRole',
        objectCreated,
        ['s3:GetObject', 's3:GetObjectVersion'],
        [INCOMING_PREFIX, PINNED_PREFIX],
      );
      objectCreated.addEnvironment(ENV.presignRoleArn, role.roleArn);
    }
    directSubmit.addEnvironment(
      ENV.uploadRoleArn,
      this.signingRole('UploadUrlRole', directSubmit, ['s3:PutObject']).roleArn,
    );
    this.warnUnreachableTtls(config);

    directSubmit.addToRolePolicy(ledgerAccess);
    // A failed request forgets its Idempotency-Key record (lib/ledger/idempotency.ts): those items only.
    directSubmit.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ForgetIdempotencyKeys',
        actions: ['dynamodb:DeleteItem'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['IDEM#*'] } },
      }),
    );
    directSubmit.addToRolePolicy(ledgerListing);
    directSubmit.addToRolePolicy(
      // Presigned PUT URLs returned by POST /v1/uploads are signed with this role; PutObject
      // also covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload.
      new iam.PolicyStatement({
        sid: 'WriteIncoming',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${INCOMING_PREFIX}*`)],
      }),
    );
    directSubmit.addToRolePolicy(
      // POST /v1/uploads/{id}/abort, and a multipart upload whose reservation failed.
      new iam.PolicyStatement({
        sid: 'AbortIncomingUploads',
        actions: ['s3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects(`${INCOMING_PREFIX}*`)],
      }),
    );
    directSubmit.addToRolePolicy(readSecret('ReadVolcSecret', ivaSecret.secretArn));
    // GET /v1/submissions/{id}/result(s): reads stored callback bodies (and signs the
    // short-lived GET URL large ones redirect to); lists only under results/.
    directSubmit.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadResults',
        actions: ['s3:GetObject'],
        resources: [this.bucket.arnForObjects(`${RESULTS_PREFIX}*`)],
      }),
    );
    directSubmit.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListResults',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${RESULTS_PREFIX}*`] } },
      }),
    );
    // POST /v1/uploads/{id}/complete answered NoSuchUpload: is the object there (an earlier
    // attempt completed it)? Listed under its own key, never read (no GetObject on incoming/).
    directSubmit.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'FindCompletedUploads',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${INCOMING_PREFIX}*`] } },
      }),
    );

    // client-auth: reads client keys (one secret per access key id) and records each used
    // signature once (lib/client-auth/replay.ts): those items only.
    clientAuth.addToRolePolicy(
      readSecret(
        'ReadClientKeys',
        `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${clientKeyPrefix(this.stackName)}*`,
      ),
    );
    clientAuth.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RecordUsedSignatures',
        actions: ['dynamodb:PutItem'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${REPLAY_PREFIX}*`] } },
      }),
    );
    acknowledge(clientAuth.role as iam.Role, [
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${clientKeyPrefix(this.stackName)}*]`,
        reason:
          'One secret per client access key, issued after deploy (iva-bridge keys issue): their names share the stack prefix and cannot be listed in advance.',
      },
    ]);

    sweep.addToRolePolicy(ledgerAccess);
    sweep.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ScanLedger', actions: ['dynamodb:Scan'], resources: [this.table.tableArn] }),
    );
    // An expired multipart upload: its latest part's time, then abort (lib/sweep/multipart.ts).
    sweep.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'AbortExpiredUploads',
        actions: ['s3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects(`${INCOMING_PREFIX}*`)],
      }),
    );
    sweep.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'EmitSweepEvents',
        actions: ['events:PutEvents'],
        resources: [
          config.eventBusName.startsWith('arn:')
            ? config.eventBusName
            : `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:event-bus/${config.eventBusName}`,
        ],
      }),
    );

    resultCallback.addToRolePolicy(ledgerAccess);
    resultCallback.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'StoreResults',
        actions: ['s3:PutObject', 's3:GetObject'],
        resources: [this.bucket.arnForObjects(`${RESULTS_PREFIX}*`)],
      }),
    );
    resultCallback.addToRolePolicy(
      // Reads each inbox object and deletes it once filed; nothing else under callbacks-inbox/.
      new iam.PolicyStatement({
        sid: 'FileInbox',
        actions: ['s3:GetObject', 's3:DeleteObject'],
        resources: [this.bucket.arnForObjects(`${CALLBACK_INBOX_PREFIX}*`)],
      }),
    );
    callbackAuthorizer.addToRolePolicy(readSecret('ReadCallbackSecret', callbackSecret.secretArn));
    const eventBusArn = config.eventBusName.startsWith('arn:')
      ? config.eventBusName
      : `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:event-bus/${config.eventBusName}`;
    resultCallback.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'EmitResultEvents', actions: ['events:PutEvents'], resources: [eventBusArn] }),
    );
    // `IVA Submission Uncertain`: a submission (direct or upload) whose answer from IVA was lost.
    for (const fn of [directSubmit, objectCreated])
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'EmitSubmissionEvents',
          actions: ['events:PutEvents'],
          resources: [eventBusArn],
        }),
      );
    for (const fn of [objectCreated, directSubmit, resultCallback, sweep]) {
      const prefixes =
        fn === objectCreated
          ? [INCOMING_PREFIX, PINNED_PREFIX]
          : fn === sweep
            ? [INCOMING_PREFIX]
            : fn === directSubmit
              ? [INCOMING_PREFIX, RESULTS_PREFIX]
              : [RESULTS_PREFIX, CALLBACK_INBOX_PREFIX];
      acknowledge(
        fn.role as iam.Role,
        prefixes.map((prefix) => ({
          id: `AwsSolutions-IAM5[Resource::${this.objectArnFinding(prefix)}]`,
          reason:
            'Object ARNs are limited to key prefixes (incoming/*, pinned/*, results/*, callbacks-inbox/*): object keys are chosen by uploaders, IVA and API Gateway request ids, so they cannot be listed in advance.',
        })),
      );
    }

    // ---------------------------------------------------------------- API
    const { api, apiKey, accessLogs, iamApi } = this.createApi(
      config,
      retention,
      directSubmit,
      callbackAuthorizer,
      clientAuth,
    );
    this.api = api;
    if (iamApi) this.iamApi = iamApi;
    if (sandbox) {
      const callbacks = this.createSandboxCallbackSender(retention, sandbox.queue, callbackSecret);
      this.sandbox = { ...sandbox, callbacks };
    }

    // ---------------------------------------------------------------- dashboard and alarms
    // One place for both (infra/monitoring.ts): the alarms are the facade's.
    const alarmTopic = config.alarmEmail
      ? new sns.Topic(this, 'AlarmTopic', { displayName: 'iva-bridge alarms', enforceSSL: true })
      : undefined;
    if (alarmTopic && config.alarmEmail) alarmTopic.addSubscription(new subs.EmailSubscription(config.alarmEmail));
    const monitoring = addMonitoring(this, {
      functions: {
        ObjectCreated: objectCreated,
        DirectSubmit: directSubmit,
        ResultCallback: resultCallback,
        ClientAuth: clientAuth,
        CallbackAuthorizer: callbackAuthorizer,
        Sweep: sweep,
        ...(this.sandbox ? { IvaSandbox: this.sandbox.fn, IvaSandboxCallbacks: this.sandbox.callbacks } : {}),
      },
      // ClientAuth too: a failing authorizer turns every API call into a 500.
      // CallbackAuthorizer too: failing, it turns every callback into a 5xx (IVA retries in vain).
      alarmOnErrors: ['ObjectCreated', 'DirectSubmit', 'ResultCallback', 'ClientAuth', 'CallbackAuthorizer'],
      api,
      ...(iamApi ? { iamApi } : {}),
      stageName: STAGE_NAME,
      accessLogs,
      queue: this.queue,
      deadLetterQueue: this.deadLetterQueue,
      callbackInbox: { queue: this.callbackInboxQueue, deadLetterQueue: this.callbackInboxDeadLetterQueue },
      ...(this.sandbox
        ? { sandboxQueue: { queue: this.sandbox.queue, deadLetterQueue: this.sandbox.deadLetterQueue } }
        : {}),
      ...(alarmTopic ? { alarmTopic } : {}),
    });
    const dashboard = monitoring.createdDashboard();
    if (dashboard) {
      new CfnOutput(this, 'DashboardUrl', {
        value: `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${dashboard.dashboardName}`,
        description:
          'CloudWatch dashboard: submissions, failures by code, uncertain/overdue, time to result, callbacks, API, queues, functions.',
      });
    }

    // ---------------------------------------------------------------- outputs
    const keyCommand = (keyId: string) =>
      `aws apigateway get-api-key --api-key ${keyId} --include-value --query value --output text`;
    new CfnOutput(this, 'BucketName', {
      value: this.bucket.bucketName,
      description: `Upload objects under ${INCOMING_PREFIX}<TaskID>/ to submit them.`,
    });
    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the API (stage included).' });
    new CfnOutput(this, 'ClientKeyPrefix', {
      value: clientKeyPrefix(this.stackName),
      description: 'Secrets Manager name prefix of the client access keys (iva-bridge keys issue|rotate|revoke|list).',
    });
    new CfnOutput(this, 'ApiKeyId', {
      value: apiKey.keyId,
      description: 'Id of the default API key; read its value with ApiKeyValueCommand.',
    });
    new CfnOutput(this, 'ApiKeyValueCommand', {
      value: keyCommand(apiKey.keyId),
      description: 'Prints the default usage plan key (not a credential: clients sign with a client key).',
    });
    new CfnOutput(this, 'CallbackUrlCommand', {
      value: `echo "${this.api.url}callbacks/$(aws secretsmanager get-secret-value --secret-id ${callbackSecret.secretArn} --query SecretString --output text)"`,
      description:
        'Prints the callback URL to register with IVA (ApiUrl + callbacks/ + the callback secret). Treat it as a secret.',
    });
    new CfnOutput(this, 'CallbackSecretArn', { value: callbackSecret.secretArn });
    new CfnOutput(this, 'VolcSecretArn', {
      value: volcSecret.secretArn,
      description: 'Put the Volcengine keys here with VolcSecretPutCommand.',
    });
    new CfnOutput(this, 'VolcSecretPutCommand', {
      value: `aws secretsmanager put-secret-value --secret-id ${volcSecret.secretArn} --secret-string '{"accessKeyId":"AK...","secretAccessKey":"SK..."}'`,
      description:
        'Replace AK.../SK... with the Volcengine access key (prefer --secret-string file://volc.json to keep keys out of shell history).',
    });
    new CfnOutput(this, 'DlqUrl', {
      value: this.deadLetterQueue.queueUrl,
      description: 'Dead-letter queue of S3 events that kept failing.',
    });
    new CfnOutput(this, 'QueueArn', {
      value: this.queue.queueArn,
      description: 'Redrive target: aws sqs start-message-move-task --source-arn <DLQ arn> --destination-arn <this>.',
    });
    new CfnOutput(this, 'DlqArn', { value: this.deadLetterQueue.queueArn });
    new CfnOutput(this, 'LedgerTableName', { value: this.table.tableName });
    new CfnOutput(this, 'IvaMode', {
      value: config.ivaMode,
      description:
        'sandbox: the functions call the IVA sandbox in this stack (npm run smoke runs every row); vendor: Volcengine itself.',
    });
    if (this.sandbox) {
      new CfnOutput(this, 'IvaSandboxUrl', {
        value: this.sandbox.url.url,
        description: 'The in-stack IVA sandbox (function URL) the functions submit to in sandbox mode.',
      });
    }
    new CfnOutput(this, 'EventBusName', {
      value: config.eventBusName,
      description:
        'Bus receiving result events (source iva-bridge); npm run smoke listens there with a temporary rule.',
    });
  }

  /**
   * Sandbox mode: the IVA sandbox as a function behind a function URL (IVA is a separate
   * host that checks its own signatures, so the URL has no AWS auth: the Volcengine
   * signature with the generated key pair is the credential). Its result callbacks go
   * through a queue, because a function is frozen once it has answered
   * (local/iva-sandbox/queued.ts); the sender is created with the API.
   */
  private createSandbox(
    config: IvaBridgeConfig,
    retention: logs.RetentionDays,
    secret: secretsmanager.Secret,
  ): { fn: NodejsFunction; url: lambda.FunctionUrl; queue: sqs.Queue; deadLetterQueue: sqs.Queue } {
    const deadLetterQueue = new sqs.Queue(this, 'IvaSandboxCallbackDlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(4),
    });
    const queue = new sqs.Queue(this, 'IvaSandboxCallbackQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deliveryDelay: Duration.seconds(SANDBOX_CALLBACK_DELAY_SECONDS),
      // 6 × the sender's timeout (AWS guidance for SQS event sources); also the pause
      // before a failed callback is posted again.
      visibilityTimeout: Duration.seconds(6 * FUNCTION_SPECS.ivaSandboxCallbacks.timeoutSeconds),
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: SANDBOX_CALLBACK_ATTEMPTS },
    });
    const fn = this.createFunction('IvaSandbox', FUNCTION_SPECS.ivaSandbox, retention, {
      POWERTOOLS_SERVICE_NAME: 'iva-sandbox',
      POWERTOOLS_LOG_LEVEL: config.logLevel,
      NODE_OPTIONS: '--enable-source-maps',
      [ENV.ivaRegion]: config.ivaRegion,
      [ENV.ivaService]: config.ivaService,
      [ENV.volcSecretArn]: secret.secretArn,
      [ENV.sandboxCallbackQueueUrl]: queue.queueUrl,
    });
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadSandboxCredentials',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [secret.secretArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'QueueCallbacks', actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    );
    const url = fn.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    return { fn, url, queue, deadLetterQueue };
  }

  /** Sandbox mode: posts queued callbacks to `<ApiUrl>callbacks/<secret>`, as IVA would. */
  private createSandboxCallbackSender(
    retention: logs.RetentionDays,
    queue: sqs.Queue,
    callbackSecret: secretsmanager.Secret,
  ): NodejsFunction {
    const sender = this.createFunction('IvaSandboxCallbacks', FUNCTION_SPECS.ivaSandboxCallbacks, retention, {
      POWERTOOLS_SERVICE_NAME: 'iva-sandbox',
      NODE_OPTIONS: '--enable-source-maps',
      [ENV.callbackBaseUrl]: `${this.api.url}callbacks/`,
      [ENV.callbackSecretArn]: callbackSecret.secretArn,
    });
    sender.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadCallbackSecret',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [callbackSecret.secretArn],
      }),
    );
    sender.addEventSource(new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true }));
    return sender;
  }

  /**
   * S3 can only notify a queue in the bucket's own region, and a bucket name does not say
   * its region: CloudFormation would fail late, in the notification custom resource.
   * With `existingBucketRegion` the stack checks it first: at synth when the stack's
   * region is known, else as a template rule that stops the deploy before anything is
   * created. Without it, synth warns.
   */
  private requireBucketRegion(config: IvaBridgeConfig): void {
    const wanted = config.existingBucketRegion;
    if (!wanted) {
      Annotations.of(this).addWarningV2(
        'iva-bridge:existingBucketRegion',
        `existingBucketName "${config.existingBucketName}": the bucket must be in the stack's region (S3 notifies only queues of its own region). Add -c existingBucketRegion=<region> to have CloudFormation check it before creating anything.`,
      );
      return;
    }
    if (!Token.isUnresolved(this.region) && this.region !== wanted) {
      throw new ConfigError(
        `Context "existingBucketRegion" is ${wanted} but the stack deploys to ${this.region}: S3 notifies only queues in the bucket's region; deploy the stack to ${wanted}`,
      );
    }
    new CfnRule(this, 'ExistingBucketInStackRegion', {
      assertions: [
        {
          assert: Fn.conditionEquals(Aws.REGION, wanted),
          assertDescription: `The existing bucket ${config.existingBucketName} is in ${wanted}: deploy this stack to ${wanted} (S3 notifies only queues in the bucket's own region).`,
        },
      ],
    });
  }

  /**
   * A role that only `fn` may assume (its trust names the function's role, whose policy
   * allows sts:AssumeRole on this role alone), allowed exactly `actions` on incoming/*:
   * all that a URL it signs can do.
   */
  private signingRole(id: string, fn: NodejsFunction, actions: string[], prefixes = [INCOMING_PREFIX]): iam.Role {
    const role = new iam.Role(this, id, {
      assumedBy: new iam.ArnPrincipal((fn.role as iam.Role).roleArn),
      description: 'iva-bridge: signs presigned URLs (sessions of at most 1 h, chained from a function role)',
      maxSessionDuration: Duration.hours(1),
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SignedUrlActions',
        actions,
        resources: prefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}*`)),
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({ sid: `Assume${id}`, actions: ['sts:AssumeRole'], resources: [role.roleArn] }),
    );
    acknowledge(
      role,
      prefixes.map((prefix) => ({
        id: `AwsSolutions-IAM5[Resource::${this.objectArnFinding(prefix)}]`,
        reason: `A signing role acts on the ${prefixes.join(' and ')} prefixes only; object keys are chosen by uploaders, so they cannot be listed in advance.`,
      })),
    );
    return role;
  }

  /** Says at synth time when a configured URL lifetime cannot be reached. */
  private warnUnreachableTtls(config: IvaBridgeConfig): void {
    const cap = 3600;
    if (!config.presignSecretArn && config.presignTtlSeconds > cap) {
      Annotations.of(this).addWarningV2(
        'iva-bridge:presignTtlSeconds',
        `presignTtlSeconds is ${config.presignTtlSeconds} s, but URLs for IVA are signed by an assumed role whose session lives at most ${cap} s (role chaining): they stop working after about 1 h, and the functions log their real end. For longer lifetimes set presignSecretArn (long-lived keys; README, "Presigned URLs and their lifetime").`,
      );
    }
    if (config.uploadUrlTtlSeconds > cap) {
      Annotations.of(this).addWarningV2(
        'iva-bridge:uploadUrlTtlSeconds',
        `uploadUrlTtlSeconds is ${config.uploadUrlTtlSeconds} s, but upload URLs are signed by an assumed role whose session lives at most ${cap} s: POST /v1/uploads reports the real (shorter) ExpiresAt.`,
      );
    }
  }

  /** How cdk-nag spells `<bucket ARN>/<prefix>*` in an IAM5 finding id. */
  private objectArnFinding(prefix: string): string {
    const cfn = this.bucket.node.defaultChild;
    return cfn instanceof s3.CfnBucket
      ? `<${this.getLogicalId(cfn)}.Arn>/${prefix}*`
      : `arn:<AWS::Partition>:s3:::${this.bucket.bucketName}/${prefix}*`;
  }

  private createBucket(config: IvaBridgeConfig): s3.Bucket {
    const logBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // Server access log delivery supports SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(logBucket, [
      {
        id: 'AwsSolutions-S1',
        reason: 'This is the server access log destination; logging its own access would recurse.',
      },
    ]);
    return new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      // object-created deduplicates on (key, versionId): a re-upload to the same key is a new version.
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 'bucket/',
      lifecycleRules: [
        {
          id: 'expire-incoming',
          prefix: INCOMING_PREFIX,
          expiration: Duration.days(config.incomingExpirationDays),
          // Multipart uploads (POST /v1/uploads with parts) never completed nor aborted: the
          // sweep aborts them when it marks them expired (2 h); this catches the rest.
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(config.incomingExpirationDays),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        { id: 'remove-expired-delete-markers', expiredObjectDeleteMarker: true },
        // Copies made only if versioning is ever suspended (lib/s3-intake/pin.ts); a URL lives at most 7 days.
        { id: 'expire-pinned', prefix: PINNED_PREFIX, expiration: Duration.days(8) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  private createFunction(
    id: string,
    spec: { dir: string; memorySize: number; timeoutSeconds: number },
    retention: logs.RetentionDays,
    environment: Record<string, string>,
  ): NodejsFunction {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention, removalPolicy: RemovalPolicy.DESTROY });
    // An explicit role with log rights on this one log group replaces AWSLambdaBasicExecutionRole.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `iva-bridge ${spec.dir} function`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const entry = path.join(REPO_ROOT, 'functions', spec.dir, 'handler.ts');
    if (!existsSync(entry)) throw new Error(`Function entry ${entry} is missing`);
    const fn = new NodejsFunction(this, id, {
      entry,
      handler: 'handler',
      // nodejs22.x: the newest runtime the code is tested against (bundle target node22).
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: spec.memorySize,
      timeout: Duration.seconds(spec.timeoutSeconds),
      role,
      logGroup,
      environment,
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      bundling: {
        minify: true,
        sourceMap: true,
        // Maps without embedded sources: stack traces still name file:line, the asset stays small.
        sourcesContent: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_SHIM,
        // The AWS SDK is bundled rather than taken from the runtime: the functions then run
        // exactly the SDK versions pinned in package-lock.json and tested locally, instead of
        // whatever version the runtime ships that month. Costs ~1 MB per asset, no cold-start
        // penalty worth measuring once minified.
        externalModules: [],
      },
    });
    acknowledge(fn, [
      {
        id: 'AwsSolutions-L1',
        reason:
          'Pinned to nodejs22.x, the runtime the bundle targets and the code is tested on; raise together with the esbuild target.',
      },
    ]);
    return fn;
  }

  /**
   * POST /callbacks/{secret} without Lambda in the request path: API Gateway PUTs the raw
   * body (binary, up to its 10 MB) to `callbacks-inbox/<request id>` in the bucket and
   * answers 200 once S3 has it; the S3 event then drives result-callback
   * (lib/callback/inbox.ts). In front, a REQUEST authorizer checks the path secret
   * (uncached: each request's own secret decides, so a wrong one can never ride on a
   * cached allow); a wrong secret fails it with `Unauthorized`, answered as the unknown
   * route (the UNAUTHORIZED gateway response). The integration's role may only
   * s3:PutObject under callbacks-inbox/. The secret is never mapped into the request.
   */
  private callbackInboxIntegration(authorizerFn: lambda.IFunction): {
    integration: apigw.AwsIntegration;
    options: apigw.MethodOptions;
  } {
    const role = new iam.Role(this, 'CallbackInboxRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: 'iva-bridge: API Gateway writes callback bodies to callbacks-inbox/',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PutCallbackInbox',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${CALLBACK_INBOX_PREFIX}*`)],
      }),
    );
    acknowledge(role, [
      {
        id: `AwsSolutions-IAM5[Resource::${this.objectArnFinding(CALLBACK_INBOX_PREFIX)}]`,
        reason:
          'API Gateway puts each callback body under callbacks-inbox/<request id>; request ids are not known in advance, so the grant is the prefix (PutObject only).',
      },
    ]);
    const meta = (name: string) => `integration.request.header.x-amz-meta-${name}`;
    const failure = JSON.stringify({
      error: { code: 'StorageUnavailable', message: 'The callback could not be stored; retry later' },
    });
    const integration = new apigw.AwsIntegration({
      service: 's3',
      integrationHttpMethod: 'PUT',
      path: `${this.bucket.bucketName}/${CALLBACK_INBOX_PREFIX}{key}`,
      options: {
        credentialsRole: role,
        // Binary in, byte for byte (binaryMediaTypes */*): no template ever touches the body.
        passthroughBehavior: apigw.PassthroughBehavior.WHEN_NO_TEMPLATES,
        requestParameters: {
          'integration.request.path.key': 'context.requestId',
          'integration.request.header.Content-Type': 'method.request.header.Content-Type',
          [meta(INBOX_METADATA.contentType)]: 'method.request.header.Content-Type',
          [meta(INBOX_METADATA.requestId)]: 'context.requestId',
          [meta(INBOX_METADATA.requestTimeEpoch)]: 'context.requestTimeEpoch',
        },
        integrationResponses: [
          {
            // S3's 200 (its answer has no body): "in the inbox".
            statusCode: '200',
            contentHandling: apigw.ContentHandling.CONVERT_TO_TEXT,
            responseParameters: { 'method.response.header.Content-Type': "'application/json'" },
            responseTemplates: { 'application/json': '{"ok":true,"inbox":"$context.requestId"}' },
          },
          {
            // Anything else from S3 (throttling, 5xx, a missing grant): nothing kept, IVA retries.
            selectionPattern: '[45]\\d{2}',
            statusCode: '503',
            contentHandling: apigw.ContentHandling.CONVERT_TO_TEXT,
            responseParameters: { 'method.response.header.Content-Type': "'application/json'" },
            responseTemplates: { 'application/json': failure },
          },
        ],
      },
    });
    const authorizer = new apigw.RequestAuthorizer(this, 'CallbackSecretAuthorizer', {
      handler: authorizerFn,
      identitySources: [],
      resultsCacheTtl: Duration.seconds(0),
    });
    const contentType = { 'method.response.header.Content-Type': true };
    return {
      integration,
      options: {
        apiKeyRequired: false,
        authorizer,
        authorizationType: apigw.AuthorizationType.CUSTOM,
        requestParameters: { 'method.request.header.Content-Type': false },
        methodResponses: [
          { statusCode: '200', responseParameters: contentType },
          { statusCode: '503', responseParameters: contentType },
        ],
      },
    };
  }

  private createApi(
    config: IvaBridgeConfig,
    retention: logs.RetentionDays,
    directSubmit: lambda.IFunction,
    callbackAuthorizer: lambda.IFunction,
    clientAuth: lambda.IFunction,
  ): { api: apigw.RestApi; apiKey: apigw.ApiKey; accessLogs: logs.LogGroup; iamApi?: apigw.RestApi } {
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
    const api = new apigw.RestApi(this, 'Api', {
      ...restApiProps(),
      description: 'iva-bridge: direct submissions, uploads, status, IVA callbacks',
      // API keys count usage only (usage plans), never authenticate: the authorizer names
      // the client's key after verifying its signature; clients never send one.
      apiKeySourceType: apigw.ApiKeySourceType.AUTHORIZER,
      cloudWatchRole: config.apiGatewayCloudWatchRole,
      // The account setting outlives this stack: other APIs may log through it.
      ...(config.apiGatewayCloudWatchRole ? { cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : {}),
      deployOptions: {
        ...stageOptions(accessLogs),
        throttlingRateLimit: Math.max(STAGE_RATE_LIMIT, config.apiRateLimit),
        throttlingBurstLimit: Math.max(STAGE_BURST_LIMIT, config.apiBurstLimit),
        methodOptions: {
          '/callbacks/{secret}/POST': {
            throttlingRateLimit: CALLBACK_RATE_LIMIT,
            throttlingBurstLimit: CALLBACK_BURST_LIMIT,
            // No execution logs at all for the route whose path is a secret: even ERROR
            // entries may quote the request path. Its metrics stay (their Resource
            // dimension is the template `/callbacks/{secret}`, never the value).
            loggingLevel: apigw.MethodLoggingLevel.OFF,
            metricsEnabled: true,
          },
        },
      },
    });

    // One Lambda permission for the whole API instead of one per method.
    const direct = new apigw.LambdaIntegration(directSubmit, { scopePermissionToMethod: false });
    // Every route but the callback: the client's HMAC-SHA256 signature in IVA's scheme
    // (lib/client-auth), verified by a REQUEST authorizer with caching off (a cached allow
    // would let a replayed or wrong signature through; every request is verified). It is
    // also the size guard of the multipart routes (a method has one authorizer): a
    // declared body over ~4.5 MB would make a Lambda event over 6 MB, so it is denied
    // first with PayloadTooLarge naming POST /v1/uploads.
    //
    // No identity source is listed (with caching off none is needed). A listed source
    // that is absent makes API Gateway answer UNAUTHORIZED without calling the
    // authorizer, and UNAUTHORIZED is the callback route's wrong-secret answer, the
    // unknown route's 404 (below): an unsigned request would look like a missing route.
    // So an unsigned request runs the authorizer too, which denies it with IVA's
    // MissingSignature before reading any key or table (the ACCESS_DENIED 403 like every
    // other refusal). Anonymous invocations cost one call each, bounded by stage
    // throttling (the callback route's authorizer is anonymous by nature anyway).
    // Content-Length could not be a source either: chunked uploads have none.
    const clientAuthorizer = new apigw.RequestAuthorizer(this, 'ClientAuthorizer', {
      handler: clientAuth,
      identitySources: [],
      resultsCacheTtl: Duration.seconds(0),
    });
    const signed: apigw.MethodOptions = {
      apiKeyRequired: true,
      authorizer: clientAuthorizer,
      authorizationType: apigw.AuthorizationType.CUSTOM,
    };
    const callback = this.callbackInboxIntegration(callbackAuthorizer);
    // Every route from the one table (lib/api/routes.ts) the direct-submit router dispatches on.
    for (const route of ROUTES) {
      const resource = api.root.resourceForPath(route.resource);
      if (route.function === 'result-callback')
        resource.addMethod(route.method, callback.integration, callback.options);
      else resource.addMethod(route.method, direct, route.apiKeyRequired ? signed : { apiKeyRequired: false });
    }

    const apiKey = new apigw.ApiKey(this, 'ApiKey', {
      description:
        'Default usage plan key of iva-bridge clients (named by the authorizer; iva-bridge keys issue gives each client its own).',
    });
    const plan = api.addUsagePlan('UsagePlan', {
      description: 'Per-key limits of iva-bridge clients',
      throttle: { rateLimit: config.apiRateLimit, burstLimit: config.apiBurstLimit },
      ...(config.apiQuotaPerDay > 0 ? { quota: { limit: config.apiQuotaPerDay, period: apigw.Period.DAY } } : {}),
      apiStages: [{ api, stage: api.deploymentStage }],
    });
    plan.addApiKey(apiKey);
    new CfnOutput(this, 'UsagePlanId', {
      value: plan.usagePlanId,
      description: 'Attach more client keys with aws apigateway create-usage-plan-key.',
    });

    addIvaGatewayResponses(api);

    const iamApi = this.createIamApi(config, accessLogs, direct);

    acknowledge(api, [
      {
        id: 'AwsSolutions-APIG2',
        reason:
          'Bodies are multipart/form-data, which API Gateway models cannot validate; direct-submit validates every field and answers IVA-shaped 4xx with stable codes.',
      },
      {
        id: 'AwsSolutions-APIG4',
        reason:
          "/v1 and POST / are authenticated by a Lambda REQUEST authorizer verifying a per-client HMAC-SHA256 signature (IVA's scheme, keys in Secrets Manager) and counted by usage-plan API keys the authorizer names; /callbacks/{secret} is authenticated by a 64-character random path secret because IVA cannot send headers we choose.",
      },
      {
        id: 'AwsSolutions-COG4',
        reason:
          'Machine-to-machine API: clients sign with per-client access keys (Lambda authorizer), and IVA calls back with a URL secret; there are no Cognito users.',
      },
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'Usage-plan and stage throttling bound the load; a WAFv2 web ACL can be associated by the operator when the API is exposed to untrusted networks (README).',
      },
    ]);
    const cloudWatchRole = api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      acknowledge(cloudWatchRole, [
        {
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
          reason:
            'AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy for the account-level API Gateway logging role; it is not attached to any function.',
        },
      ]);
    }
    // CDK's own handler that writes the bucket notification configuration.
    const notificationsHandler = this.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
    if (notificationsHandler) {
      acknowledge(notificationsHandler, [
        {
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          reason:
            'CDK-provided custom resource handler (bucket notifications); it runs at deploy time only and uses AWSLambdaBasicExecutionRole for its logs.',
        },
      ]);
    }
    return { api, apiKey, accessLogs, ...(iamApi ? { iamApi } : {}) };
  }

  /**
   * The IAM API (lib/client-auth/README.md, "Callers inside AWS: IAM (SigV4)"): the same
   * signed routes and the same direct-submit integration as the client-key API, each
   * method `AWS_IAM` (a method has one authorization type, so it cannot also take the
   * client-auth authorizer). API Gateway verifies the SigV4 signature (service
   * execute-api, the payload hash included) and the resource policy names who may call;
   * direct-submit reads the caller from `requestContext.identity`. No API keys: the IAM
   * principal is the caller's identity, and AWS advises against API keys as credentials;
   * all IAM callers together are bounded by this stage's throttle (apiRateLimit /
   * apiBurstLimit), not per caller. The callback route is not here (IVA cannot sign).
   * Auth failures keep API Gateway's own answers (403 MissingAuthenticationToken,
   * IncompleteSignature, InvalidSignature, AccessDenied), which AWS SDKs understand;
   * only the size and integration answers are IVA-shaped, as on the other API.
   */
  private createIamApi(
    config: IvaBridgeConfig,
    accessLogs: logs.LogGroup,
    direct: apigw.LambdaIntegration,
  ): apigw.RestApi | undefined {
    if (config.iamPrincipals.length === 0) return undefined;
    const api = new apigw.RestApi(this, 'IamApi', {
      ...restApiProps(),
      description: 'iva-bridge for callers inside AWS: the signed routes, SigV4 (AWS_IAM)',
      // The account's API Gateway logging role is the other API's setting (apiGatewayCloudWatchRole).
      cloudWatchRole: false,
      // Resource policy: only the named principals may invoke, whatever their own IAM
      // policies allow; an account principal (the default: this stack's account)
      // delegates to that account's IAM policies. `execute-api:/*` is API Gateway's
      // shorthand for every stage, method and path of this API.
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'InvokeByNamedPrincipals',
            principals: iamPrincipalsOf(config.iamPrincipals),
            actions: ['execute-api:Invoke'],
            resources: ['execute-api:/*'],
          }),
        ],
      }),
      deployOptions: {
        ...stageOptions(accessLogs),
        throttlingRateLimit: config.apiRateLimit,
        throttlingBurstLimit: config.apiBurstLimit,
      },
    });
    for (const route of ROUTES) {
      if (!route.apiKeyRequired || route.function !== 'direct-submit') continue;
      api.root
        .resourceForPath(route.resource)
        .addMethod(route.method, direct, { authorizationType: apigw.AuthorizationType.IAM, apiKeyRequired: false });
    }
    addIvaGatewayResponses(api, IAM_API_RESPONSES);
    new CfnOutput(this, 'IamApiUrl', {
      value: api.url,
      description:
        'Base URL of the IAM API (stage included): the same routes as ApiUrl but the callback, signed with AWS SigV4 (service execute-api) by the principals of -c iamPrincipals.',
    });
    acknowledge(api, [
      {
        id: 'AwsSolutions-APIG2',
        reason:
          'Bodies are multipart/form-data, which API Gateway models cannot validate; direct-submit validates every field and answers IVA-shaped 4xx with stable codes.',
      },
      {
        id: 'AwsSolutions-COG4',
        reason:
          'Machine-to-machine API for AWS principals: every method is AWS_IAM (SigV4) behind a resource policy naming the allowed principals; there are no Cognito users.',
      },
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'The stage throttle bounds the load and only the principals of the resource policy get past SigV4; a WAFv2 web ACL can be associated by the operator (README).',
      },
    ]);
    return api;
  }
}

/**
 * The gateway responses the IAM API renders in IVA's shape: size, integration, throttling
 * and 5xx. Authentication answers (missing or wrong SigV4, denied by the resource policy)
 * stay API Gateway's own, as an AWS caller's SDK expects them; so does an unknown route
 * (MISSING_AUTHENTICATION_TOKEN is also the unsigned answer there, and AWS does not tell them apart).
 */
const IAM_API_RESPONSES: ReadonlySet<string> = new Set([
  'RequestTooLarge',
  'IntegrationFailure',
  'Throttled',
  'IntegrationTimeout',
  'Default5xx',
]);

/** What both REST APIs share: regional, every body binary. */
function restApiProps(): apigw.RestApiProps {
  return {
    endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
    // Every body is binary: it reaches Lambda base64-encoded and byte for byte. A REST
    // API hands a non-binary body to Lambda as a UTF-8 string, which replaces invalid
    // bytes: two different IVA callbacks could then be stored as one (and a multipart
    // file would be corrupted). The functions read `isBase64Encoded` and answer text
    // (isBase64Encoded false), which API Gateway passes through whatever the Accept.
    binaryMediaTypes: ['*/*'],
  };
}

/** Stage settings both APIs share: access logs into one group, ERROR execution logs, no X-Ray, no data trace. */
function stageOptions(accessLogs: logs.LogGroup): apigw.StageOptions {
  return {
    stageName: STAGE_NAME,
    // resourcePath is the route template: the callback secret never reaches access logs.
    accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
    accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
      caller: false,
      httpMethod: true,
      ip: true,
      protocol: true,
      requestTime: true,
      resourcePath: true,
      responseLength: true,
      status: true,
      user: false,
    }),
    // No X-Ray on the stage: API Gateway's trace segment records the full request URL
    // (http.request.url), and the callback URL's path is its secret. X-Ray cannot be
    // switched off per method, so tracing the other routes would trace this one too.
    tracingEnabled: false,
    // ERROR only, never data trace: request bodies hold customer files and the callback path holds a secret.
    loggingLevel: apigw.MethodLoggingLevel.ERROR,
    dataTraceEnabled: false,
    metricsEnabled: true,
  };
}

/** The IAM API's resource policy principals: `self` is the stack's own account. */
function iamPrincipalsOf(names: readonly string[]): iam.IPrincipal[] {
  return names.map((name) =>
    name === 'self'
      ? new iam.AccountRootPrincipal()
      : /^\d{12}$/.test(name)
        ? new iam.AccountPrincipal(name)
        : new iam.ArnPrincipal(name),
  );
}

/** "4.5 MB" for the messages, from the limit itself. */
const DIRECT_MAX_LABEL = `${DEFAULTS.directMaxBytes / 1_000_000} MB`;

/**
 * API Gateway's own errors in IVA's error shape, so clients see one format whatever
 * answered. Templates allow only simple `$context` substitution.
 */
function addIvaGatewayResponses(api: apigw.RestApi, only?: ReadonlySet<string>): void {
  const body = (code: string, message: string) =>
    `{"ResponseMetadata":{"RequestId":"$context.requestId","Error":{"Code":"${code}","Message":${message}}}}`;
  const literal = (text: string) => JSON.stringify(text);
  const responses: Array<[string, apigw.ResponseType, string, string, string]> = [
    [
      'RequestTooLarge',
      apigw.ResponseType.REQUEST_TOO_LARGE,
      '413',
      // Same code direct-submit answers for an over-size body (lib/api/errors.ts).
      'PayloadTooLarge',
      // AWS documents REQUEST_TOO_LARGE (bodies over API Gateway's 10 MB hard limit) as
      // not customizable: clients get API Gateway's own plain 413 whatever is set here.
      // Kept because it is harmless and records the intent should AWS ever honour it.
      literal(
        'Request body too large for direct submission (files over about 4.5 MB). Call POST /v1/uploads to get a presigned upload URL instead.',
      ),
    ],
    [
      'ClientAuthDenied',
      // On the client-key API only the client-auth authorizer produces ACCESS_DENIED (no
      // IAM authorization, no resource policy there; the IAM API keeps AWS's own answer;
      // the callback authorizer never denies, it fails with Unauthorized). Its deny's
      // context carries IVA's code and a message (lib/client-auth): MissingSignature,
      // SignatureDoesNotMatch, InvalidAccessKey,
      // InvalidCredential, InvalidAuthorization, InvalidTimestamp, or PayloadTooLarge for
      // a declared body over the direct limit. One status per response type: 403.
      apigw.ResponseType.ACCESS_DENIED,
      '403',
      '$context.authorizer.code',
      '"$context.authorizer.message"',
    ],
    [
      'IntegrationFailure',
      // API Gateway could not invoke the function. With these routes the usual cause is
      // a body whose base64 encoding exceeds Lambda's 6 MB payload (sent without a
      // Content-Length, so the size guard could not see it).
      apigw.ResponseType.INTEGRATION_FAILURE,
      '502',
      'IntegrationFailure',
      literal(
        `The request could not be handed to the function. The usual cause is a body over ${DIRECT_MAX_LABEL}, too large for a direct submission: send large files with POST /v1/uploads (presigned upload URL). If the body was small, retry later.`,
      ),
    ],
    [
      'InvalidApiKey',
      apigw.ResponseType.INVALID_API_KEY,
      '403',
      'InvalidApiKey',
      // The authorizer named a usage plan key that API Gateway does not know or has disabled.
      literal("The client's usage plan key is missing or disabled; ask the operator to reissue the client's key."),
    ],
    [
      // Only the callback route's authorizer produces UNAUTHORIZED (no authorizer lists an
      // identity source, so API Gateway never answers it on its own): a wrong callback
      // secret. Exactly the unknown route's answer, so probing cannot find the route.
      // (An unsigned request to a signed route is client-auth's MissingSignature deny.)
      'CallbackSecretRefused',
      apigw.ResponseType.UNAUTHORIZED,
      String(ROUTE_NOT_FOUND_STATUS),
      ROUTE_NOT_FOUND_CODE,
      literal(ROUTE_NOT_FOUND_MESSAGE),
    ],
    // API Gateway answers an unknown route or method as a missing auth token; say what it is.
    [
      'NotFound',
      apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
      String(ROUTE_NOT_FOUND_STATUS),
      ROUTE_NOT_FOUND_CODE,
      literal(ROUTE_NOT_FOUND_MESSAGE),
    ],
    [
      'Throttled',
      apigw.ResponseType.THROTTLED,
      '429',
      'FlowLimitExceeded',
      literal('Too many requests: slow down and retry with backoff.'),
    ],
    [
      'QuotaExceeded',
      apigw.ResponseType.QUOTA_EXCEEDED,
      '429',
      'QuotaExceeded',
      literal('The daily request quota of this API key is used up.'),
    ],
    [
      'IntegrationTimeout',
      apigw.ResponseType.INTEGRATION_TIMEOUT,
      '504',
      'InternalServiceTimeout',
      '$context.error.messageString',
    ],
    ['Default4xx', apigw.ResponseType.DEFAULT_4XX, '', '$context.error.responseType', '$context.error.messageString'],
    ['Default5xx', apigw.ResponseType.DEFAULT_5XX, '', 'InternalError', '$context.error.messageString'],
  ];
  for (const [id, type, statusCode, code, message] of responses) {
    if (only && !only.has(id)) continue;
    const template = body(code, message);
    api.addGatewayResponse(id, {
      type,
      ...(statusCode ? { statusCode } : {}),
      // x-amzn-ErrorType named explicitly (not left to API Gateway's exception name) so
      // result-callback can answer a wrong secret with exactly these headers.
      responseHeaders: {
        'Content-Type': "'application/json'",
        ...(code === ROUTE_NOT_FOUND_CODE ? { 'x-amzn-ErrorType': `'${ROUTE_NOT_FOUND_CODE}'` } : {}),
      },
      // Keyed by request content type: multipart requests (the ones that hit 413) included.
      templates: { 'application/json': template, 'multipart/form-data': template },
    });
  }
}

/**
 * The S3 → SQS notification destination. CDK's SqsDestination grants s3.amazonaws.com
 * SendMessage pinned only by `aws:SourceArn`; a bucket name can be re-created in another
 * account, so the statement also pins `aws:SourceAccount` (AWS's guidance for S3
 * notification queue policies).
 */
function s3EventsTo(queue: sqs.Queue, bucketArn: string): s3.IBucketNotificationDestination {
  return {
    bind: () => {
      queue.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'S3ObjectCreatedNotifications',
          principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
          actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
          resources: [queue.queueArn],
          conditions: {
            ArnLike: { 'aws:SourceArn': bucketArn },
            StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          },
        }),
      );
      // Depending on the queue includes its policy: S3 checks the permission when the
      // notification is written.
      return { arn: queue.queueArn, type: s3.BucketNotificationDestinationType.QUEUE, dependencies: [queue] };
    },
  };
}

/** Records cdk-nag acknowledgements (v3: CDK's Validations API), each with its reason. */
function acknowledge(scope: IConstruct, rules: Array<{ id: string; reason: string }>): void {
  Validations.of(scope).acknowledge(...rules);
}

/**
 * IAM needs the full ARN (with Secrets Manager's 6-character suffix). Whether the given
 * ARN has it cannot be told reliably (names may end in -abcdef), so grant both forms.
 */
function secretResourceArns(arn: string): string[] {
  return [arn, `${arn}-??????`];
}
