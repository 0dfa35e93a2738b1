/**
 * Assertions on the synthesized IvaBridge template. One stack is built (and its three
 * functions bundled with esbuild) for the whole file.
 */
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, ENV } from '../../lib/config';
import { API_THROTTLED_METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../infra/monitoring';
import {
  CALLBACK_INBOX_BATCH,
  CALLBACK_INBOX_MAX_RECEIVES,
  FUNCTION_SPECS,
  type IvaBridgeStack,
} from '../../infra/stack';
import { METRIC } from '../../lib/observability';
import {
  acknowledgements,
  actionsOf,
  allStatements,
  buildStack,
  logicalId,
  methodsByRoute,
  nagFindings,
  propsOf,
  resourcesOf,
  roleStatements,
  type CfnResourceJson,
  type Json,
  type Statement,
} from './helpers';

const CONTEXT = {
  ivaConcurrency: '3',
  maxReceiveCount: '4',
  incomingExpirationDays: '9',
  alarmEmail: 'ops@example.com',
  presignSecretArn: 'arn:aws:secretsmanager:cn-north-1:123456789012:secret:iva-bridge/presign',
  apiQuotaPerDay: '5000',
  logLevel: 'debug',
};

let app: ReturnType<typeof buildStack>['app'];
let stack: IvaBridgeStack;
let template: Template;
let resources: Record<string, CfnResourceJson>;
let ids: {
  objectCreated: string;
  directSubmit: string;
  resultCallback: string;
  clientAuth: string;
  callbackAuthorizer: string;
  sweep: string;
  bucket: string;
  queue: string;
  dlq: string;
  inbox: string;
  inboxDlq: string;
};

const fnProps = (name: keyof typeof ids) => resources[ids[name]]?.Properties as Json;
const roleOf = (fnLogicalId: string) =>
  (propsOf(resources[fnLogicalId], fnLogicalId).Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
const statementsOf = (
  fn: 'objectCreated' | 'directSubmit' | 'resultCallback' | 'clientAuth' | 'callbackAuthorizer' | 'sweep',
) => roleStatements(resources, roleOf(ids[fn]));
const s3Statements = (statements: Statement[]) =>
  statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
const json = (value: unknown) => JSON.stringify(value);

beforeAll(() => {
  ({ app, stack } = buildStack(CONTEXT));
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, CfnResourceJson>;
  ids = {
    objectCreated: logicalId(stack, stack.functions.objectCreated),
    directSubmit: logicalId(stack, stack.functions.directSubmit),
    resultCallback: logicalId(stack, stack.functions.resultCallback),
    clientAuth: logicalId(stack, stack.functions.clientAuth),
    callbackAuthorizer: logicalId(stack, stack.functions.callbackAuthorizer),
    sweep: logicalId(stack, stack.functions.sweep),
    bucket: logicalId(stack, stack.bucket),
    queue: logicalId(stack, stack.queue),
    dlq: logicalId(stack, stack.deadLetterQueue),
    inbox: logicalId(stack, stack.callbackInboxQueue),
    inboxDlq: logicalId(stack, stack.callbackInboxDeadLetterQueue),
  };
  // One synth bundling four functions with esbuild: slow on a loaded 2-core machine.
}, 180_000);

describe('bucket', () => {
  it('blocks public access, is encrypted and versioned, and expires incoming/ after the configured days', () => {
    const props = resources[ids.bucket]?.Properties as Json;
    expect(props.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(json(props.BucketEncryption)).toMatch(/"SSEAlgorithm":"(AES256|aws:kms)"/);
    expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    const rules = (props.LifecycleConfiguration as { Rules: Json[] }).Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ Prefix: 'incoming/', ExpirationInDays: 9, Status: 'Enabled' }),
    );
    expect(rules.some((r) => (r.NoncurrentVersionExpiration as Json | undefined)?.NoncurrentDays === 9)).toBe(true);
    expect(props.LoggingConfiguration).toEqual(expect.objectContaining({ DestinationBucketName: expect.anything() }));
  });

  it('denies every request without TLS in the bucket policy', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: ids.bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('sends only OBJECT_CREATED events, incoming/ to the intake queue and callbacks-inbox/ to the inbox queue', () => {
    const notifications = Object.values(resources).filter((r) => r.Type === 'Custom::S3BucketNotifications');
    expect(notifications).toHaveLength(1);
    const config = notifications[0]?.Properties?.NotificationConfiguration as { QueueConfigurations: Json[] };
    expect(config.QueueConfigurations).toEqual([
      {
        Events: ['s3:ObjectCreated:*'],
        Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'incoming/' }] } },
        QueueArn: { 'Fn::GetAtt': [ids.queue, 'Arn'] },
      },
      {
        Events: ['s3:ObjectCreated:*'],
        Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'callbacks-inbox/' }] } },
        QueueArn: { 'Fn::GetAtt': [ids.inbox, 'Arn'] },
      },
    ]);
    expect(config).not.toHaveProperty('LambdaFunctionConfigurations');
    expect(notifications[0]?.Properties?.BucketName).toEqual({ Ref: ids.bucket });
  });
});

