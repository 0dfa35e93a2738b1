/**
 * The stack on an existing bucket: no bucket is created, the notification and the
 * grants target the named bucket, and cdk-nag stays clean. One synth for the file.
 */
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { configFromContext } from '../../infra/config';
import { IvaBridgeStack } from '../../infra/stack';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  actionsOf,
  buildStack,
  nagFindings,
  propsOf,
  resourcesOf,
  roleStatements,
  type CfnResourceJson,
} from './helpers';

let built: ReturnType<typeof buildStack>;
let regional: ReturnType<typeof buildStack>;
let resources: Record<string, CfnResourceJson>;

beforeAll(() => {
  built = buildStack({ existingBucketName: 'team-media', apiQuotaPerDay: '0', apiGatewayCloudWatchRole: 'false' });
  resources = Template.fromStack(built.stack).toJSON().Resources as Record<string, CfnResourceJson>;
  regional = buildStack({ existingBucketName: 'team-media', existingBucketRegion: 'eu-west-1' });
  // Two synths, each bundling four functions with esbuild: slow on a loaded 2-core machine.
}, 180_000);

describe('IvaBridgeStack on an existing bucket', () => {
  it('creates no bucket and points the incoming/ notification at the named one', () => {
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::S3::Bucket')).toEqual([]);
    const notification = Object.values(resources).find((r) => r.Type === 'Custom::S3BucketNotifications');
    expect(notification?.Properties?.BucketName).toBe('team-media');
    expect(JSON.stringify(notification?.Properties?.NotificationConfiguration)).toContain('"Value":"incoming/"');
  });

  it('scopes object grants to the named bucket prefixes', () => {
    const fnRoles = Object.values(resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function' && String(r.Properties?.Runtime).startsWith('nodejs'))
      .map((r) => (propsOf(r).Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0]);
    // object-created, direct-submit, result-callback, the sweep, the client-auth and callback authorizers.
    expect(fnRoles).toHaveLength(6);
    const s3Statements = fnRoles.flatMap((role) =>
      roleStatements(resources, role).filter((s) => actionsOf(s).some((a) => a.startsWith('s3:'))),
    );
    const objectStatements = s3Statements.filter((s) => !actionsOf(s).includes('s3:ListBucket'));
    const s3Resources = objectStatements.flatMap(resourcesOf);
    expect(s3Resources.length).toBeGreaterThanOrEqual(3);
    for (const r of s3Resources)
      expect(JSON.stringify(r)).toMatch(/:s3:::team-media\/(incoming|pinned|results|callbacks-inbox)\/\*"/);
    // API Gateway's own role for the callback inbox: PutObject under callbacks-inbox/ of the named bucket only.
    const gatewayRoles = Object.entries(resources).filter(
      ([, r]) =>
        r.Type === 'AWS::IAM::Role' &&
        JSON.stringify(r.Properties?.AssumeRolePolicyDocument).includes('apigateway.amazonaws.com') &&
        JSON.stringify(r.Properties?.Description ?? '').includes('callbacks-inbox'),
    );
    expect(gatewayRoles).toHaveLength(1);
    const inboxStatements = roleStatements(resources, gatewayRoles[0]![0]);
    expect(inboxStatements.flatMap(actionsOf)).toEqual(['s3:PutObject']);
    expect(JSON.stringify(inboxStatements.flatMap(resourcesOf))).toMatch(/:s3:::team-media\/callbacks-inbox\/\*"/);
    // Listing is on the bucket, limited to a prefix: results/ (GET /v1/submissions/{id}/results)
    // and incoming/ (a multipart upload's key, after S3 says NoSuchUpload at completion).
    const lists = s3Statements.filter((s) => actionsOf(s).includes('s3:ListBucket'));
    expect(lists).toHaveLength(2);
    for (const list of lists) {
      expect(actionsOf(list)).toEqual(['s3:ListBucket']);
      expect(JSON.stringify(resourcesOf(list))).toMatch(/:s3:::team-media"/);
    }
    expect(lists.map((l) => l.Condition)).toEqual([
      { StringLike: { 's3:prefix': ['results/*'] } },
      { StringLike: { 's3:prefix': ['incoming/*'] } },
    ]);
  });

  it('omits the quota when it is 0 and the account logging role when disabled', () => {
    const plan = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::UsagePlan');
    expect(plan?.Properties?.Quota).toBeUndefined();
    expect(plan?.Properties?.Throttle).toBeDefined();
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::ApiGateway::Account')).toEqual([]);
  });

  it('warns at synth that the bucket must be in the stack region when its region is not given', () => {
    const warnings = Annotations.fromStack(built.stack).findWarning(
      '*',
      Match.stringLikeRegexp('existingBucketRegion'),
    );
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0]?.entry.data)).toContain("must be in the stack's region");
  });

  it('with existingBucketRegion, a template rule stops a deploy to another region before anything is created', () => {
    const rules = Template.fromStack(regional.stack).toJSON().Rules as Record<string, { Assertions: unknown[] }>;
    expect(
      Object.entries(rules)
        .filter(([id]) => id.startsWith('ExistingBucket'))
        .map(([, r]) => r),
    ).toEqual([
      {
        Assertions: [
          {
            Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'eu-west-1'] },
            AssertDescription: expect.stringContaining('deploy this stack to eu-west-1'),
          },
        ],
      },
    ]);
    expect(
      Annotations.fromStack(regional.stack).findWarning('*', Match.stringLikeRegexp('existingBucketRegion')),
    ).toHaveLength(0);
  });

  it('fails synth with a clear message when the stack region is known and differs', () => {
    const app = new App({ context: { existingBucketName: 'team-media', existingBucketRegion: 'eu-west-1' } });
    expect(
      () => new IvaBridgeStack(app, 'Elsewhere', { ...configFromContext(app.node), env: { region: 'us-east-1' } }),
    ).toThrow(/existingBucketRegion.*eu-west-1.*us-east-1/);
  });

  it('passes cdk-nag AwsSolutions', () => {
    expect(nagFindings(built.app, built.stack)).toEqual([]);
  });
});
