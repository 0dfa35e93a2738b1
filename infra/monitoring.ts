/**
 * The operators' dashboard and the alarms, from one place: cdk-monitoring-constructs'
 * MonitoringFacade. Its per-resource monitors give each function's errors, duration,
 * throttles and invocations, the API's 4xx/5xx and latency, and the queues' backlog and
 * DLQ depth; the custom groups show the pipeline's own metrics, by the names the code
 * emits (lib/observability.ts METRIC: Powertools, namespace IvaBridge, dimension
 * `service`), so a renamed metric fails the dashboard test rather than showing nothing.
 */
import { Duration, type Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import {
  type CustomMetricGroup,
  DefaultDashboardFactory,
  GraphWidgetType,
  MetricStatistic,
  MonitoringFacade,
  noopAction,
  SnsAlarmActionStrategy,
} from 'cdk-monitoring-constructs';
import { FAILURE_CODE_DIMENSION, METRIC } from '../lib/observability';

/** Where the functions' Powertools metrics go (infra/stack.ts sets it as POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'IvaBridge';
/** Powertools' default dimension: POWERTOOLS_SERVICE_NAME of the pipeline's functions. */
export const SERVICE_NAME = 'iva-bridge';
/** Counted from the API's access log (a REST API has no throttle metric of its own). */
export const API_THROTTLED_METRIC = 'ApiThrottled';

export interface MonitoringTargets {
  functions: Record<string, lambda.IFunction>;
  /** Functions that alarm on any error (a failing one loses or delays submissions). */
  alarmOnErrors: readonly string[];
  api: apigw.RestApi;
  /** The IAM (SigV4) API, when built: its 4xx (refused signatures and principals among them), 5xx and latency. */
  iamApi?: apigw.RestApi;
  stageName: string;
  accessLogs: logs.ILogGroup;
  queue: sqs.IQueue;
  deadLetterQueue: sqs.IQueue;
  /** S3 events of callback bodies waiting in callbacks-inbox/, and their DLQ. */
  callbackInbox: { queue: sqs.IQueue; deadLetterQueue: sqs.IQueue };
  /** Sandbox mode: the sandbox's callback queue and its DLQ. */
  sandboxQueue?: { queue: sqs.IQueue; deadLetterQueue: sqs.IQueue };
  alarmTopic?: sns.ITopic;
}

export function addMonitoring(stack: Stack, targets: MonitoringTargets): MonitoringFacade {
  const facade = new MonitoringFacade(stack, 'Monitoring', {
    alarmFactoryDefaults: {
      // Alarm names are `<stack>-<resource>-<alarm>`: two stacks in one account never collide.
      alarmNamePrefix: stack.stackName,
      actionsEnabled: true,
      action: targets.alarmTopic ? new SnsAlarmActionStrategy({ onAlarmTopic: targets.alarmTopic }) : noopAction(),
      datapointsToAlarm: 1,
      evaluationPeriods: 1,
    },
    metricFactoryDefaults: { namespace: METRICS_NAMESPACE, period: Duration.minutes(5) },
    // Dashboard names are unique per account: the stack's name (IvaBridge), not a fixed one.
    dashboardFactory: new DefaultDashboardFactory(stack, 'Dashboards', {
      dashboardNamePrefix: stack.stackName,
      createDashboard: true,
    }),
  });

  const custom = (name: string, label: string, statistic = MetricStatistic.SUM) =>
    new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: SERVICE_NAME },
      statistic,
      label,
      period: Duration.minutes(5),
    });

  // A REST API counts throttled requests only as 4XXError; the access log has the status.
  new logs.MetricFilter(stack, 'ApiThrottledFilter', {
    logGroup: targets.accessLogs,
    filterPattern: logs.FilterPattern.numberValue('$.status', '=', 429),
    metricNamespace: METRICS_NAMESPACE,
    metricName: API_THROTTLED_METRIC,
    metricValue: '1',
    defaultValue: 0,
  });

  facade.addLargeHeader('iva-bridge: submissions, results, API, queues, functions');
  const groups: CustomMetricGroup[] = [
    {
      title: 'Submissions',
      metrics: [
        custom(METRIC.submitted, 'accepted by IVA'),
        custom(METRIC.failed, 'failed'),
        custom(METRIC.retried, 'IVA calls retried'),
        custom(METRIC.duplicate, 'duplicate S3 deliveries'),
      ],
    },
    {
      title: 'Failures by code',
      metrics: [
        {
          searchQuery: `MetricName="${METRIC.failedByCode}"`,
          namespace: METRICS_NAMESPACE,
          dimensionsMap: { service: SERVICE_NAME, [FAILURE_CODE_DIMENSION]: undefined as unknown as string },
          statistic: MetricStatistic.SUM,
          label: `\${PROP('Dim.${FAILURE_CODE_DIMENSION}')}`,
        },
      ],
    },
    {
      title: 'Ambiguous (uncertain) and overdue',
      metrics: [
        custom(METRIC.uncertain, 'uncertain: IVA may have it'),
        custom(METRIC.overdue, 'overdue: no final result in time'),
        custom(METRIC.uploadsExpired, 'upload URLs expired unused'),
      ],
    },
    {
      title: 'Time from submission to result',
      graphWidgetAxis: { label: 'ms', min: 0 },
      metrics: [
        custom(METRIC.submissionToResult, 'p50', MetricStatistic.P50),
        custom(METRIC.submissionToResult, 'p90', MetricStatistic.P90),
        custom(METRIC.submissionToResult, 'max', MetricStatistic.MAX),
      ],
    },
    {
      title: 'Callbacks',
      metrics: [
        custom(METRIC.callbacksReceived, 'received'),
        custom(METRIC.resultsStored, 'bodies stored'),
        custom(METRIC.callbacksUnmatched, 'unmatched'),
        custom(METRIC.callbacksRejected, 'rejected (4xx)'),
      ],
    },
    {
      title: 'API throttled requests (429)',
      graphWidgetType: GraphWidgetType.BAR,
      metrics: [
        new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName: API_THROTTLED_METRIC,
          statistic: MetricStatistic.SUM,
          label: 'throttled (429)',
          period: Duration.minutes(5),
        }),
      ],
    },
  ];
  facade.monitorCustom({ alarmFriendlyName: 'Pipeline', humanReadableName: 'Pipeline', metricGroups: groups });

  facade.monitorApiGateway({ api: targets.api, apiStage: targets.stageName, alarmFriendlyName: 'Api' });
  if (targets.iamApi)
    facade.monitorApiGateway({ api: targets.iamApi, apiStage: targets.stageName, alarmFriendlyName: 'IamApi' });
  facade.monitorSqsQueueWithDlq({
    queue: targets.queue,
    deadLetterQueue: targets.deadLetterQueue,
    alarmFriendlyName: 'ObjectCreatedQueue',
    humanReadableName: 'S3 events (object-created queue) and their DLQ',
    // Any message in the DLQ is an upload that failed maxReceiveCount times (README: redrive).
    addDeadLetterQueueMaxSizeAlarm: { Critical: { maxMessageCount: 0 } },
  });
  facade.monitorSqsQueueWithDlq({
    queue: targets.callbackInbox.queue,
    deadLetterQueue: targets.callbackInbox.deadLetterQueue,
    alarmFriendlyName: 'CallbackInboxQueue',
    humanReadableName: 'Callback bodies in callbacks-inbox/ (result-callback queue) and their DLQ',
    // A message there is a callback body still in callbacks-inbox/ that failed to be filed
    // CALLBACK_INBOX_MAX_RECEIVES times (README: redrive); the body itself is kept.
    addDeadLetterQueueMaxSizeAlarm: { Critical: { maxMessageCount: 0 } },
  });
  if (targets.sandboxQueue) {
    facade.monitorSqsQueueWithDlq({
      queue: targets.sandboxQueue.queue,
      deadLetterQueue: targets.sandboxQueue.deadLetterQueue,
      alarmFriendlyName: 'IvaSandboxCallbackQueue',
      humanReadableName: 'Sandbox callbacks and their DLQ',
    });
  }
  for (const [name, fn] of Object.entries(targets.functions)) {
    facade.monitorLambdaFunction({
      lambdaFunction: fn,
      alarmFriendlyName: name,
      humanReadableName: name,
      ...(targets.alarmOnErrors.includes(name) ? { addFaultCountAlarm: { Critical: { maxErrorCount: 0 } } } : {}),
    });
  }
  // Concurrency per function: the Lambda monitor shows invocations, not instances.
  facade.monitorCustom({
    alarmFriendlyName: 'Concurrency',
    humanReadableName: 'Concurrent executions per function',
    metricGroups: [
      {
        title: 'Concurrent executions',
        metrics: Object.entries(targets.functions).map(([name, fn]) =>
          fn.metric('ConcurrentExecutions', {
            statistic: MetricStatistic.MAX,
            label: name,
            period: Duration.minutes(1),
          }),
        ),
      },
    ],
  });
  return facade;
}