describe('queue', () => {
  it('redrives to an encrypted DLQ after maxReceiveCount receives', () => {
    const queue = resources[ids.queue]?.Properties as Json;
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [ids.dlq, 'Arn'] },
      maxReceiveCount: 4,
    });
    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(propsOf(resources[ids.dlq], 'dlq').SqsManagedSseEnabled).toBe(true);
  });

  it('lets only S3 notifications of this bucket, in this account, send to the queue', () => {
    const policies = Object.values(resources).filter(
      (r) => r.Type === 'AWS::SQS::QueuePolicy' && json(r.Properties?.Queues) === json([{ Ref: ids.queue }]),
    );
    const statements = policies.flatMap((p) => (propsOf(p).PolicyDocument as { Statement: Statement[] }).Statement);
    const fromS3 = statements.filter((s) => json(s).includes('s3.amazonaws.com'));
    expect(fromS3).toHaveLength(1);
    expect(fromS3[0]?.Effect).toBe('Allow');
    expect(fromS3[0]?.Condition).toEqual({
      ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [ids.bucket, 'Arn'] } },
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    });
    // The notification is written only once the policy exists (S3 checks it then).
    const notification = Object.entries(resources).find(([, r]) => r.Type === 'Custom::S3BucketNotifications');
    const policyId = Object.entries(resources).find(([, r]) => r === policies[0])?.[0];
    expect(json(template.toJSON().Resources[notification?.[0] as string].DependsOn)).toContain(policyId);
  });

  it('enforces TLS on both queues', () => {
    for (const id of [ids.queue, ids.dlq]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('keeps messages invisible for at least 6 × the consumer timeout', () => {
    const visibility = propsOf(resources[ids.queue], 'queue').VisibilityTimeout as number;
    const timeout = fnProps('objectCreated').Timeout as number;
    expect(timeout).toBe(FUNCTION_SPECS.objectCreated.timeoutSeconds);
    expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('feeds object-created in batches with partial failures and bounded concurrency', () => {
    // Two mappings: this one, and the callback inbox's (below).
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [ids.queue, 'Arn'] },
      FunctionName: { Ref: ids.objectCreated },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: Match.anyValue(),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      // ivaConcurrency 3 with 2 calls per invocation: 2 invocations × 1 call ≤ 3.
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    const window = propsOf(
      Object.values(resources).find(
        (r) => r.Type === 'AWS::Lambda::EventSourceMapping' && json(r.Properties?.EventSourceArn).includes(ids.queue),
      ),
      'event source mapping',
    ).MaximumBatchingWindowInSeconds as number;
    expect(window).toBeGreaterThanOrEqual(1);
    expect(window).toBeLessThanOrEqual(5);
  });

  it('lets object-created set its own redelivery delays and requeue a deferred message on the same queue', () => {
    const env = (fnProps('objectCreated').Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env[ENV.intakeQueueUrl]).toEqual({ Ref: ids.queue });
    const redrive = propsOf(resources[ids.queue], 'queue').RedrivePolicy as { maxReceiveCount: number };
    expect(env[ENV.maxReceiveCount]).toBe(String(redrive.maxReceiveCount));
    const sqsActions = statementsOf('objectCreated')
      .filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')))
      .filter((s) => json(resourcesOf(s)).includes(ids.queue));
    const actions = sqsActions.flatMap(actionsOf);
    expect(actions).toEqual(expect.arrayContaining(['sqs:ChangeMessageVisibility', 'sqs:SendMessage']));
    expect(json(statementsOf('objectCreated'))).not.toMatch(new RegExp(`sqs:SendMessage[^}]*${ids.dlq}`));
  });

  it('lets direct-submit send to the intake queue (resubmit) and nothing else of SQS', () => {
    const env = (fnProps('directSubmit').Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env[ENV.intakeQueueUrl]).toEqual({ Ref: ids.queue });
    const sqsStatements = statementsOf('directSubmit').filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(sqsStatements.flatMap(actionsOf).filter((a) => !a.startsWith('kms:'))).toEqual(
      expect.arrayContaining(['sqs:SendMessage']),
    );
    expect(sqsStatements.flatMap(actionsOf)).not.toContain('sqs:ReceiveMessage');
    expect(sqsStatements.flatMap(actionsOf)).not.toContain('sqs:DeleteMessage');
    for (const s of sqsStatements) expect(json(resourcesOf(s))).toContain(ids.queue);
  });
});

describe('ledger table', () => {
  it('has pk/sk, the gsi1 index, on-demand billing, PITR and the TTL attribute', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
        {
          IndexName: 'gsi2',
          KeySchema: [
            { AttributeName: 'gsi2pk', KeyType: 'HASH' },
            { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });
});

describe('secrets', () => {
  it('creates the Volcengine secret from a placeholder template and a long alphanumeric callback secret', () => {
    const secrets = Object.values(resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(2);
    const generated = secrets.map((s) => s.Properties?.GenerateSecretString as Json);
    expect(generated).toContainEqual(
      expect.objectContaining({
        GenerateStringKey: 'secretAccessKey',
        SecretStringTemplate: expect.stringContaining('accessKeyId'),
      }),
    );
    const callback = generated.find((g) => g.GenerateStringKey === undefined) as Json;
    expect(callback.PasswordLength as number).toBeGreaterThanOrEqual(48);
    expect(callback.ExcludePunctuation).toBe(true);
    for (const s of secrets) expect(s.Properties?.SecretString).toBeUndefined();
  });
});

describe('functions', () => {
  const names = ['objectCreated', 'directSubmit', 'resultCallback'] as const;

  it('run Node.js 22+ on arm64 with their own log group with retention', () => {
    for (const name of names) {
      const props = fnProps(name);
      expect(props.Runtime).toMatch(/^nodejs(2[2-9]|[3-9]\d)\.x$/);
      expect(props.Architectures).toEqual(['arm64']);
      const logGroup = (props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(resources[logGroup]?.Type).toBe('AWS::Logs::LogGroup');
      expect(resources[logGroup]?.Properties?.RetentionInDays).toBeGreaterThan(0);
    }
  });

  it('use the documented memory and timeouts (direct-submit within API Gateway 29 s)', () => {
    expect([fnProps('objectCreated').MemorySize, fnProps('objectCreated').Timeout]).toEqual([512, 60]);
    expect([fnProps('directSubmit').MemorySize, fnProps('directSubmit').Timeout]).toEqual([1024, 29]);
    expect([fnProps('resultCallback').MemorySize, fnProps('resultCallback').Timeout]).toEqual([512, 60]);
    expect([fnProps('callbackAuthorizer').MemorySize, fnProps('callbackAuthorizer').Timeout]).toEqual([256, 5]);
  });

  it('reference secrets by ARN and never carry keys in the environment', () => {
    const envOf = (name: (typeof names)[number]) => (fnProps(name).Environment as { Variables: Json }).Variables;
    for (const name of names) {
      const env = envOf(name);
      for (const forbidden of [ENV.volcAccessKey, ENV.volcSecretKey, ENV.volcSessionToken, ENV.callbackSecrets])
        expect(env).not.toHaveProperty(forbidden);
      expect(env[ENV.ledgerTable]).toEqual({ Ref: expect.stringMatching(/^Ledger/) });
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe('IvaBridge');
      expect(env.POWERTOOLS_LOG_LEVEL).toBe('DEBUG');
      expect(env.NODE_OPTIONS).toBe('--enable-source-maps');
    }
    expect(envOf('objectCreated')[ENV.volcSecretArn]).toEqual({ Ref: expect.stringMatching(/^VolcCredentials/) });
    expect(envOf('directSubmit')[ENV.volcSecretArn]).toEqual({ Ref: expect.stringMatching(/^VolcCredentials/) });
    // The secret moved to the authorizer: the function that files bodies cannot read it.
    expect(envOf('resultCallback')).not.toHaveProperty(ENV.callbackSecretArn);
    const authorizerEnv = (fnProps('callbackAuthorizer').Environment as { Variables: Json }).Variables;
    expect(authorizerEnv[ENV.callbackSecretArn]).toEqual({ Ref: expect.stringMatching(/^CallbackSecret/) });
    for (const forbidden of [ENV.callbackSecrets, ENV.ledgerTable, ENV.bucket, ENV.volcSecretArn])
      expect(authorizerEnv).not.toHaveProperty(forbidden);
    expect(envOf('resultCallback')[ENV.eventBusName]).toBe('default');
    expect(envOf('objectCreated')[ENV.presignSecretArn]).toBe(CONTEXT.presignSecretArn);
    expect(envOf('objectCreated')[ENV.ivaConcurrency]).toBe('1');
  });

  it('client-auth is a small arm64 Node 22 function with its own log group: key prefix, ledger and limit in its environment', () => {
    const props = fnProps('clientAuth');
    expect(props.Runtime).toBe('nodejs22.x');
    expect(props.Architectures).toEqual(['arm64']);
    expect([props.MemorySize, props.Timeout]).toEqual([256, 5]);
    const logGroup = (props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
    expect(resources[logGroup]?.Type).toBe('AWS::Logs::LogGroup');
    const env = (props.Environment as { Variables: Json }).Variables;
    expect(env[ENV.clientKeyPrefix]).toBe('iva-bridge/IvaBridgeTest/client-keys/');
    expect(env[ENV.ledgerTable]).toEqual({ Ref: expect.stringMatching(/^Ledger/) });
    expect(env[ENV.directMaxBytes]).toBe(String(DEFAULTS.directMaxBytes));
    expect(
      Object.keys(env)
        .filter((k) => !k.startsWith('AWS_') && !k.startsWith('POWERTOOLS_') && k !== 'NODE_OPTIONS')
        .sort(),
    ).toEqual([ENV.clientKeyPrefix, ENV.directMaxBytes, ENV.ledgerTable].sort());
  });
});

describe('IAM', () => {
  it('has no Allow statement with a wildcard action anywhere in the template', () => {
    const allows = allStatements(resources).filter((s) => s.Effect === 'Allow');
    expect(allows.length).toBeGreaterThan(10);
    const wildcards = allows.flatMap(actionsOf).filter((a) => a.includes('*'));
    expect(wildcards).toEqual([]);
  });

  it('gives the functions no Resource "*"', () => {
    for (const fn of ['objectCreated', 'directSubmit', 'resultCallback'] as const) {
      const star = statementsOf(fn).filter((s) => resourcesOf(s).includes('*'));
      expect(star, fn).toEqual([]);
    }
  });

  it('object-created only reads incoming/, and writes only pinned/ (copies in unversioned buckets)', () => {
    const s3 = s3Statements(statementsOf('objectCreated'));
    const onPrefix = (prefix: string) => s3.filter((s) => json(resourcesOf(s)).includes(`/${prefix}/*"`));
    expect(onPrefix('incoming').flatMap(actionsOf).sort()).toEqual(['s3:GetObject', 's3:GetObjectVersion']);
    expect(onPrefix('pinned').flatMap(actionsOf).sort()).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
    expect(onPrefix('incoming').length + onPrefix('pinned').length).toBe(s3.length);
    expect(json(s3)).not.toMatch(/results\//);
  });

  it('result-callback writes and reads results/, reads and deletes callbacks-inbox/ only, and cannot read incoming/', () => {
    const s3 = s3Statements(statementsOf('resultCallback'));
    expect(s3.flatMap(actionsOf).sort()).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:GetObject', 's3:PutObject']);
    const byAction = (a: string) => s3.filter((s) => actionsOf(s).includes(a)).map((s) => json(resourcesOf(s)));
    expect(byAction('s3:PutObject')).toEqual([expect.stringMatching(/\/results\/\*"/)]);
    expect(byAction('s3:DeleteObject')).toEqual([expect.stringMatching(/\/callbacks-inbox\/\*"/)]);
    for (const r of byAction('s3:DeleteObject')) expect(r).not.toMatch(/results/);
    for (const s of s3) expect(json(resourcesOf(s))).toMatch(/\/(results|callbacks-inbox)\/\*"/);
    expect(json(statementsOf('resultCallback'))).not.toMatch(/incoming/);
  });

  it('lets API Gateway only PutObject under callbacks-inbox/ with its own role, nothing else', () => {
    const callback = methodsByRoute(resources).get('POST /callbacks/{secret}') as Json;
    const integration = callback.Integration as Json;
    const roleId = (integration.Credentials as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const role = resources[roleId]?.Properties as Json;
    expect(json(role.AssumeRolePolicyDocument)).toContain('apigateway.amazonaws.com');
    const statements = roleStatements(resources, roleId);
    expect(statements.flatMap(actionsOf)).toEqual(['s3:PutObject']);
    expect(statements.map((s) => json(resourcesOf(s)))).toEqual([
      expect.stringMatching(/\/callbacks-inbox\/\*"\]*\]?\}?\]?$/),
    ]);
    expect(json(statements)).not.toMatch(/results|incoming/);
  });

  it('direct-submit puts (and aborts multipart uploads) only under incoming/, reads only results/, lists both', () => {
    const s3 = s3Statements(statementsOf('directSubmit'));
    expect(s3.flatMap(actionsOf).sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:GetObject',
      's3:ListBucket',
      's3:ListBucket',
      's3:PutObject',
    ]);
    expect(json(resourcesOf(s3.find((s) => actionsOf(s).includes('s3:AbortMultipartUpload')) as Statement))).toMatch(
      /\/incoming\/\*"/,
    );
    const byAction = (a: string) => s3.find((s) => actionsOf(s).includes(a)) as Statement;
    expect(actionsOf(byAction('s3:PutObject'))).toEqual(['s3:PutObject']);
    expect(json(resourcesOf(byAction('s3:PutObject')))).toMatch(/\/incoming\/\*"/);
    expect(actionsOf(byAction('s3:GetObject'))).toEqual(['s3:GetObject']);
    expect(json(resourcesOf(byAction('s3:GetObject')))).toMatch(/\/results\/\*"/);
    expect(json(resourcesOf(byAction('s3:GetObject')))).not.toMatch(/incoming/);
    const lists = s3.filter((s) => actionsOf(s).includes('s3:ListBucket'));
    expect(lists.map((s) => s.Condition)).toEqual([
      { StringLike: { 's3:prefix': ['results/*'] } },
      { StringLike: { 's3:prefix': ['incoming/*'] } },
    ]);
  });

  it('lets each function read exactly its secrets', () => {
    const secretResources = (fn: 'objectCreated' | 'directSubmit' | 'resultCallback' | 'callbackAuthorizer') =>
      json(
        statementsOf(fn)
          .filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))
          .flatMap(resourcesOf),
      );
    expect(secretResources('objectCreated')).toMatch(/VolcCredentials/);
    expect(secretResources('objectCreated')).toContain('iva-bridge/presign');
    expect(secretResources('objectCreated')).not.toMatch(/CallbackSecret/);
    expect(secretResources('directSubmit')).toMatch(/VolcCredentials/);
    expect(secretResources('directSubmit')).not.toMatch(/CallbackSecret|presign/);
    expect(secretResources('resultCallback')).toBe('[]');
    const authorizer = statementsOf('callbackAuthorizer');
    expect(authorizer.flatMap(actionsOf).sort()).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
    ]);
    const authorizerSecrets = json(
      authorizer.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue')).flatMap(resourcesOf),
    );
    expect(authorizerSecrets).toMatch(/CallbackSecret/);
    expect(authorizerSecrets).not.toMatch(/VolcCredentials|presign/);
  });

  it('lets client-auth read only client keys, put only used-signature items, and write its own log group', () => {
    const statements = statementsOf('clientAuth');
    expect(statements.flatMap(actionsOf).sort()).toEqual([
      'dynamodb:PutItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
    ]);
    const read = statements.find((st) => actionsOf(st).includes('secretsmanager:GetSecretValue')) as Statement;
    expect(json(read.Resource)).toContain(':secret:iva-bridge/IvaBridgeTest/client-keys/*');
    const put = statements.find((st) => actionsOf(st).includes('dynamodb:PutItem')) as Statement;
    expect(put.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['AUTHSIG#*'] } });
    const role = resources[roleOf(ids.clientAuth)]?.Properties as Json;
    expect(role.ManagedPolicyArns).toBeUndefined();
  });

  it('lets only result-callback (results), direct-submit and object-created (uncertain submissions) put events, on the default bus', () => {
    const putters = (['objectCreated', 'directSubmit', 'resultCallback'] as const).filter((fn) =>
      statementsOf(fn).some((s) => actionsOf(s).includes('events:PutEvents')),
    );
    expect(putters).toEqual(['objectCreated', 'directSubmit', 'resultCallback']);
    for (const fn of putters) {
      const statement = statementsOf(fn).find((s) => actionsOf(s).includes('events:PutEvents')) as Statement;
      expect(json(statement.Resource), fn).toContain(':event-bus/default');
    }
    expect(fnProps('directSubmit').Environment).toMatchObject({ Variables: { EVENT_BUS_NAME: 'default' } });
    expect(fnProps('objectCreated').Environment).toMatchObject({ Variables: { EVENT_BUS_NAME: 'default' } });
  });

  it('grants only the ledger calls each function makes: item reads/writes, and Query on gsi1 for listings', () => {
    for (const fn of ['objectCreated', 'directSubmit', 'resultCallback'] as const) {
      const ddb = statementsOf(fn).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
      const onTable = ddb.filter((s) => !json(resourcesOf(s)).includes('/index/'));
      const deletes = onTable.filter((s) => actionsOf(s).includes('dynamodb:DeleteItem'));
      expect(
        onTable
          .filter((s) => !deletes.includes(s))
          .flatMap(actionsOf)
          .sort(),
        fn,
      ).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
      // Only direct-submit deletes, and only Idempotency-Key records (IDEM#…), never a submission.
      expect(deletes.flatMap(actionsOf), fn).toEqual(fn === 'directSubmit' ? ['dynamodb:DeleteItem'] : []);
      for (const d of deletes)
        expect(d.Condition, fn).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['IDEM#*'] } });
      const onIndex = ddb.filter((s) => json(resourcesOf(s)).includes('/index/'));
      // Only direct-submit lists a task's submissions (GET /v1/tasks/{taskId}/submissions).
      expect(onIndex.flatMap(actionsOf), fn).toEqual(fn === 'directSubmit' ? ['dynamodb:Query'] : []);
      if (fn === 'directSubmit') {
        expect(json(onIndex.flatMap(resourcesOf))).toMatch(/\/index\/gsi1"/);
        // GET /v1/submissions?status=… lists across tasks by the status index.
        expect(json(onIndex.flatMap(resourcesOf))).toMatch(/\/index\/gsi2"/);
      }
    }
  });
});

describe('API', () => {
  let methods: Map<string, Json>;
  beforeAll(() => {
    // The client-key API; the IAM API has the same paths (test/infra/iam-api.test.ts).
    methods = methodsByRoute(resources, logicalId(stack, stack.api));
  });

  it('exposes exactly the documented routes', () => {
    expect([...methods.keys()].sort()).toEqual(
      [
        'GET /v1/submissions',
        'GET /v1/submissions/{id}',
        'GET /v1/submissions/{id}/result',
        'GET /v1/submissions/{id}/results',
        'GET /v1/submissions/{id}/results/{resultId}',
        'POST /v1/submissions/{id}/resolve',
        'POST /v1/submissions/{id}/resubmit',
        'GET /v1/tasks/{taskId}/submissions',
        'POST /',
        'POST /callbacks/{secret}',
        'POST /v1/images',
        'POST /v1/uploads',
        'POST /v1/uploads/{id}/parts',
        'POST /v1/uploads/{id}/complete',
        'POST /v1/uploads/{id}/abort',
        'POST /v1/videos',
      ].sort(),
    );
  });

  it('requires an API key everywhere except the IVA callback', () => {
    for (const [route, props] of methods) {
      if (route === 'POST /callbacks/{secret}') expect(props.ApiKeyRequired ?? false, route).toBe(false);
      else expect(props.ApiKeyRequired, route).toBe(true);
    }
  });

  it('routes everything but the callback to direct-submit, and the callback to S3 (no function in its path)', () => {
    for (const [route, props] of methods) {
      if (route.includes('/callbacks/')) {
        expect(json(props.Integration), route).not.toContain(ids.resultCallback);
        expect(json(props.Integration), route).not.toContain(ids.directSubmit);
      } else expect(json(props.Integration), route).toContain(ids.directSubmit);
    }
  });

  it('puts the raw callback body to callbacks-inbox/<request id> with its type, request id and receipt time', () => {
    const callback = methods.get('POST /callbacks/{secret}') as Json;
    const integration = callback.Integration as Json;
    expect(integration.Type).toBe('AWS');
    expect(integration.IntegrationHttpMethod).toBe('PUT');
    expect(json(integration.Uri)).toContain(':s3:path/');
    expect(json(integration.Uri)).toContain(`{"Ref":"${ids.bucket}"},"/callbacks-inbox/{key}"`);
    expect(integration.RequestParameters).toEqual({
      'integration.request.path.key': 'context.requestId',
      'integration.request.header.Content-Type': 'method.request.header.Content-Type',
      'integration.request.header.x-amz-meta-declared-content-type': 'method.request.header.Content-Type',
      'integration.request.header.x-amz-meta-request-id': 'context.requestId',
      'integration.request.header.x-amz-meta-request-time-epoch': 'context.requestTimeEpoch',
    });
    // Never the secret: nothing from the path reaches S3.
    expect(json(integration.RequestParameters)).not.toContain('method.request.path');
    // No request template: the binary body passes through untouched.
    expect(integration.RequestTemplates).toBeUndefined();
    expect(integration.PassthroughBehavior).toBe('WHEN_NO_TEMPLATES');
    expect(integration.ContentHandling).toBeUndefined();
    const responses = integration.IntegrationResponses as Json[];
    expect(responses.map((r) => [r.SelectionPattern ?? null, r.StatusCode])).toEqual([
      [null, '200'],
      ['[45]\\d{2}', '503'],
    ]);
    expect(json(responses[0]?.ResponseTemplates)).toContain('$context.requestId');
    const failureTemplates = (responses[1] ?? {}).ResponseTemplates as Record<string, string>;
    expect(JSON.parse(failureTemplates['application/json'] as string)).toEqual({
      error: { code: 'StorageUnavailable', message: 'The callback could not be stored; retry later' },
    });
    expect(callback.RequestParameters).toEqual({ 'method.request.header.Content-Type': false });
  });

  it('checks the callback secret in an uncached authorizer of its own, which only API Gateway may invoke', () => {
    const callback = methods.get('POST /callbacks/{secret}') as Json;
    expect(callback.AuthorizationType).toBe('CUSTOM');
    const authorizerId = (callback.AuthorizerId as { Ref: string }).Ref;
    const props = resources[authorizerId]?.Properties as Json;
    expect(props.Type).toBe('REQUEST');
    // Uncached: a wrong secret can never ride on a cached allow.
    expect(props.AuthorizerResultTtlInSeconds).toBe(0);
    expect(props.IdentitySource ?? '').toBe('');
    expect(json(props.AuthorizerUri)).toContain(ids.callbackAuthorizer);
    const permissions = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Lambda::Permission' && json(r.Properties?.FunctionName).includes(ids.callbackAuthorizer),
    );
    expect(permissions).toHaveLength(1);
    expect(permissions[0]?.Properties?.Principal).toBe('apigateway.amazonaws.com');
    expect(json(permissions[0]?.Properties?.SourceArn)).toContain('/authorizers/');
  });

  it('feeds result-callback from the inbox queue: partial failures, redrive to an encrypted DLQ', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [ids.inbox, 'Arn'] },
      FunctionName: { Ref: ids.resultCallback },
      BatchSize: CALLBACK_INBOX_BATCH,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const inbox = resources[ids.inbox]?.Properties as Json;
    expect(inbox.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [ids.inboxDlq, 'Arn'] },
      maxReceiveCount: CALLBACK_INBOX_MAX_RECEIVES,
    });
    expect(inbox.VisibilityTimeout).toBeGreaterThanOrEqual(6 * (fnProps('resultCallback').Timeout as number));
    expect(inbox.SqsManagedSseEnabled).toBe(true);
    const inboxDlq = propsOf(resources[ids.inboxDlq], 'inbox DLQ');
    expect(inboxDlq.SqsManagedSseEnabled).toBe(true);
    expect(inboxDlq.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    // Only S3 notifications of this bucket, in this account, may send to it.
    const fromS3 = Object.values(resources)
      .filter((r) => r.Type === 'AWS::SQS::QueuePolicy' && json(r.Properties?.Queues) === json([{ Ref: ids.inbox }]))
      .flatMap((p) => (propsOf(p).PolicyDocument as { Statement: Statement[] }).Statement)
      .filter((st) => json(st).includes('s3.amazonaws.com'));
    expect(fromS3).toHaveLength(1);
    expect(fromS3[0]?.Condition).toEqual({
      ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [ids.bucket, 'Arn'] } },
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    });
  });

  it('treats every body as binary, so every body reaches the functions byte for byte', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['*/*'] });
  });

  it('logs access (without the callback path) and throttles the stage', () => {
    const stage = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::Stage')?.Properties as Json;
    const format = (stage.AccessLogSetting as { Format: string }).Format;
    expect(format).toContain('$context.resourcePath');
    expect(format).not.toMatch(/\$context\.path\b/);
    const settings = stage.MethodSettings as Json[];
    expect(settings).toContainEqual(
      expect.objectContaining({ ResourcePath: '/*', HttpMethod: '*', ThrottlingRateLimit: expect.any(Number) }),
    );
    expect(settings).toContainEqual(
      expect.objectContaining({
        ResourcePath: '/~1callbacks~1{secret}',
        HttpMethod: 'POST',
        ThrottlingRateLimit: expect.any(Number),
      }),
    );
    expect(settings.every((s) => s.DataTraceEnabled !== true)).toBe(true);
  });

  it('binds the API key to a usage plan with throttle and quota on the stage', () => {
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: Match.anyValue(), BurstLimit: Match.anyValue() },
      Quota: { Limit: 5000, Period: 'DAY' },
      ApiStages: [Match.objectLike({ Stage: Match.anyValue() })],
    });
    template.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
  });

  it("answers API Gateway's own errors in IVA's error shape", () => {
    const responses = Object.values(resources).filter((r) => r.Type === 'AWS::ApiGateway::GatewayResponse');
    const types = responses.map((r) => r.Properties?.ResponseType);
    expect(types).toEqual(
      expect.arrayContaining(['REQUEST_TOO_LARGE', 'INVALID_API_KEY', 'THROTTLED', 'DEFAULT_4XX', 'DEFAULT_5XX']),
    );
    for (const r of responses) {
      for (const body of Object.values(r.Properties?.ResponseTemplates as Record<string, string>)) {
        // What API Gateway substitutes: plain ids, and messageString as a quoted JSON string.
        const rendered = body
          .replaceAll('$context.error.messageString', '"Forbidden"')
          .replaceAll('$context.error.responseType', 'ACCESS_DENIED')
          .replaceAll('$context.requestId', 'req-1')
          // The authorizer's deny context (lib/client-auth: template-safe message).
          .replaceAll('$context.authorizer.code', 'InvalidTimestamp')
          .replaceAll('$context.authorizer.message', 'X-Date is 1200 s from the clock');
        const parsed = JSON.parse(rendered) as {
          ResponseMetadata: { RequestId: string; Error: { Code: string; Message: string } };
        };
        expect(parsed.ResponseMetadata.Error.Code).toMatch(/^[A-Za-z_]+$/);
        expect(parsed.ResponseMetadata.Error.Message.length).toBeGreaterThan(0);
        expect(parsed.ResponseMetadata.RequestId).toBe('req-1');
      }
    }
  });

  it('answers a too-large body with 413 naming POST /v1/uploads, multipart requests included', () => {
    const tooLarge = Object.values(resources).find((r) => r.Properties?.ResponseType === 'REQUEST_TOO_LARGE')
      ?.Properties as Json;
    expect(tooLarge.StatusCode).toBe('413');
    const templates = tooLarge.ResponseTemplates as Record<string, string>;
    expect(Object.keys(templates)).toEqual(expect.arrayContaining(['application/json', 'multipart/form-data']));
    for (const body of Object.values(templates)) {
      const parsed = JSON.parse(body.replaceAll('$context.requestId', 'r')) as {
        ResponseMetadata: { Error: { Code: string; Message: string } };
      };
      expect(parsed.ResponseMetadata.Error.Code).toBe('PayloadTooLarge');
      expect(parsed.ResponseMetadata.Error.Message).toContain('POST /v1/uploads');
    }
  });

  it('puts the client-auth authorizer, uncached, without identity sources, on every route but the callback; API keys come from it', () => {
    const authorizers = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::ApiGateway::Authorizer');
    // client-auth and the callback secret's.
    expect(authorizers).toHaveLength(2);
    const [authorizerId, authorizer] = authorizers.find(([, r]) =>
      json(r.Properties?.AuthorizerUri).includes(ids.clientAuth),
    ) as [string, CfnResourceJson];
    const props = authorizer.Properties as Json;
    expect(props.Type).toBe('REQUEST');
    expect(props.AuthorizerResultTtlInSeconds).toBe(0);
    // No source at all: a listed source that is missing makes API Gateway answer
    // UNAUTHORIZED without calling it, and UNAUTHORIZED is the callback route's 404 (an
    // unsigned request is client-auth's MissingSignature deny instead). Content-Length
    // must never be one (chunked bodies have none).
    expect(props.IdentitySource ?? '').toBe('');
    const api = propsOf(resources[logicalId(stack, stack.api)], 'Api');
    expect(api.ApiKeySourceType).toBe('AUTHORIZER');

    const guarded = [...methods]
      .filter(([, m]) => m.AuthorizationType === 'CUSTOM' && json(m.AuthorizerId) === json({ Ref: authorizerId }))
      .map(([route]) => route);
    expect(guarded.sort()).toEqual([...methods.keys()].filter((route) => route !== 'POST /callbacks/{secret}').sort());
    for (const [route, m] of methods) {
      if (route === 'POST /callbacks/{secret}') continue; // its own authorizer (above)
      if (guarded.includes(route)) {
        expect(m.AuthorizerId, route).toEqual({ Ref: authorizerId });
        expect(m.ApiKeyRequired, route).toBe(true);
      } else {
        expect(m.AuthorizerId, route).toBeUndefined();
        expect(m.AuthorizationType ?? 'NONE', route).toBe('NONE');
      }
    }
  });

  it('lets only API Gateway invoke client-auth, for this authorizer only', () => {
    const permissions = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Lambda::Permission' && json(r.Properties?.FunctionName).includes(ids.clientAuth),
    );
    expect(permissions).toHaveLength(1);
    const props = permissions[0]?.Properties as Json;
    expect(props.Principal).toBe('apigateway.amazonaws.com');
    expect(json(props.SourceArn)).toContain('/authorizers/');
  });

  it("turns the authorizer's deny (ACCESS_DENIED) into a 403 with the IVA code and message of its context", () => {
    const denied = Object.values(resources).find((r) => r.Properties?.ResponseType === 'ACCESS_DENIED')
      ?.Properties as Json;
    expect(denied.StatusCode).toBe('403');
    const templates = denied.ResponseTemplates as Record<string, string>;
    expect(Object.keys(templates)).toEqual(expect.arrayContaining(['application/json', 'multipart/form-data']));
    for (const body of Object.values(templates)) {
      const rendered = body
        .replaceAll('$context.requestId', 'r')
        .replaceAll('$context.authorizer.code', 'SignatureDoesNotMatch')
        .replaceAll('$context.authorizer.message', 'm');
      const parsed = JSON.parse(rendered) as { ResponseMetadata: { Error: { Code: string; Message: string } } };
      expect(parsed.ResponseMetadata.Error).toEqual({ Code: 'SignatureDoesNotMatch', Message: 'm' });
    }
  });

  it('answers a failed Lambda invoke with an IVA-shaped 502 that points at POST /v1/uploads', () => {
    const failure = Object.values(resources).find((r) => r.Properties?.ResponseType === 'INTEGRATION_FAILURE')
      ?.Properties as Json;
    expect(failure.StatusCode).toBe('502');
    for (const body of Object.values(failure.ResponseTemplates as Record<string, string>)) {
      const parsed = JSON.parse(body.replaceAll('$context.requestId', 'r')) as {
        ResponseMetadata: { Error: { Code: string; Message: string } };
      };
      expect(parsed.ResponseMetadata.Error.Code).toBe('IntegrationFailure');
      expect(parsed.ResponseMetadata.Error.Message).toMatch(/over 4\.5 MB/);
      expect(parsed.ResponseMetadata.Error.Message).toContain('POST /v1/uploads');
    }
  });

  it("answers the callback authorizer's refusal (UNAUTHORIZED) exactly as an unknown route", () => {
    const unauthorized = Object.values(resources).find((r) => r.Properties?.ResponseType === 'UNAUTHORIZED')
      ?.Properties as Json;
    const notFound = Object.values(resources).find((r) => r.Properties?.ResponseType === 'MISSING_AUTHENTICATION_TOKEN')
      ?.Properties as Json;
    expect(unauthorized.StatusCode).toBe('404');
    expect(unauthorized.StatusCode).toBe(notFound.StatusCode);
    expect(unauthorized.ResponseTemplates).toEqual(notFound.ResponseTemplates);
    expect(unauthorized.ResponseParameters).toEqual(notFound.ResponseParameters);
    expect(json(unauthorized.ResponseTemplates)).toContain('RouteNotFound');
  });

  it('keeps the callback secret out of X-Ray, execution logs, access logs and metric dimensions', () => {
    const stage = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::Stage')?.Properties as Json;
    // API Gateway's segment records http.request.url, the whole path: no tracing on the stage.
    expect(stage.TracingEnabled ?? false).toBe(false);
    const settings = stage.MethodSettings as Json[];
    const callback = settings.find((s) => s.ResourcePath === '/~1callbacks~1{secret}' && s.HttpMethod === 'POST');
    expect(callback?.LoggingLevel).toBe('OFF');
    expect(callback?.DataTraceEnabled ?? false).toBe(false);
    const format = (stage.AccessLogSetting as { Format: string }).Format;
    for (const leaky of ['$context.path', '$context.requestOverride.path', '$context.authorizer.principalId']) {
      expect(format).not.toContain(leaky);
    }
    // No function traces itself (a traced Lambda would start its own segment with the event).
    for (const fn of ['objectCreated', 'directSubmit', 'resultCallback', 'clientAuth', 'callbackAuthorizer'] as const) {
      expect((fnProps(fn).TracingConfig as Json | undefined)?.Mode ?? 'PassThrough').toBe('PassThrough');
    }
    // Metric dimensions name resources by template; any custom dimension is not the path.
    expect(json(Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm'))).not.toContain(
      'callbacks/',
    );
  });

  it('answers an unknown route 404 RouteNotFound instead of a missing-token 403', () => {
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'MISSING_AUTHENTICATION_TOKEN',
      StatusCode: '404',
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('"Code":"RouteNotFound"') },
      // result-callback copies these exactly for a wrong secret (lib/http/route-not-found.ts).
      ResponseParameters: {
        'gatewayresponse.header.Content-Type': "'application/json'",
        'gatewayresponse.header.x-amzn-ErrorType': "'RouteNotFound'",
      },
    });
  });
});

