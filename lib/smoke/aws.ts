/**
 * The smoke run's target when it is a deployed stack: found by stack name through
 * CloudFormation outputs, with the caller's own AWS credentials (the usual chain:
 * AWS_PROFILE, environment, SSO, ...). Result events are captured through a temporary
 * EventBridge rule and SQS queue that it creates and removes again.
 */
import { APIGatewayClient, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  DeleteRuleCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import type { EventCapture, ResultEvent, SmokeTarget } from './run';
import { createClientKeyStore } from '../client-auth/keys';

/** The stack outputs the smoke run needs (infra/stack.ts). */
export const SMOKE_STACK_OUTPUTS = [
  'ApiUrl',
  'ApiKeyId',
  'BucketName',
  'CallbackSecretArn',
  'EventBusName',
  'ClientKeyPrefix',
] as const;

/** Which IVA a deployed stack calls: its `IvaMode` output (`-c ivaMode=…`); a stack from before the output is `vendor`. */
export function ivaModeOf(outputs: Record<string, string | undefined>): 'sandbox' | 'vendor' {
  return outputs.IvaMode === 'sandbox' ? 'sandbox' : 'vendor';
}

export async function stackOutputs(
  stackName: string,
  cfn: Pick<CloudFormationClient, 'send'> = new CloudFormationClient({}),
): Promise<Record<(typeof SMOKE_STACK_OUTPUTS)[number], string> & Record<string, string | undefined>> {
  const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs = Object.fromEntries(
    (out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
  );
  const missing = SMOKE_STACK_OUTPUTS.filter((k) => !outputs[k]);
  if (missing.length > 0)
    throw new Error(`Stack ${stackName} has no output ${missing.join(', ')}: deploy the current infra/stack.ts first`);
  return outputs as Record<(typeof SMOKE_STACK_OUTPUTS)[number], string> & Record<string, string | undefined>;
}

/** The current callback secret: the plain value, or `current` while a rotation keeps both. */
export function currentCallbackSecret(raw: string): string {
  if (raw.trim().startsWith('{')) {
    const parsed = JSON.parse(raw) as { current?: unknown };
    if (typeof parsed.current === 'string') return parsed.current;
  }
  return raw.trim();
}

export async function awsTarget(stackName: string): Promise<SmokeTarget> {
  const outputs = await stackOutputs(stackName);
  const key = await new APIGatewayClient({}).send(
    new GetApiKeyCommand({ apiKey: outputs.ApiKeyId, includeValue: true }),
  );
  if (!key.value) throw new Error(`API key ${outputs.ApiKeyId} has no readable value`);
  const sm = new SecretsManagerClient({});
  const secret = await sm.send(new GetSecretValueCommand({ SecretId: outputs.CallbackSecretArn }));
  // A client key for this run only (counted on the default usage plan key), revoked at the end.
  const keys = createClientKeyStore(sm, outputs.ClientKeyPrefix);
  const runKey = await keys.issue(`smoke-${randomBytes(3).toString('hex')}`, key.value);
  const apiUrl = outputs.ApiUrl.replace(/\/$/, '');
  const ivaMode = ivaModeOf(outputs);
  return {
    name: `aws:${stackName}`,
    ivaMode,
    ...(outputs.IvaSandboxUrl ? { ivaEndpoint: outputs.IvaSandboxUrl } : {}),
    apiUrl,
    apiKey: key.value,
    credentials: { accessKeyId: runKey.accessKeyId, secretAccessKey: runKey.secretAccessKey },
    close: async () => {
      await keys.revoke(runKey.accessKeyId);
      sm.destroy();
    },
    callbackUrl: `${apiUrl}/callbacks/${currentCallbackSecret(secret.SecretString ?? '')}`,
    bucket: outputs.BucketName,
    s3: new S3Client({}),
    captureEvents: () => captureWithTemporaryRule(outputs.EventBusName),
  };
}

/** A rule `{"source":["iva-bridge"]}` on the bus → a fresh queue; both removed by stop(). */
async function captureWithTemporaryRule(eventBusName: string): Promise<EventCapture> {
  const events = new EventBridgeClient({});
  const sqs = new SQSClient({});
  const name = `iva-bridge-smoke-${randomBytes(4).toString('hex')}`;
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const queueUrl = queue.QueueUrl as string;
  const seen: ResultEvent[] = [];
  let ruleCreated = false;
  const stop = async () => {
    if (ruleCreated) {
      await events.send(new RemoveTargetsCommand({ Rule: name, EventBusName: eventBusName, Ids: ['smoke'] }));
      await events.send(new DeleteRuleCommand({ Name: name, EventBusName: eventBusName }));
    }
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
  };
  try {
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    const queueArn = attrs.Attributes?.QueueArn as string;
    const rule = await events.send(
      new PutRuleCommand({
        Name: name,
        EventBusName: eventBusName,
        EventPattern: JSON.stringify({ source: ['iva-bridge'] }),
        Description: 'iva-bridge smoke run: temporary, removed when the run ends',
      }),
    );
    ruleCreated = true;
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: queueUrl,
        Attributes: {
          Policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Principal: { Service: 'events.amazonaws.com' },
                Action: 'sqs:SendMessage',
                Resource: queueArn,
                Condition: { ArnEquals: { 'aws:SourceArn': rule.RuleArn } },
              },
            ],
          }),
        },
      }),
    );
    await events.send(
      new PutTargetsCommand({ Rule: name, EventBusName: eventBusName, Targets: [{ Id: 'smoke', Arn: queueArn }] }),
    );
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return {
    async events() {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      for (const m of out.Messages ?? []) {
        const e = JSON.parse(m.Body ?? '{}') as {
          source?: string;
          'detail-type'?: string;
          detail?: Record<string, unknown>;
        };
        seen.push({ source: e.source ?? '', detailType: e['detail-type'] ?? '', detail: e.detail ?? {} });
      }
      if (out.Messages?.length) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: out.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
          }),
        );
      }
      return seen;
    },
    stop,
  };
}
