/**
 * Presigned URLs are signed by roles the functions assume (a session with a known
 * expiry, at most 1 h when chained from a function role), and synth says when the
 * configured lifetimes cannot be reached. One synth without presignSecretArn.
 */
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lib/config';
import { SMOKE_STACK_OUTPUTS } from '../../lib/smoke/aws';
import {
  actionsOf,
  buildStack,
  logicalId,
  nagFindings,
  propsOf,
  resourcesOf,
  roleStatements,
  type CfnResourceJson,
  type Json,
} from './helpers';

let built: ReturnType<typeof buildStack>;
let resources: Record<string, CfnResourceJson>;

const roleIdOf = (fnId: string) =>
  (propsOf(resources[fnId], fnId).Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
const envOf = (fnId: string) =>
  (propsOf(resources[fnId], fnId).Environment as { Variables: Record<string, unknown> }).Variables;
const json = (v: unknown) => JSON.stringify(v);

beforeAll(() => {
  built = buildStack({ presignTtlSeconds: String(6 * 3600), uploadUrlTtlSeconds: '7200' });
  resources = Template.fromStack(built.stack).toJSON().Resources as Record<string, CfnResourceJson>;
}, 120_000);

describe('URL signing roles', () => {
  const cases = [
    ['objectCreated', 'PresignGetRole', ENV.presignRoleArn, ['s3:GetObject', 's3:GetObjectVersion']],
    ['directSubmit', 'UploadUrlRole', ENV.uploadRoleArn, ['s3:PutObject']],
  ] as const;

  for (const [fn, roleName, envName, actions] of cases) {
    it(`${fn} signs as ${roleName}: trusted by that function alone, 1 h sessions, only ${actions.join('/')} on incoming/*`, () => {
      const fnId = logicalId(built.stack, built.stack.functions[fn]);
      const [roleId, role] = Object.entries(resources).find(
        ([id, r]) => r.Type === 'AWS::IAM::Role' && id.startsWith(roleName),
      ) as [string, CfnResourceJson];
      const props = propsOf(role, roleName);
      expect(props.MaxSessionDuration).toBe(3600);
      const trust = (props.AssumeRolePolicyDocument as { Statement: Json[] }).Statement;
      expect(trust).toEqual([
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { AWS: { 'Fn::GetAtt': [roleIdOf(fnId), 'Arn'] } },
        },
      ]);
      const own = roleStatements(resources, roleId);
      expect(own.flatMap(actionsOf).sort()).toEqual([...actions].sort());
      for (const s of own) expect(json(resourcesOf(s))).toMatch(/\/incoming\/\*"\]/);
      // The function may assume exactly this role, and is told its ARN.
      const assume = roleStatements(resources, roleIdOf(fnId)).filter((s) => actionsOf(s).includes('sts:AssumeRole'));
      expect(assume.flatMap(resourcesOf)).toEqual([{ 'Fn::GetAtt': [roleId, 'Arn'] }]);
      expect(envOf(fnId)[envName]).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
    });
  }

  it('warns at synth when the asked URL lifetimes outlive a 1 h session', () => {
    const warnings = Annotations.fromStack(built.stack);
    expect(warnings.findWarning('*', Match.stringLikeRegexp('presignTtlSeconds is 21600 s'))).toHaveLength(1);
    expect(warnings.findWarning('*', Match.stringLikeRegexp('uploadUrlTtlSeconds is 7200 s'))).toHaveLength(1);
  });

  it('outputs everything npm run smoke needs to find the deployment', () => {
    const outputs = Object.keys(Template.fromStack(built.stack).toJSON().Outputs as Record<string, unknown>);
    expect(outputs).toEqual(expect.arrayContaining([...SMOKE_STACK_OUTPUTS]));
  });

  it('passes cdk-nag AwsSolutions', () => {
    expect(nagFindings(built.app, built.stack)).toEqual([]);
  });
});