describe('sweep', () => {
  it('runs the sweep function every 15 minutes, one at a time, with the documented defaults', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      Targets: Match.arrayWith([Match.objectLike({ Arn: { 'Fn::GetAtt': [ids.sweep, 'Arn'] } })]),
    });
    const props = resources[ids.sweep]?.Properties as Json;
    expect(props.ReservedConcurrentExecutions).toBe(1);
    expect((props.Environment as { Variables: Json }).Variables).toMatchObject({
      SWEEP_OVERDUE_AFTER_SECONDS: '86400',
      SWEEP_EXPIRE_UPLOADS_AFTER_SECONDS: '7200',
    });
  });

  it('lets the sweep list and abort multipart uploads under incoming/ only, and reach no object', () => {
    const s3 = s3Statements(statementsOf('sweep'));
    expect(s3.flatMap(actionsOf).sort()).toEqual(['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts']);
    for (const statement of s3) expect(json(resourcesOf(statement))).toMatch(/\/incoming\/\*"/);
  });

  it('aborts multipart uploads left incomplete under incoming/ after a day (the lifecycle rule)', () => {
    const bucket = Object.values(resources).find(
      (r) => r.Type === 'AWS::S3::Bucket' && json(r.Properties).includes('expire-incoming'),
    );
    const rules =
      (bucket?.Properties as { LifecycleConfiguration?: { Rules: Json[] } } | undefined)?.LifecycleConfiguration
        ?.Rules ?? [];
    expect(rules.find((r) => r.Id === 'expire-incoming')).toMatchObject({
      Prefix: 'incoming/',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    });
  });

  it('lets only the sweep scan the ledger', () => {
    const scanners = Object.values(resources).filter(
      (r) => r.Type === 'AWS::IAM::Policy' && json(r.Properties).includes('dynamodb:Scan'),
    );
    expect(scanners).toHaveLength(1);
    expect(json(scanners[0]?.Properties)).toContain('SweepRole');
  });
});

