/**
 * The deployed stack as the local stack sees it: `infra/stack.ts` synthesized (without
 * bundling, so it takes seconds, not minutes) and read back from its CloudFormation
 * template, as SAM's local mode does. Everything `npm start` emulates comes from here:
 * API resources, methods, API keys, the authorizer, binary media types and gateway
 * responses; each function's handler, environment, timeout, memory and reserved
 * concurrency; the SQS event source mapping; the queue's visibility timeout and redrive
 * policy; the bucket notification's filter; the sweep's schedule. What cannot be derived
 * is in NOT_DERIVED, with the reason.
 *
 * The synthesized template is cached under `.local/cache/` keyed by a hash of infra/,
 * the repository files it imports and the aws-cdk-lib version, so a second `npm start`
 * reads one JSON file instead of loading the CDK.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { INCOMING_PREFIX } from '../../lib/storage/prefixes';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The construct id `npm start` synthesizes under (the default stack name). */
export const LOCAL_STACK_NAME = 'IvaBridge';

/** A CloudFormation value as it appears in a template (string, Ref, Fn::GetAtt, Fn::Join, …). */
export type CfnValue = string | number | boolean | { [fn: string]: unknown } | CfnValue[];

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, unknown>;
}

export interface TemplateFunction {
  logicalId: string;
  /** camelCase of the construct id (`ObjectCreated` → `objectCreated`). */
  key: string;
  /** The construct id (`ObjectCreated`), also the local function name's suffix. */
  id: string;
  /** `functions/<kebab-case id>/handler.ts`, relative to the repository. */
  entry: string;
  /** Export named by the template's Handler (`index.handler` → `handler`). */
  handlerExport: string;
  runtime: string;
  timeoutSeconds: number;
  memoryMb: number;
  reservedConcurrency?: number;
  /** Environment variables as written in the template (values may be Refs; see resolveValue). */
  environment: Record<string, CfnValue>;
}

export interface TemplateRoute {
  method: string;
  /** Full resource path, e.g. `/v1/submissions/{id}`. */
  resource: string;
  /** Key of the proxied function (Lambda proxy integrations). */
  target?: string;
  /** An AWS service integration that writes the body to S3 instead (the callback inbox). */
  s3?: TemplateS3Integration;
  apiKeyRequired: boolean;
  /** The method's AuthorizationType: `NONE`, `CUSTOM` (the authorizer below) or `AWS_IAM` (SigV4). */
  authorizationType: string;
  /** Key of the REQUEST authorizer's function, when the method has one. */
  authorizer?: TemplateAuthorizer;
}

/**
 * The IAM API (infra/stack.ts createIamApi): its methods are AWS_IAM, its resource policy
 * names who may invoke. Principals are template values (an account root is a Fn::Join
 * of the partition and account id); the local stack resolves them.
 */
export interface TemplateIamApi {
  stage: string;
  binaryMediaTypes: string[];
  routes: TemplateRoute[];
  gatewayResponses: Record<string, TemplateGatewayResponse>;
  /** AWS principals of the resource policy's Allow execute-api:Invoke statements. */
  principals: CfnValue[];
}

export interface TemplateAuthorizer {
  name: string;
  functionKey: string;
  type: string;
  /** Header names of `method.request.header.X` identity sources (lower case). */
  identityHeaders: string[];
  resultTtlSeconds: number;
}

/**
 * An API Gateway AWS integration with S3 (`arn:…:apigateway:<region>:s3:path/<bucket>/<key>`):
 * the method, the URI (still with Refs, resolved against the local bucket), the request
 * parameter mappings and the integration responses, as the template has them.
 */
export interface TemplateS3Integration {
  httpMethod: string;
  uri: CfnValue;
  /** `integration.request.{path,header}.X` → `method.request.header.Y` | `context.Z` | `'literal'`. */
  requestParameters: Record<string, string>;
  responses: TemplateIntegrationResponse[];
}

