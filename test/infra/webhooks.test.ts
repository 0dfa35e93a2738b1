/**
 * `-c resultWebhookUrl=…`: an EventBridge API destination delivers the documented events,
 * authenticated by a header secret kept in Secrets Manager, with AWS's retries and a DLQ;
 * cdk-nag stays clean. Without the setting nothing of it is synthesized.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { configFromContext } from '../../infra/config';
import { RESULT_STORED_DETAIL_TYPE, SUBMISSION_UNCERTAIN_DETAIL_TYPE } from '../../lib/callback/events';
import { RESULT_OVERDUE_DETAIL_TYPE, UPLOAD_EXPIRED_DETAIL_TYPE } from '../../lib/sweep/index';
import { WEBHOOK_DETAIL_TYPES, WEBHOOK_SECRET_HEADER } from '../../lib/webhook/index';
import { buildStack, nagFindings, type CfnResourceJson } from './helpers';

const URL_ = 'https://hooks.example.com/iva?team=media';
let built: ReturnType<typeof buildStack>;
let resources: Record<string, CfnResourceJson>;

beforeAll(() => {
  built = buildStack({ resultWebhookUrl: URL_, webhookRateLimit: '5' });
  resources = Template.fromStack(built.stack).toJSON().Resources as Record<string, CfnResourceJson>;
}, 180_000);

const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);

describe('result webhook', () => {
  it('names exactly the events the functions publish', () => {
    expect([...WEBHOOK_DETAIL_TYPES].sort()).toEqual(
      [
        RESULT_STORED_DETAIL_TYPE,
        RESULT_OVERDUE_DETAIL_TYPE,
        UPLOAD_EXPIRED_DETAIL_TYPE,
        SUBMISSION_UNCERTAIN_DETAIL_TYPE,
      ].sort(),
    );
  });

  it('delivers them through an API destination with a header secret from Secrets Manager', () => {
    const [connection] = ofType('AWS::Events::Connection');
    expect(connection?.Properties).toMatchObject({
      AuthorizationType: 'API_KEY',
      AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: WEBHOOK_SECRET_HEADER } },
    });
    // The value is a dynamic reference to the generated secret, never a literal.
    expect(JSON.stringify(connection?.Properties)).toMatch(/resolve:secretsmanager/);
    const [destination] = ofType('AWS::Events::ApiDestination');
    expect(destination?.Properties).toMatchObject({
      InvocationEndpoint: URL_,
      HttpMethod: 'POST',
      InvocationRateLimitPerSecond: 5,
    });
    const rule = ofType('AWS::Events::Rule').find((r) => JSON.stringify(r.Properties).includes('IVA Result Stored'));
    expect(rule?.Properties?.EventPattern).toEqual({
      source: ['iva-bridge'],
      'detail-type': [...WEBHOOK_DETAIL_TYPES],
    });
    const [target] = (rule?.Properties?.Targets ?? []) as Array<Record<string, unknown>>;
    expect(target).toMatchObject({ RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 } });
    expect(target?.DeadLetterConfig).toBeDefined();
    expect(target?.InputTransformer).toBeUndefined();
  });

  it('refuses a webhook URL that is not https', () => {
    for (const url of ['http://hooks.example.com/x', 'hooks.example.com', 'https://', 'https://a b'])
      expect(() => configFromContext({ tryGetContext: (k) => (k === 'resultWebhookUrl' ? url : undefined) })).toThrow(
        /resultWebhookUrl/,
      );
  });

  it('passes cdk-nag', () => {
    expect(nagFindings(built.app, built.stack)).toEqual([]);
  });

  it('adds nothing without the setting', () => {
    const plain = Template.fromStack(buildStack({}).stack).toJSON().Resources as Record<string, CfnResourceJson>;
    expect(Object.values(plain).filter((r) => r.Type.startsWith('AWS::Events::Connection'))).toEqual([]);
    expect(Object.values(plain).filter((r) => r.Type === 'AWS::Events::ApiDestination')).toEqual([]);
  }, 180_000);
});