describe('alarms (cdk-monitoring-constructs, infra/monitoring.ts)', () => {
  const alarms = () =>
    Object.values(resources)
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
      .map((r) => r.Properties as Json);
  /** The metrics an alarm evaluates (the facade writes them as metric math, `Metrics`). */
  const metricsOf = (alarm: Json) =>
    ((alarm.Metrics ?? []) as Array<{ MetricStat?: { Metric: Json; Stat: string } }>)
      .filter((m) => m.MetricStat)
      .map((m) => m.MetricStat as { Metric: Json; Stat: string });

  it('alarms when the DLQ holds any message', () => {
    const dlq = alarms().filter((a) =>
      metricsOf(a).some(
        (m) =>
          m.Metric.Namespace === 'AWS/SQS' &&
          m.Metric.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          json(m.Metric.Dimensions) === json([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.dlq, 'QueueName'] } }]),
      ),
    );
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1 });
  });

  it('alarms on errors of each function and notifies the alarm e-mail', () => {
    for (const name of [
      'objectCreated',
      'directSubmit',
      'resultCallback',
      'clientAuth',
      'callbackAuthorizer',
    ] as const) {
      const errors = alarms().filter((a) =>
        metricsOf(a).some(
          (m) =>
            m.Metric.Namespace === 'AWS/Lambda' &&
            m.Metric.MetricName === 'Errors' &&
            json(m.Metric.Dimensions) === json([{ Name: 'FunctionName', Value: { Ref: ids[name] } }]),
        ),
      );
      expect(errors, name).toHaveLength(1);
      expect(errors[0]).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
    const topic = Object.entries(resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')?.[0] as string;
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: topic },
    });
    // Five functions' errors, the intake DLQ and the callback inbox DLQ.
    expect(alarms()).toHaveLength(7);
    for (const a of alarms()) {
      expect(a.AlarmActions).toEqual([{ Ref: topic }]);
      // Named after the stack: two stacks in one account never share an alarm name.
      expect(a.AlarmName).toMatch(/^IvaBridgeTest-/);
    }
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('dashboard', () => {
  interface Widget {
    type: string;
    properties: { title?: string; metrics?: unknown[][] };
  }
  /** The dashboard body with each CloudFormation reference written `@Ref:Id@` / `@Id.Attr@`, parsed. */
  const widgets = (): Widget[] => {
    const dashboards = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]?.Properties?.DashboardName).toBe('IvaBridgeTest');
    const body = propsOf(dashboards[0], 'the dashboard').DashboardBody as { 'Fn::Join': [string, unknown[]] };
    const parts = body['Fn::Join'][1];
    const text = parts
      .map((p) => {
        if (typeof p === 'string') return p;
        const ref = p as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
        return ref.Ref ? `@Ref:${ref.Ref}@` : `@${ref['Fn::GetAtt']?.join('.')}@`;
      })
      .join('');
    return (JSON.parse(text) as { widgets: Widget[] }).widgets;
  };
  /** Every metric line as `Namespace/Name dim=value …` (math expressions as `expr: …`). */
  const lines = () =>
    widgets().flatMap((w) =>
      (w.properties.metrics ?? []).map((m) => {
        const last = m[m.length - 1] as { expression?: string };
        if (last?.expression) return `expr: ${last.expression}`;
        const [namespace, name, ...rest] = m.filter((x) => typeof x === 'string') as string[];
        const dims: string[] = [];
        for (let k = 0; k + 1 < rest.length; k += 2) dims.push(`${rest[k]}=${rest[k + 1]}`);
        return `${namespace}/${name} ${dims.join(' ')}`.trim();
      }),
    );

  it('graphs the metrics the functions emit, by the namespace and service they emit them under', () => {
    const all = lines();
    for (const name of [
      METRIC.submitted,
      METRIC.failed,
      METRIC.retried,
      METRIC.uncertain,
      METRIC.overdue,
      METRIC.uploadsExpired,
      METRIC.submissionToResult,
      METRIC.callbacksReceived,
      METRIC.resultsStored,
      METRIC.callbacksUnmatched,
    ]) {
      expect(all, name).toContain(`${METRICS_NAMESPACE}/${name} service=${SERVICE_NAME}`);
    }
    // Failures by code: a search over the Code dimension (codes are not known in advance).
    expect(all).toContain(
      `expr: SEARCH('{"${METRICS_NAMESPACE}","service","Code"} "service"="${SERVICE_NAME}" MetricName="${METRIC.failedByCode}"', 'Sum', 300)`,
    );
    // The namespace and service are what Powertools is given.
    for (const name of ['objectCreated', 'directSubmit', 'resultCallback', 'sweep'] as const) {
      const env = (fnProps(name).Environment as { Variables: Json }).Variables;
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe(METRICS_NAMESPACE);
      expect(env.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAME);
    }
    // Every custom metric on the dashboard is one the code names.
    const named = new Set<string>([...Object.values(METRIC), API_THROTTLED_METRIC]);
    const custom = all.filter((l) => l.startsWith(`${METRICS_NAMESPACE}/`));
    expect(custom.length).toBeGreaterThan(10);
    for (const line of custom) expect(named.has(line.split(' ')[0]?.split('/')[1] ?? ''), line).toBe(true);
  });

  it('graphs API 4xx/5xx and throttles, queue and DLQ depth, and errors, duration and concurrency of each function', () => {
    const all = lines();
    for (const metric of ['4XXError', '5XXError', 'Latency'])
      expect(all).toContain(`AWS/ApiGateway/${metric} ApiName=Api Stage=prod`);
    expect(all).toContain(`${METRICS_NAMESPACE}/${API_THROTTLED_METRIC}`);
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '{ $.status = 429 }',
      MetricTransformations: [
        Match.objectLike({ MetricName: API_THROTTLED_METRIC, MetricNamespace: METRICS_NAMESPACE }),
      ],
    });
    expect(all).toContain(`AWS/SQS/ApproximateNumberOfMessagesVisible QueueName=@${ids.dlq}.QueueName@`);
    expect(all).toContain(`AWS/SQS/ApproximateNumberOfMessagesVisible QueueName=@${ids.queue}.QueueName@`);
    for (const name of ['objectCreated', 'directSubmit', 'resultCallback', 'clientAuth', 'sweep'] as const) {
      for (const metric of ['Errors', 'Duration', 'ConcurrentExecutions', 'Throttles'])
        expect(all, `${name} ${metric}`).toContain(`AWS/Lambda/${metric} FunctionName=@Ref:${ids[name]}@`);
    }
  });

  it('is a stack output: its console URL', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const url = json(outputs.DashboardUrl?.Value);
    expect(url).toContain('.console.aws.amazon.com/cloudwatch/home?region=');
    expect(url).toContain('#dashboards:name=');
  });
});