export interface TemplateIntegrationResponse {
  /** Regular expression over the service's HTTP status; absent = the default response. */
  selectionPattern?: string;
  statusCode: number;
  /** Header → value (template quoting removed). */
  headers: Record<string, string>;
  templates: Record<string, string>;
}

/** A bucket notification → queue → event source mapping → function chain. */
export interface TemplatePipeline {
  queue: TemplateQueue;
  eventSource: TemplateEventSource;
  notification: TemplateNotification;
}

export interface TemplateGatewayResponse {
  type: string;
  statusCode?: number;
  /** Header → value (template quoting removed). */
  headers: Record<string, string>;
  /** Content type → body template. */
  templates: Record<string, string>;
}

export interface TemplateEventSource {
  functionKey: string;
  queueLogicalId: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  maximumConcurrency?: number;
  reportBatchItemFailures: boolean;
}

export interface TemplateQueue {
  logicalId: string;
  visibilityTimeoutSeconds: number;
  messageRetentionSeconds: number;
  maxReceiveCount?: number;
  deadLetterLogicalId?: string;
}

export interface TemplateNotification {
  queueLogicalId: string;
  events: string[];
  prefix?: string;
  suffix?: string;
}

export interface TemplateSchedule {
  functionKey: string;
  /** `rate(N unit)` in milliseconds. */
  intervalMs: number;
  expression: string;
  retryAttempts?: number;
}

export interface LocalTemplate {
  hash: string;
  stage: string;
  binaryMediaTypes: string[];
  /** Where API Gateway takes the usage plan key from: the `x-api-key` header, or the authorizer's `usageIdentifierKey`. */
  apiKeySource: 'HEADER' | 'AUTHORIZER';
  routes: TemplateRoute[];
  gatewayResponses: Record<string, TemplateGatewayResponse>;
  /** The second REST API, whose methods are AWS_IAM; absent when the stack builds none (-c iamPrincipals=none). */
  iamApi?: TemplateIamApi;
  functions: Record<string, TemplateFunction>;
  /** The intake pipeline (incoming/ → object-created); also in `pipelines`. */
  queue: TemplateQueue;
  eventSource: TemplateEventSource;
  notification: TemplateNotification;
  /** Every S3 → SQS → function pipeline (the intake and the callback inbox). */
  pipelines: TemplatePipeline[];
  sweep: TemplateSchedule;
  /** Resource types in the template that the local stack does not emulate (with counts). */
  ignored: Record<string, number>;
  template: CfnTemplate;
}

/**
 * What the local stack does NOT take from the template, and why. Kept in one place (the
 * README's "What `npm start` takes from the template" lists the same).
 */
export const NOT_DERIVED: ReadonlyArray<{ what: string; why: string }> = [
  {
    what: 'IVA_ENDPOINT / IVA_REGION / IVA_SERVICE',
    why: 'point at the local IVA sandbox (or the IVA_ENDPOINT given to npm start), not the deployed default',
  },
  {
    what: 'secret values (VOLC_SECRET_ARN, CALLBACK_SECRET_ARN)',
    why: 'the template holds only ARNs; the local Secrets Manager serves the sandbox keys (or VOLC_ACCESSKEY/VOLC_SECRETKEY) and the local callback secret under local ARNs',
  },
  {
    what: 'role ARNs (PRESIGN_ROLE_ARN, UPLOAD_ROLE_ARN), IAM policies, and the callback S3 integration role',
    why: 'the local STS answers AssumeRole for any role with the local S3 keys; no identity policy is evaluated (the IAM API applies only its resource policy principals, local/stack/sigv4.ts); the gateway writes the callback inbox with the local S3 keys',
  },
  {
    what: 'API Gateway throttling, usage plan quota, stage method settings',
    why: 'rate limits need the account-level token buckets; locally nothing is throttled',
  },
  {
    what: 'account concurrency of functions without reserved concurrency',
    why: 'Lambda scales them up to the account limit; locally at most LOCAL_MAX_CONCURRENCY processes per function, further invocations wait',
  },
  {
    what: 'bucket settings (versioning, lifecycle, encryption, access logs), queue encryption and retention',
    why: 's3rver keeps no versions and runs no lifecycle; the local queue keeps messages until delivered or dead-lettered',
  },
  {
    what: 'EventBridge rules and targets other than the sweep schedule',
    why: 'the local EventBridge records PutEvents (GET /__local/events); nothing is routed',
  },
  {
    what: 'CloudWatch alarms, dashboards, log groups and their retention',
    why: 'function output goes to the terminal (npm start) or is kept in memory (tests)',
  },
  {
    what: 'architecture (arm64) and memory as CPU share',
    why: 'the functions run on this machine; memory is reported in the context, not enforced',
  },
  {
    what: 'Lambda runtime (nodejs22.x)',
    why: 'functions run on Node 22 when it can be found (npx -p node@22), else on the current Node, with a warning line',
  },
];

