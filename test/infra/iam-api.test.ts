/**
 * The IAM API (lib/client-auth/README.md, "Callers inside AWS: IAM (SigV4)"): a second
 * REST API from the same route table, every method AWS_IAM on the direct-submit
 * integration, a resource policy naming `-c iamPrincipals`, no API keys, the output
 * IamApiUrl; `-c iamPrincipals=none` builds none. Synthesized offline.
 */
import { App } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, configFromContext } from '../../infra/config';
import { IvaBridgeStack } from '../../infra/stack';
import { ROUTES } from '../../lib/api/routes';
import { type CfnTemplate, parseTemplate } from '../../local/stack/template';
import { type CfnResourceJson, type Json, logicalId, methodsByRoute, nagFindings, propsOf } from './helpers';

const ROLE = 'arn:aws:iam::123456789012:role/uploader';
const OTHER_ACCOUNT = '210987654321';

const synth = (context: Record<string, string>) => {
  // No bundling: the template is the same but the assets (as local/stack/template.ts synthesizes).
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new IvaBridgeStack(app, 'IvaBridgeIam', configFromContext(app.node));
  const template = app.synth().getStackByName(stack.stackName).template as {
    Resources: Record<string, CfnResourceJson>;
    Outputs: Record<string, { Value: unknown }>;
  };
  return { app, stack, template };
};
const json = (value: unknown) => JSON.stringify(value);

