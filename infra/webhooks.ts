/**
 * Webhooks for systems outside AWS (`-c resultWebhookUrl=https://…`): result, overdue,
 * expired and uncertain events go to that URL through an EventBridge API destination, so
 * AWS does the delivery (retries with backoff for up to 24 h, a rate limit, a dead-letter
 * queue for what still failed) and no function of ours loops over HTTP.
 *
 * The receiver authenticates each POST by one header (lib/webhook: WEBHOOK_SECRET_HEADER)
 * whose value is a generated secret in Secrets Manager (`WebhookSecretArn` output); the
 * EventBridge connection keeps its own copy, also in Secrets Manager. To rotate: put a new
 * value in the secret and redeploy (the connection reads it at deploy time).
 */
import { CfnOutput, Duration, RemovalPolicy, SecretValue } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { WEBHOOK_DETAIL_TYPES, WEBHOOK_EVENT_SOURCE, WEBHOOK_SECRET_HEADER } from '../lib/webhook/index';

export interface WebhookProps {
  url: string;
  /** The bus the functions publish on (name or ARN). */
  eventBus: events.IEventBus;
  /** Deliveries per second at most (EventBridge API destination rate limit). */
  rateLimitPerSecond: number;
}

export class ResultWebhook extends Construct {
  readonly secret: secretsmanager.Secret;
  readonly deadLetterQueue: sqs.Queue;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: WebhookProps) {
    super(scope, id);
    this.secret = new secretsmanager.Secret(this, 'Secret', {
      description: `Value of the ${WEBHOOK_SECRET_HEADER} header on every iva-bridge webhook POST.`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const connection = new events.Connection(this, 'Connection', {
      description: 'iva-bridge result webhook: authenticates with a header secret',
      authorization: events.Authorization.apiKey(
        WEBHOOK_SECRET_HEADER,
        SecretValue.secretsManager(this.secret.secretArn),
      ),
    });
    const destination = new events.ApiDestination(this, 'Destination', {
      connection,
      endpoint: props.url,
      httpMethod: events.HttpMethod.POST,
      rateLimitPerSecond: props.rateLimitPerSecond,
      description: 'iva-bridge result webhook',
    });
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.rule = new events.Rule(this, 'Rule', {
      description: 'iva-bridge: result, overdue, expired and uncertain events to the webhook',
      eventBus: props.eventBus,
      eventPattern: { source: [WEBHOOK_EVENT_SOURCE], detailType: [...WEBHOOK_DETAIL_TYPES] },
      targets: [
        new targets.ApiDestination(destination, {
          // The event itself is the payload (lib/webhook): no input transformer.
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
    new CfnOutput(scope, 'WebhookSecretArn', {
      value: this.secret.secretArn,
      description: `Secret whose value arrives in the ${WEBHOOK_SECRET_HEADER} header of every webhook POST`,
    });
  }

  /** Messages that EventBridge gave up delivering (an alarm on it belongs on the dashboard). */
  failedDeliveries(): cloudwatch.IMetric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) });
  }
}