/** Most processes one function without reserved concurrency gets locally. */
export const LOCAL_MAX_CONCURRENCY = 4;

// ---------------------------------------------------------------------------- cache

/** Relative imports of a TypeScript file (`from './x'`, `import('./y')`). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const spec = m[1]!;
    const base = resolve(dirname(file), spec);
    for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')])
      if (existsSync(candidate) && candidate.endsWith('.ts')) {
        out.push(candidate);
        break;
      }
  }
  return out;
}

/** infra/ and every repository file it imports, transitively, plus the CDK's version. */
export function templateInputs(root = REPO_ROOT): string[] {
  const seen = new Set<string>();
  const queue = [join(root, 'infra/app.ts'), join(root, 'infra/stack.ts'), join(root, 'infra/config.ts')];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    queue.push(...relativeImports(file));
  }
  return [...seen].sort();
}

export function templateHash(root = REPO_ROOT): string {
  const hash = createHash('sha256');
  for (const file of templateInputs(root)) {
    hash.update(relative(root, file));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  const cdk = JSON.parse(readFileSync(join(root, 'node_modules/aws-cdk-lib/package.json'), 'utf8')) as {
    version: string;
  };
  hash.update(`aws-cdk-lib@${cdk.version}`);
  return hash.digest('hex').slice(0, 16);
}

/** Synthesizes the stack in this process, without bundling any function. */
export async function synthesizeTemplate(): Promise<CfnTemplate> {
  const [{ App }, { configFromContext }, { IvaBridgeStack }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../../infra/config'),
    import('../../infra/stack'),
  ]);
  const outdir = await mkdtemp(join(tmpdir(), 'iva-bridge-synth-'));
  try {
    // `aws:cdk:bundling-stacks: []` makes NodejsFunction skip esbuild (as `cdk synth
    // --exclusively` of another stack would): the template is the same but the assets.
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    new IvaBridgeStack(app, LOCAL_STACK_NAME, configFromContext(app.node));
    const assembly = app.synth();
    return assembly.getStackByName(LOCAL_STACK_NAME).template as CfnTemplate;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

export interface LoadTemplateOptions {
  /** Cache folder; default `.local/cache` in the repository. */
  cacheDir?: string;
  log?: (line: string) => void;
}

/** The template, from the cache when infra/ has not changed since it was written. */
export async function loadTemplate(options: LoadTemplateOptions = {}): Promise<LocalTemplate> {
  const cacheDir = options.cacheDir ?? join(REPO_ROOT, '.local/cache');
  const hash = templateHash();
  const file = join(cacheDir, `template-${hash}.json`);
  let template: CfnTemplate | undefined;
  try {
    template = JSON.parse(await readFile(file, 'utf8')) as CfnTemplate;
  } catch {
    // not cached yet (or unreadable): synthesize
  }
  if (!template) {
    const started = Date.now();
    template = await synthesizeTemplate();
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, JSON.stringify(template));
    await rename(tmp, file);
    options.log?.(`template: synthesized infra/stack.ts in ${Date.now() - started} ms (cached as ${file})`);
  }
  return parseTemplate(template, hash);
}

// ---------------------------------------------------------------------------- parsing

class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

const camel = (id: string): string => id.charAt(0).toLowerCase() + id.slice(1);
const kebab = (id: string): string => id.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

function refOf(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return v.Ref;
    const att = v['Fn::GetAtt'];
    if (Array.isArray(att) && typeof att[0] === 'string') return att[0];
  }
  return undefined;
}

