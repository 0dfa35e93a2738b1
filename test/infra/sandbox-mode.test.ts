/**
 * `-c ivaMode=sandbox`: the IVA sandbox deployed in the stack (function URL, generated
 * key pair, callbacks through a delayed queue and a sender) and every IVA caller pointed
 * at it. The vendor-mode side (none of this exists) is asserted in stack.test.ts.
 */
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lib/config';
import {
  FUNCTION_SPECS,
  type IvaBridgeStack,
  SANDBOX_ACCESS_KEY_ID,
  SANDBOX_CALLBACK_ATTEMPTS,
  SANDBOX_CALLBACK_DELAY_SECONDS,
} from '../../infra/stack';
import {
  acknowledgements,
  actionsOf,
  buildStack,
  type CfnResourceJson,
  type Json,
  logicalId,
  nagFindings,
  propsOf,
  resourcesOf,
  roleStatements,
} from './helpers';

let app: ReturnType<typeof buildStack>['app'];
let stack: IvaBridgeStack;
let template: Template;
let resources: Record<string, CfnResourceJson>;
const json = (value: unknown) => JSON.stringify(value);

beforeAll(() => {
  ({ app, stack } = buildStack({ ivaMode: 'sandbox' }));
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, CfnResourceJson>;
}, 180_000);

const sandbox = () => {
  if (!stack.sandbox) throw new Error('no sandbox in a sandbox-mode stack');
  return stack.sandbox;
};
const envOf = (fn: Parameters<typeof logicalId>[1]) =>
  (propsOf(resources[logicalId(stack, fn)]).Environment as { Variables: Json }).Variables;
const roleOf = (fn: Parameters<typeof logicalId>[1]) =>
  (propsOf(resources[logicalId(stack, fn)]).Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];

describe('sandbox mode', () => {
  it('serves the sandbox from a function URL (no AWS auth: the Volcengine signature is the credential)', () => {
    const fnId = logicalId(stack, sandbox().fn);
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      TargetFunctionArn: { 'Fn::GetAtt': [fnId, 'Arn'] },
    });
    // A public function URL needs both permissions (lambda:InvokeFunction only through the URL).
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunctionUrl',
      FunctionUrlAuthType: 'NONE',
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      InvokedViaFunctionUrl: true,
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
    });
    const fn = propsOf(resources[fnId]);
    expect(fn.MemorySize).toBe(FUNCTION_SPECS.ivaSandbox.memorySize);
    expect(fn.Timeout).toBe(FUNCTION_SPECS.ivaSandbox.timeoutSeconds);
  });

  it('points object-created and direct-submit at the sandbox, signing with the generated key pair', () => {
    const urlId = logicalId(stack, sandbox().url);
    const secretId = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::SecretsManager::Secret' && id.startsWith('IvaSandboxCredentials'),
    )?.[0];
    expect(secretId).toBeDefined();
    for (const fn of [stack.functions.objectCreated, stack.functions.directSubmit]) {
      const env = envOf(fn);
      expect(env[ENV.ivaEndpoint]).toEqual({ 'Fn::GetAtt': [urlId, 'FunctionUrl'] });
      expect(env[ENV.volcSecretArn]).toEqual({ Ref: secretId });
      // Each reads that secret, not the Volcengine one.
      const reads = roleStatements(resources, roleOf(fn)).filter((s) =>
        actionsOf(s).includes('secretsmanager:GetSecretValue'),
      );
      expect(reads.flatMap(resourcesOf)).toEqual([{ Ref: secretId }]);
    }
    // The sandbox verifies with the same secret and reads nothing else.
    expect(envOf(sandbox().fn)[ENV.volcSecretArn]).toEqual({ Ref: secretId });
  });

  it('generates the sandbox key pair at deploy time: no secret key in the template', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: {
        SecretStringTemplate: json({ accessKeyId: SANDBOX_ACCESS_KEY_ID }),
        GenerateStringKey: 'secretAccessKey',
        PasswordLength: 40,
      },
    });
    expect(json(template.toJSON())).not.toMatch(/"secretAccessKey"\s*:\s*"/);
    const secrets = Object.values(resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret');
    for (const s of secrets) expect(s.Properties?.SecretString).toBeUndefined();
  });

  it('queues callbacks with a delay and retries them into a DLQ; the sender posts them with partial failures', () => {
    const { queue, deadLetterQueue, callbacks } = sandbox();
    const queueProps = propsOf(resources[logicalId(stack, queue)]);
    expect(queueProps.DelaySeconds).toBe(SANDBOX_CALLBACK_DELAY_SECONDS);
    expect(queueProps.SqsManagedSseEnabled).toBe(true);
    expect(queueProps.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(stack, deadLetterQueue), 'Arn'] },
      maxReceiveCount: SANDBOX_CALLBACK_ATTEMPTS,
    });
    expect(queueProps.VisibilityTimeout).toBeGreaterThanOrEqual(6 * FUNCTION_SPECS.ivaSandboxCallbacks.timeoutSeconds);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(stack, callbacks) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack, queue), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // The sandbox may only send to that queue; the sender builds the URL from the API and the callback secret.
    const sends = roleStatements(resources, roleOf(sandbox().fn)).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('sqs:')),
    );
    expect(sends.map(actionsOf)).toEqual([['sqs:SendMessage']]);
    expect(sends.flatMap(resourcesOf)).toEqual([{ 'Fn::GetAtt': [logicalId(stack, queue), 'Arn'] }]);
    const senderEnv = envOf(callbacks);
    expect(json(senderEnv[ENV.callbackBaseUrl])).toContain(logicalId(stack, stack.api));
    expect(json(senderEnv[ENV.callbackBaseUrl])).toContain('callbacks/');
    const secretReads = roleStatements(resources, roleOf(callbacks)).filter((s) =>
      actionsOf(s).includes('secretsmanager:GetSecretValue'),
    );
    expect(json(secretReads.flatMap(resourcesOf))).toContain('CallbackSecret');
    expect(secretReads.flatMap(resourcesOf)).toHaveLength(1);
  });

  it('leaves nothing behind on cdk destroy: every sandbox resource is deleted with the stack', () => {
    const all = template.toJSON().Resources as Record<string, { DeletionPolicy?: string }>;
    const sandboxIds = Object.keys(all).filter((id) => id.startsWith('IvaSandbox'));
    expect(sandboxIds.length).toBeGreaterThanOrEqual(8);
    for (const id of sandboxIds) expect(all[id]?.DeletionPolicy ?? 'Delete', id).toBe('Delete');
  });

  it('outputs the mode and the sandbox URL for npm run smoke', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.IvaMode?.Value).toBe('sandbox');
    expect(outputs.IvaSandboxUrl?.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack, sandbox().url), 'FunctionUrl'] });
  });

  it('passes cdk-nag AwsSolutions with no unacknowledged finding, each acknowledgement with a reason', () => {
    expect(nagFindings(app, stack)).toEqual([]);
    for (const ack of acknowledgements(stack)) {
      expect(ack.id, ack.path).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(40);
    }
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });
});