describe('outputs', () => {
  it('tell the operator how to read the key, build the callback URL and fill the Volcengine secret', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const name of [
      'BucketName',
      'ApiUrl',
      'ApiKeyId',
      'ApiKeyValueCommand',
      'CallbackUrlCommand',
      'VolcSecretArn',
      'VolcSecretPutCommand',
      'DlqUrl',
      'LedgerTableName',
    ]) {
      expect(outputs, name).toHaveProperty(name);
    }
    expect(json(outputs.ApiKeyValueCommand?.Value)).toContain('aws apigateway get-api-key --api-key ');
    expect(json(outputs.ApiKeyValueCommand?.Value)).toContain('--include-value --query value --output text');
    const callback = json(outputs.CallbackUrlCommand?.Value);
    expect(callback).toContain('callbacks/$(aws secretsmanager get-secret-value --secret-id ');
    expect(callback).toContain('--query SecretString --output text');
    expect(json(outputs.VolcSecretPutCommand?.Value)).toContain('aws secretsmanager put-secret-value');
  });
});

describe('account-level settings', () => {
  it('leaves the account-wide API Gateway logging role alone by default (apiGatewayCloudWatchRole off)', () => {
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::ApiGateway::Account')).toEqual([]);
    expect(stack.api.node.tryFindChild('CloudWatchRole')).toBeUndefined();
  });
});