/** Every logical id referenced anywhere inside a value. */
function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsIn(v, out);
  else if (value && typeof value === 'object') {
    const ref = refOf(value);
    if (ref) out.push(ref);
    else for (const v of Object.values(value)) refsIn(v, out);
  }
  return out;
}

/** The construct id of a resource: its `aws:cdk:path` without the stack and `/Resource`. */
function constructId(logicalId: string, resource: CfnResource): string {
  const path = resource.Metadata?.['aws:cdk:path'];
  if (typeof path === 'string') {
    const parts = path.split('/').filter((p) => p !== 'Resource');
    if (parts.length >= 2) return parts[1]!;
  }
  return logicalId.replace(/[0-9A-F]{8}$/, '');
}

const num = (value: unknown, what: string): number => {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new TemplateError(`${what} is not a number in the template`);
  return n;
};

function rateMs(expression: string): number {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) throw new TemplateError(`schedule ${expression}: only rate(N unit) is emulated`);
  const unit = m[2]!.startsWith('minute') ? 60_000 : m[2]!.startsWith('hour') ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}

/** Resource types the local stack stands in for (the rest is listed as ignored). */
const EMULATED = new Set([
  'AWS::Lambda::Function',
  'AWS::Lambda::EventSourceMapping',
  'AWS::ApiGateway::RestApi',
  'AWS::ApiGateway::Resource',
  'AWS::ApiGateway::Method',
  'AWS::ApiGateway::GatewayResponse',
  'AWS::ApiGateway::Authorizer',
  'AWS::ApiGateway::Stage',
  'AWS::ApiGateway::ApiKey',
  'AWS::SQS::Queue',
  'AWS::S3::Bucket',
  'Custom::S3BucketNotifications',
  'AWS::DynamoDB::Table',
  'AWS::SecretsManager::Secret',
  'AWS::Events::Rule',
  'AWS::IAM::Role',
]);