describe('IAM API with named principals', () => {
  let built: ReturnType<typeof synth>;
  let iamApiId: string;
  beforeAll(() => {
    built = synth({ iamPrincipals: `${ROLE}, ${OTHER_ACCOUNT}` });
    if (!built.stack.iamApi) throw new Error('no IAM API built');
    iamApiId = logicalId(built.stack, built.stack.iamApi);
  });

  it('has every signed route of lib/api/routes.ts, each AWS_IAM without API key, on direct-submit; not the callback', () => {
    const methods = methodsByRoute(built.template.Resources, iamApiId);
    const signed = ROUTES.filter((r) => r.apiKeyRequired).map((r) => `${r.method} ${r.resource}`);
    expect([...methods.keys()].sort()).toEqual(signed.sort());
    const directSubmit = logicalId(built.stack, built.stack.functions.directSubmit);
    for (const [route, m] of methods) {
      expect(m.AuthorizationType, route).toBe('AWS_IAM');
      expect(m.AuthorizerId, route).toBeUndefined();
      expect(m.ApiKeyRequired, route).toBe(false);
      expect((m.Integration as Json).Type, route).toBe('AWS_PROXY');
      expect(json(m.Integration), route).toContain(directSubmit);
    }
    // The client-key API keeps its authorizer on the same paths.
    const clientMethods = methodsByRoute(built.template.Resources, logicalId(built.stack, built.stack.api));
    expect(clientMethods.get('POST /v1/images')?.AuthorizationType).toBe('CUSTOM');
  });

  it('allows execute-api:Invoke to exactly the named principals in its resource policy', () => {
    const api = propsOf(built.template.Resources[iamApiId], 'IamApi');
    const policy = api.Policy as { Statement: Json[] };
    expect(policy.Statement).toHaveLength(1);
    const [statement] = policy.Statement as [Json];
    expect(statement.Effect).toBe('Allow');
    expect(statement.Action).toBe('execute-api:Invoke');
    expect(statement.Resource).toBe('execute-api:/*');
    const principals = (statement.Principal as { AWS: unknown }).AWS as unknown[];
    expect(principals).toHaveLength(2);
    expect(principals).toContain(ROLE);
    expect(json(principals)).toContain(`:iam::${OTHER_ACCOUNT}:root`);
    // No API key source, no usage plan of its own: the principal is the identity.
    expect(api.ApiKeySourceType).toBeUndefined();
    const plans = Object.values(built.template.Resources).filter((r) => r.Type === 'AWS::ApiGateway::UsagePlan');
    expect(plans).toHaveLength(1);
    expect(json(plans[0]?.Properties)).not.toContain(iamApiId);
  });

  it('lets API Gateway invoke direct-submit from this API too, and only direct-submit', () => {
    const permissions = Object.values(built.template.Resources).filter(
      (r) => r.Type === 'AWS::Lambda::Permission' && json(r.Properties?.SourceArn).includes(iamApiId),
    );
    expect(permissions).toHaveLength(1);
    expect(json(permissions[0]?.Properties?.FunctionName)).toContain(
      logicalId(built.stack, built.stack.functions.directSubmit),
    );
  });

  it("keeps API Gateway's own authentication answers, IVA's shape only for size, integration, throttle, 5xx", () => {
    const types = Object.values(built.template.Resources)
      .filter((r) => r.Type === 'AWS::ApiGateway::GatewayResponse' && json(r.Properties?.RestApiId).includes(iamApiId))
      .map((r) => r.Properties?.ResponseType as string)
      .sort();
    expect(types).toEqual(
      ['DEFAULT_5XX', 'INTEGRATION_FAILURE', 'INTEGRATION_TIMEOUT', 'REQUEST_TOO_LARGE', 'THROTTLED'].sort(),
    );
  });

  it('throttles its stage at the usage-plan rate, logs access to the same group, sets no account role', () => {
    const stage = Object.values(built.template.Resources).find(
      (r) => r.Type === 'AWS::ApiGateway::Stage' && json(r.Properties?.RestApiId).includes(iamApiId),
    )?.Properties as Json;
    expect(stage.StageName).toBe('prod');
    const settings = stage.MethodSettings as Json[];
    expect(settings).toContainEqual(expect.objectContaining({ ResourcePath: '/*', ThrottlingRateLimit: 10 }));
    expect(settings.every((s) => s.DataTraceEnabled !== true)).toBe(true);
    expect(json(stage.AccessLogSetting)).toContain('ApiAccessLogs');
    expect(Object.values(built.template.Resources).filter((r) => r.Type === 'AWS::ApiGateway::Account')).toHaveLength(
      0,
    );
  });

  it('is on the dashboard: its 4xx (refused signatures and principals), 5xx and latency', () => {
    const dashboards = Object.values(built.template.Resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    const body = json(dashboards.map((d) => d.Properties?.DashboardBody));
    for (const metric of ['4XXError', '5XXError', 'Latency'])
      expect(body).toContain(`\\"${metric}\\",\\"ApiName\\",\\"IamApi\\"`);
  });

  it('is what npm start derives its IAM API from: the AWS_IAM routes and the principals', () => {
    const parsed = parseTemplate(built.template as unknown as CfnTemplate);
    expect(parsed.iamApi?.routes.every((r) => r.authorizationType === 'AWS_IAM' && r.target === 'directSubmit')).toBe(
      true,
    );
    expect(parsed.iamApi?.stage).toBe('prod');
    expect(json(parsed.iamApi?.principals)).toContain(ROLE);
    expect(parsed.routes.some((r) => r.authorizationType === 'AWS_IAM')).toBe(false);
  });

  it('outputs IamApiUrl, the stage URL of this API', () => {
    const value = json(built.template.Outputs.IamApiUrl?.Value);
    expect(value).toContain(iamApiId);
    expect(value).toContain('.execute-api.');
  });

  it('passes cdk-nag AwsSolutions with no unacknowledged finding', () => {
    const findings = nagFindings(built.app, built.stack).filter((f) => f.paths.some((p) => p.includes('/IamApi')));
    expect(findings).toEqual([]);
  });
});

describe('IAM API defaults', () => {
  it("without -c iamPrincipals names only the stack's own account", () => {
    const { stack, template } = synth({});
    if (!stack.iamApi) throw new Error('no IAM API built');
    const policy = propsOf(template.Resources[logicalId(stack, stack.iamApi)], 'IamApi').Policy as {
      Statement: Json[];
    };
    const principal = (policy.Statement[0] as Json).Principal as { AWS: unknown };
    expect(json(principal.AWS)).toContain('{"Ref":"AWS::AccountId"},":root"');
  });

  it('-c iamPrincipals=none builds no IAM API and no IamApiUrl (and npm start serves none)', () => {
    const { stack, template } = synth({ iamPrincipals: 'none' });
    expect(parseTemplate(template as unknown as CfnTemplate).iamApi).toBeUndefined();
    expect(stack.iamApi).toBeUndefined();
    expect(template.Outputs.IamApiUrl).toBeUndefined();
    const apis = Object.values(template.Resources).filter((r) => r.Type === 'AWS::ApiGateway::RestApi');
    expect(apis).toHaveLength(1);
  });

  it('refuses a principal that is neither an account, a role or user ARN, self nor none', () => {
    const ctx = (value: unknown) => ({ tryGetContext: (k: string) => (k === 'iamPrincipals' ? value : undefined) });
    for (const bad of [
      '*',
      'arn:aws:iam::123456789012:group/x',
      '12345',
      'arn:aws:sts::123456789012:assumed-role/r/s',
      ',',
    ])
      expect(() => configFromContext(ctx(bad)), bad).toThrow(ConfigError);
    expect(configFromContext(ctx([ROLE, 'self'])).iamPrincipals).toEqual([ROLE, 'self']);
    expect(configFromContext(ctx('none')).iamPrincipals).toEqual([]);
  });
});
