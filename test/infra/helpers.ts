/**
 * Template-walking helpers for the stack tests: which IAM statements reach a function's
 * role, the full path of an API Gateway method, and the cdk-nag findings of a stack.
 */
import { App, type Stack } from 'aws-cdk-lib';
import type { CfnResource } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { configFromContext } from '../../infra/config';
import { IvaBridgeStack } from '../../infra/stack';

export type Json = Record<string, unknown>;
export interface CfnResourceJson {
  Type: string;
  Properties?: Json;
}

/** A resource's properties; a missing resource fails the test by name instead of a TypeError later. */
export function propsOf(resource: CfnResourceJson | undefined, what = 'resource'): Json {
  if (!resource?.Properties) throw new Error(`${what} is not in the template (or has no properties)`);
  return resource.Properties;
}
export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Condition?: unknown;
}

export function buildStack(context: Record<string, string>): { app: App; stack: IvaBridgeStack } {
  const app = new App({ context });
  const stack = new IvaBridgeStack(app, 'IvaBridgeTest', configFromContext(app.node));
  return { app, stack };
}

export function logicalId(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnResource);
}

export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
export const resourcesOf = (s: Statement): unknown[] =>
  Array.isArray(s.Resource) ? s.Resource : s.Resource === undefined ? [] : [s.Resource];

/** Every statement of every AWS::IAM::Policy attached to the role with this logical id. */
export function roleStatements(resources: Record<string, CfnResourceJson>, roleLogicalId: string): Statement[] {
  const out: Statement[] = [];
  for (const res of Object.values(resources)) {
    if (res.Type !== 'AWS::IAM::Policy') continue;
    const roles = (res.Properties?.Roles ?? []) as Array<{ Ref?: string }>;
    if (!roles.some((r) => r.Ref === roleLogicalId)) continue;
    const doc = res.Properties?.PolicyDocument as { Statement: Statement[] };
    out.push(...doc.Statement);
  }
  return out;
}

/** Every IAM statement anywhere in the template: policies, inline role policies, resource policies. */
export function allStatements(resources: Record<string, CfnResourceJson>): Statement[] {
  const out: Statement[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (value && typeof value === 'object') {
      const obj = value as Json;
      if (Array.isArray(obj.Statement) && typeof obj.Version === 'string') out.push(...(obj.Statement as Statement[]));
      for (const item of Object.values(obj)) visit(item);
    }
  };
  for (const r of Object.values(resources)) visit(r.Properties);
  return out;
}

/** `POST /v1/images`-style key for every API Gateway method of the template (of one REST API, when named). */
export function methodsByRoute(resources: Record<string, CfnResourceJson>, restApiId?: string): Map<string, Json> {
  const pathOf = (ref: unknown): string => {
    if (ref && typeof ref === 'object' && 'Fn::GetAtt' in ref) return ''; // the API's root resource
    const id = (ref as { Ref: string }).Ref;
    const res = resources[id];
    if (res?.Type !== 'AWS::ApiGateway::Resource') throw new Error(`unexpected parent ${JSON.stringify(ref)}`);
    return `${pathOf(res.Properties?.ParentId)}/${res.Properties?.PathPart as string}`;
  };
  const out = new Map<string, Json>();
  for (const res of Object.values(resources)) {
    if (res.Type !== 'AWS::ApiGateway::Method') continue;
    const props = res.Properties as Json;
    if (restApiId !== undefined && (props.RestApiId as { Ref?: string } | undefined)?.Ref !== restApiId) continue;
    out.set(`${props.HttpMethod as string} ${pathOf(props.ResourceId) || '/'}`, props);
  }
  return out;
}

/** cdk-nag v3 reports through CDK's validation plugins; run the pack directly on the stack. */
export function nagFindings(app: App, stack: Stack): Array<{ rule: string; severity: string; paths: string[] }> {
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  return report.violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity ?? 'error',
    paths: v.violatingResources.map((r) => r.constructPath ?? '?'),
  }));
}

/** The acknowledgements (suppressions) recorded anywhere under `scope`, with their reasons. */
export function acknowledgements(scope: IConstruct): Array<{ path: string; id: string; reason: string }> {
  const out: Array<{ path: string; id: string; reason: string }> = [];
  for (const c of scope.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== 'aws:cdk:acknowledged-rules' || !entry.data) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        out.push({
          path: c.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason: typeof reason === 'string' ? reason : JSON.stringify(reason),
        });
      }
    }
  }
  return out;
}