export function parseTemplate(template: CfnTemplate, hash = 'unhashed'): LocalTemplate {
  const resources = template.Resources;
  const ofType = (type: string): [string, CfnResource][] =>
    Object.entries(resources).filter(([, r]) => r.Type === type);
  const props = (r: CfnResource): Record<string, unknown> => r.Properties ?? {};

  // ------------------------------------------------------------------ functions
  const functions: Record<string, TemplateFunction> = {};
  const keyByLogicalId = new Map<string, string>();
  for (const [logicalId, r] of ofType('AWS::Lambda::Function')) {
    const p = props(r);
    const id = constructId(logicalId, r);
    const entry = `functions/${kebab(id)}/handler.ts`;
    // CDK's own helpers (the bucket notifications handler) have inline code and no entry here.
    if (!existsSync(join(REPO_ROOT, entry))) continue;
    const handler = typeof p.Handler === 'string' ? p.Handler : 'index.handler';
    const env = ((p.Environment as { Variables?: Record<string, CfnValue> } | undefined)?.Variables ?? {}) as Record<
      string,
      CfnValue
    >;
    const fn: TemplateFunction = {
      logicalId,
      id,
      key: camel(id),
      entry,
      handlerExport: handler.slice(handler.lastIndexOf('.') + 1),
      runtime: String(p.Runtime ?? ''),
      timeoutSeconds: p.Timeout === undefined ? 3 : num(p.Timeout, `${id} Timeout`),
      memoryMb: p.MemorySize === undefined ? 128 : num(p.MemorySize, `${id} MemorySize`),
      ...(p.ReservedConcurrentExecutions !== undefined
        ? { reservedConcurrency: num(p.ReservedConcurrentExecutions, `${id} ReservedConcurrentExecutions`) }
        : {}),
      environment: env,
    };
    functions[fn.key] = fn;
    keyByLogicalId.set(logicalId, fn.key);
  }
  const functionKeyIn = (value: unknown, what: string): string => {
    for (const ref of refsIn(value)) {
      const key = keyByLogicalId.get(ref);
      if (key) return key;
    }
    throw new TemplateError(`${what} names no function of this repository`);
  };

  // ------------------------------------------------------------------ API
  // Two REST APIs at most: the client-key one (authorizer and callback) and the IAM one,
  // whose methods are all AWS_IAM (infra/stack.ts). Each has its own stage, resources,
  // methods and gateway responses.
  const apis = ofType('AWS::ApiGateway::RestApi');
  const methodsOf = (apiId: string) =>
    ofType('AWS::ApiGateway::Method').filter(([, r]) => refOf(props(r).RestApiId) === apiId);
  const isIamApi = (apiId: string): boolean => {
    const methods = methodsOf(apiId);
    return methods.length > 0 && methods.every(([, r]) => props(r).AuthorizationType === 'AWS_IAM');
  };
  const clientApis = apis.filter(([id]) => !isIamApi(id));
  const iamApis = apis.filter(([id]) => isIamApi(id));
  if (clientApis.length !== 1 || iamApis.length > 1)
    throw new TemplateError(
      `expected one REST API with the authorizer and at most one whose methods are AWS_IAM, found ${clientApis.length} and ${iamApis.length}`,
    );
  const [apiId, api] = clientApis[0]!;
  const binaryMediaTypes = (props(api).BinaryMediaTypes as string[] | undefined) ?? [];
  const apiKeySource = props(api).ApiKeySourceType === 'AUTHORIZER' ? 'AUTHORIZER' : 'HEADER';
  const stageOf = (id: string): string => {
    const stageRes = ofType('AWS::ApiGateway::Stage').find(([, r]) => refOf(props(r).RestApiId) === id);
    return stageRes ? String(props(stageRes[1]).StageName) : 'prod';
  };
  const stage = stageOf(apiId);

  const pathOf = (resourceRef: unknown, rootApiId: string): string => {
    const segments: string[] = [];
    let ref = refOf(resourceRef);
    // The root resource is `Fn::GetAtt [Api, RootResourceId]`.
    while (ref && ref !== rootApiId) {
      const res = resources[ref];
      if (res?.Type !== 'AWS::ApiGateway::Resource') throw new TemplateError(`API resource ${ref} is missing`);
      segments.unshift(String(props(res!).PathPart));
      ref = refOf(props(res!).ParentId);
    }
    return `/${segments.join('/')}`;
  };

  const authorizers = new Map<string, TemplateAuthorizer>();
  for (const [logicalId, r] of ofType('AWS::ApiGateway::Authorizer')) {
    const p = props(r);
    const sources = String(p.IdentitySource ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    authorizers.set(logicalId, {
      name: String(p.Name ?? logicalId),
      functionKey: functionKeyIn(p.AuthorizerUri, `authorizer ${logicalId}`),
      type: String(p.Type),
      identityHeaders: sources
        .filter((s) => s.startsWith('method.request.header.'))
        .map((s) => s.slice('method.request.header.'.length).toLowerCase()),
      resultTtlSeconds: p.AuthorizerResultTtlInSeconds === undefined ? 300 : num(p.AuthorizerResultTtlInSeconds, 'ttl'),
    });
  }

  const routesOf = (id: string): TemplateRoute[] => {
    const routes: TemplateRoute[] = [];
    for (const [logicalId, r] of methodsOf(id)) {
      const p = props(r);
      const method = String(p.HttpMethod);
      if (method === 'OPTIONS' && (p.Integration as { Type?: string } | undefined)?.Type === 'MOCK') continue;
      const integration = p.Integration as
        | {
            Type?: string;
            Uri?: unknown;
            IntegrationHttpMethod?: string;
            RequestParameters?: Record<string, string>;
            IntegrationResponses?: {
              SelectionPattern?: string;
              StatusCode?: string | number;
              ResponseParameters?: Record<string, string>;
              ResponseTemplates?: Record<string, string>;
            }[];
          }
        | undefined;
      const authorizerRef = refOf(p.AuthorizerId);
      const authorizer = authorizerRef ? authorizers.get(authorizerRef) : undefined;
      if (authorizerRef && !authorizer)
        throw new TemplateError(`method ${logicalId}: authorizer ${authorizerRef} missing`);
      let target: { target: string } | { s3: TemplateS3Integration };
      if (integration?.Type === 'AWS_PROXY') target = { target: functionKeyIn(integration.Uri, `method ${logicalId}`) };
      else if (integration?.Type === 'AWS' && /:s3:path\//.test(JSON.stringify(integration.Uri))) {
        target = {
          s3: {
            httpMethod: String(integration.IntegrationHttpMethod ?? 'PUT'),
            uri: integration.Uri as CfnValue,
            requestParameters: integration.RequestParameters ?? {},
            responses: (integration.IntegrationResponses ?? []).map((r) => ({
              ...(r.SelectionPattern ? { selectionPattern: r.SelectionPattern } : {}),
              statusCode: num(r.StatusCode, `method ${logicalId} integration response StatusCode`),
              headers: Object.fromEntries(
                Object.entries(r.ResponseParameters ?? {}).map(([k, v]) => [
                  k.replace(/^method\.response\.header\./, ''),
                  String(v).replace(/^'(.*)'$/, '$1'),
                ]),
              ),
              templates: r.ResponseTemplates ?? {},
            })),
          },
        };
      } else
        throw new TemplateError(
          `method ${logicalId}: only Lambda proxy and S3 path integrations are emulated (found ${integration?.Type ?? 'none'})`,
        );
      routes.push({
        method,
        resource: pathOf(p.ResourceId, id),
        ...target,
        apiKeyRequired: p.ApiKeyRequired === true || p.ApiKeyRequired === 'true',
        authorizationType: String(p.AuthorizationType ?? 'NONE'),
        ...(authorizer ? { authorizer } : {}),
      });
    }
    // Literal segments before parameters, as API Gateway matches the most specific resource.
    routes.sort((a, b) => a.resource.localeCompare(b.resource) || a.method.localeCompare(b.method));
    return routes;
  };
  const routes = routesOf(apiId);

  const gatewayResponsesOf = (id: string): Record<string, TemplateGatewayResponse> => {
    const out: Record<string, TemplateGatewayResponse> = {};
    for (const [, r] of ofType('AWS::ApiGateway::GatewayResponse')) {
      const p = props(r);
      if (refOf(p.RestApiId) !== id) continue;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries((p.ResponseParameters as Record<string, string> | undefined) ?? {})) {
        const name = k.replace(/^gatewayresponse\.header\./, '');
        headers[name] = String(v).replace(/^'(.*)'$/, '$1');
      }
      const type = String(p.ResponseType);
      out[type] = {
        type,
        ...(p.StatusCode !== undefined ? { statusCode: num(p.StatusCode, `${type} StatusCode`) } : {}),
        headers,
        templates: (p.ResponseTemplates as Record<string, string> | undefined) ?? {},
      };
    }
    return out;
  };
  const gatewayResponses = gatewayResponsesOf(apiId);

  let iamApi: TemplateIamApi | undefined;
  if (iamApis[0]) {
    const [iamId, iamResource] = iamApis[0];
    const policy = props(iamResource).Policy as
      | { Statement?: { Effect?: string; Action?: unknown; Principal?: { AWS?: unknown } }[] }
      | undefined;
    const principals: CfnValue[] = [];
    for (const st of policy?.Statement ?? []) {
      const actions = Array.isArray(st.Action) ? st.Action : [st.Action];
      if (st.Effect !== 'Allow' || !actions.some((a) => a === 'execute-api:Invoke' || a === 'execute-api:*')) continue;
      const aws = st.Principal?.AWS;
      for (const p of Array.isArray(aws) ? aws : aws === undefined ? [] : [aws]) principals.push(p as CfnValue);
    }
    iamApi = {
      stage: stageOf(iamId),
      binaryMediaTypes: (props(iamResource).BinaryMediaTypes as string[] | undefined) ?? [],
      routes: routesOf(iamId),
      gatewayResponses: gatewayResponsesOf(iamId),
      principals,
    };
  }

  // ------------------------------------------------------------------ S3 → SQS → function pipelines
  const queueOf = (queueLogicalId: string): TemplateQueue => {
    const qp = props(resources[queueLogicalId]!);
    const redrive = qp.RedrivePolicy as { maxReceiveCount?: unknown; deadLetterTargetArn?: unknown } | undefined;
    return {
      logicalId: queueLogicalId,
      visibilityTimeoutSeconds:
        qp.VisibilityTimeout === undefined ? 30 : num(qp.VisibilityTimeout, 'VisibilityTimeout'),
      messageRetentionSeconds:
        qp.MessageRetentionPeriod === undefined ? 345_600 : num(qp.MessageRetentionPeriod, 'MessageRetentionPeriod'),
      ...(redrive?.maxReceiveCount !== undefined
        ? { maxReceiveCount: num(redrive.maxReceiveCount, 'maxReceiveCount') }
        : {}),
      ...(refOf(redrive?.deadLetterTargetArn) ? { deadLetterLogicalId: refOf(redrive?.deadLetterTargetArn)! } : {}),
    };
  };
  const notificationOf = (queueLogicalId: string): TemplateNotification | undefined => {
    for (const [, r] of ofType('Custom::S3BucketNotifications')) {
      const config = props(r).NotificationConfiguration as
        | {
            QueueConfigurations?: {
              Events?: string[];
              QueueArn?: unknown;
              Filter?: { Key?: { FilterRules?: { Name: string; Value: string }[] } };
            }[];
          }
        | undefined;
      for (const q of config?.QueueConfigurations ?? []) {
        if (refOf(q.QueueArn) !== queueLogicalId) continue;
        const rules = q.Filter?.Key?.FilterRules ?? [];
        const rule = (name: string) => rules.find((x) => x.Name.toLowerCase() === name)?.Value;
        return {
          queueLogicalId,
          events: q.Events ?? [],
          ...(rule('prefix') !== undefined ? { prefix: rule('prefix')! } : {}),
          ...(rule('suffix') !== undefined ? { suffix: rule('suffix')! } : {}),
        };
      }
    }
    return undefined;
  };
  const pipelines: TemplatePipeline[] = [];
  for (const [mappingId, mapping] of ofType('AWS::Lambda::EventSourceMapping')) {
    const mp = props(mapping);
    const queueLogicalId = refOf(mp.EventSourceArn);
    if (!queueLogicalId || resources[queueLogicalId]?.Type !== 'AWS::SQS::Queue')
      throw new TemplateError(`event source mapping ${mappingId} reads no SQS queue of this template`);
    const notification = notificationOf(queueLogicalId);
    if (!notification) throw new TemplateError(`no bucket notification sends to the queue of ${mappingId}`);
    const scaling = mp.ScalingConfig as { MaximumConcurrency?: unknown } | undefined;
    pipelines.push({
      queue: queueOf(queueLogicalId),
      notification,
      eventSource: {
        functionKey: functionKeyIn(mp.FunctionName, `event source mapping ${mappingId}`),
        queueLogicalId,
        batchSize: mp.BatchSize === undefined ? 10 : num(mp.BatchSize, 'BatchSize'),
        maximumBatchingWindowSeconds:
          mp.MaximumBatchingWindowInSeconds === undefined
            ? 0
            : num(mp.MaximumBatchingWindowInSeconds, 'batching window'),
        ...(scaling?.MaximumConcurrency !== undefined
          ? { maximumConcurrency: num(scaling.MaximumConcurrency, 'MaximumConcurrency') }
          : {}),
        reportBatchItemFailures: ((mp.FunctionResponseTypes as string[] | undefined) ?? []).includes(
          'ReportBatchItemFailures',
        ),
      },
    });
  }
  // The intake (uploads under incoming/) has its own local SQS API (index.ts); the others
  // are driven the same way, without it.
  const intake = pipelines.find((x) => x.notification.prefix === INCOMING_PREFIX);
  if (!intake) throw new TemplateError(`no pipeline is fed by the ${INCOMING_PREFIX} notification`);
  const { queue, eventSource, notification } = intake;

  let sweep: TemplateSchedule | undefined;
  for (const [logicalId, r] of ofType('AWS::Events::Rule')) {
    const p = props(r);
    if (typeof p.ScheduleExpression !== 'string') continue;
    const target = (p.Targets as { Arn?: unknown; RetryPolicy?: { MaximumRetryAttempts?: number } }[] | undefined)?.[0];
    sweep = {
      functionKey: functionKeyIn(target?.Arn, `rule ${logicalId}`),
      intervalMs: rateMs(p.ScheduleExpression),
      expression: p.ScheduleExpression,
      ...(target?.RetryPolicy?.MaximumRetryAttempts !== undefined
        ? { retryAttempts: target.RetryPolicy.MaximumRetryAttempts }
        : {}),
    };
  }
  if (!sweep) throw new TemplateError('no scheduled rule invokes a function');

  const ignored: Record<string, number> = {};
  for (const r of Object.values(resources)) if (!EMULATED.has(r.Type)) ignored[r.Type] = (ignored[r.Type] ?? 0) + 1;

  return {
    hash,
    stage,
    binaryMediaTypes,
    apiKeySource,
    routes,
    gatewayResponses,
    ...(iamApi ? { iamApi } : {}),
    functions,
    queue,
    eventSource,
    notification,
    pipelines,
    sweep,
    ignored,
    template,
  };
}

