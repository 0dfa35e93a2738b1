/**
 * CDK entry point (`cdk.json`: `npx tsx infra/app.ts`). Settings come from CDK context
 * (see infra/config.ts); cdk-nag's AwsSolutions pack runs on every synth, and an
 * unsuppressed finding of error level fails `cdk synth` / `cdk deploy`.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext } from './config';
import { IvaBridgeStack } from './stack';

const app = new App();
const stackName = (app.node.tryGetContext('stackName') as string | undefined) || 'IvaBridge';

// No env: the stack is environment-agnostic, so `cdk synth` needs no AWS account and
// `cdk deploy` targets the account and region of the caller's credentials.
new IvaBridgeStack(app, stackName, {
  ...configFromContext(app.node),
  description: 'iva-bridge: S3 / HTTPS submissions to Volcengine IVA, results by callback',
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