describe('IVA mode', () => {
  it('vendor mode (the default) deploys no sandbox and calls the configured IVA endpoint with the Volcengine secret', () => {
    expect(stack.sandbox).toBeUndefined();
    expect(Object.keys(resources).filter((id) => id.startsWith('IvaSandbox'))).toEqual([]);
    template.resourceCountIs('AWS::Lambda::Url', 0);
    const volc = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::SecretsManager::Secret' && id.startsWith('VolcCredentials'),
    )?.[0];
    for (const name of ['objectCreated', 'directSubmit'] as const) {
      const env = (fnProps(name).Environment as { Variables: Json }).Variables;
      expect(env[ENV.ivaEndpoint]).toBe(DEFAULTS.ivaEndpoint);
      expect(env[ENV.volcSecretArn]).toEqual({ Ref: volc });
    }
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.IvaMode?.Value).toBe('vendor');
    expect(outputs.IvaSandboxUrl).toBeUndefined();
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged error or warning', () => {
    const findings = nagFindings(app, stack);
    expect(findings).toEqual([]);
  });

  it('gives every acknowledgement a specific reason', () => {
    const acks = acknowledgements(stack);
    expect(acks.length).toBeGreaterThan(5);
    for (const ack of acks) {
      expect(ack.id, ack.path).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(40);
    }
    // No blanket IAM5: wildcard-resource acknowledgements name the exact finding.
    expect(acks.filter((a) => a.id === 'AwsSolutions-IAM5')).toEqual([]);
  });

  it('leaves no CDK error annotations', () => {
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });
});