/** Resolves a local value for a resource reference (`Ref` or `Fn::GetAtt`). */
export type RefResolver = (logicalId: string, resource: CfnResource | undefined, attribute?: string) => string;

/** A template value with every Ref / GetAtt / Join / Sub resolved through `resolver`. */
export function resolveValue(value: CfnValue, template: CfnTemplate, resolver: RefResolver): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) throw new TemplateError('a list where a string was expected');
  const [fn, arg] = Object.entries(value)[0] ?? [];
  if (fn === 'Ref') {
    const id = String(arg);
    if (id === 'AWS::Region') return 'us-east-1';
    if (id === 'AWS::AccountId') return '000000000000';
    if (id === 'AWS::Partition') return 'aws';
    if (id === 'AWS::URLSuffix') return 'amazonaws.com';
    return resolver(id, template.Resources[id]);
  }
  if (fn === 'Fn::GetAtt') {
    const [id, attribute] = arg as [string, string];
    return resolver(id, template.Resources[id], attribute);
  }
  if (fn === 'Fn::Join') {
    const [sep, parts] = arg as [string, CfnValue[]];
    return parts.map((p) => resolveValue(p, template, resolver)).join(sep);
  }
  throw new TemplateError(`${fn ?? 'an empty object'} is not resolved locally`);
}
