/**
 * `npm start` runs what `cdk synth` produces: this test synthesizes infra/stack.ts itself,
 * starts the local stack, and compares the two. Every API method of the template answers
 * locally with the template's authentication (API key, authorizer) and reaches the
 * template's function; unknown routes and methods get the template's gateway answer byte
 * for byte; every function runs with the template's environment names, timeout and
 * memory; queue, event source, notification filter and schedule are the template's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../support/e2e';
import { FunctionHost } from '../../../local/stack/function-host';
import { signingFetch } from '../../../lib/client/signing';
import { LOCAL_ENVIRONMENT, type LocalStack, startLocalStack } from '../../../local/stack/index';
import {
  type CfnTemplate,
  type LocalTemplate,
  NOT_DERIVED,
  parseTemplate,
  synthesizeTemplate,
} from '../../../local/stack/template';

let synthesized: CfnTemplate;
let template: LocalTemplate;
let stack: LocalStack;

beforeAll(async () => {
  synthesized = await synthesizeTemplate();
  template = parseTemplate(synthesized);
  stack = await startLocalStack({ log: () => undefined, sandbox: { callbackDelayMs: 600_000 } });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

const invocations = (key: string): number => {
  const run = stack.functions[key]?.run;
  return run instanceof FunctionHost ? run.stats.invocations : Number.NaN;
};

/** A concrete path for a resource template (`{id}` → `x-id`). */
const pathOf = (resource: string): string => resource.replace(/\{(\w+)\}/g, 'x-$1').replace(/^\//, '');

async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  signedBy?: { accessKeyId: string; secretAccessKey: string },
): Promise<Response> {
  const init: RequestInit = {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{}' }),
  };
  return signedBy ? signingFetch(signedBy)(`${stack.apiUrl}${path}`, init) : fetch(`${stack.apiUrl}${path}`, init);
}

/** The template's own answer for a response type, as API Gateway renders it for this request. */
function expectedGatewayAnswer(type: string, res: Response): { status: number; body: string } {
  const cfn = Object.values(synthesized.Resources).find(
    (r) => r.Type === 'AWS::ApiGateway::GatewayResponse' && r.Properties?.ResponseType === type,
  );
  const props = cfn?.Properties as { StatusCode: string; ResponseTemplates: Record<string, string> };
  const requestId = res.headers.get('x-amzn-requestid') ?? '';
  return {
    status: Number(props.StatusCode),
    body: props.ResponseTemplates['application/json']!.replace('$context.requestId', requestId),
  };
}

describe('the local stack is the synthesized template', () => {
  it('uses the template it would synthesize now (the cache is current)', () => {
    expect(stack.template.routes).toEqual(template.routes);
    expect(stack.template.functions).toEqual(template.functions);
    expect(stack.template.gatewayResponses).toEqual(template.gatewayResponses);
    expect(template.routes.length).toBeGreaterThanOrEqual(12);
    expect(NOT_DERIVED.length).toBeGreaterThan(0);
  });

  it('answers every method of the template with its authentication, and hands it to its function', async () => {
    expect(template.routes.length).toBeGreaterThan(0);
    for (const route of template.routes) {
      const path = pathOf(route.resource);
      const what = `${route.method} ${route.resource}`;
      if (route.s3) {
        // The callback route: its authorizer runs and refuses a wrong secret with the
        // unknown route's answer; the right one is PUT to the inbox (200) and the S3
        // event then runs the inbox pipeline's function.
        const authorizer = route.authorizer?.functionKey ?? '';
        const beforeAuth = invocations(authorizer);
        const wrong = await call(route.method, path);
        const expected = expectedGatewayAnswer('MISSING_AUTHENTICATION_TOKEN', wrong);
        expect(wrong.status, what).toBe(expected.status);
        expect(await wrong.text(), what).toBe(expected.body);
        expect(invocations(authorizer), what).toBe(beforeAuth + 1);
        const consumer = template.pipelines.find((p) => p.notification.prefix === 'callbacks-inbox/')?.eventSource
          .functionKey as string;
        const beforeConsumer = invocations(consumer);
        const right = await call(route.method, stack.callbackUrl.slice(stack.apiUrl.length));
        expect(right.status, what).toBe(200);
        expect(JSON.parse(await right.text()), what).toEqual({
          ok: true,
          inbox: right.headers.get('x-amzn-requestid'),
        });
        await until(`${consumer} ran`, () => (invocations(consumer) > beforeConsumer ? true : undefined));
        continue;
      }
      const target = route.target as string;
      const keys = { accessKeyId: stack.info.clientAccessKeyId, secretAccessKey: stack.info.clientSecretAccessKey };
      if (route.apiKeyRequired) {
        expect(route.authorizer, what).toBeDefined();
        // No authorizer lists an identity source (UNAUTHORIZED is the callback route's
        // 404), so an unsigned request runs client-auth, which denies it MissingSignature
        // through the template's ACCESS_DENIED, API key or not (the key source is the authorizer).
        for (const headers of [{}, { 'x-api-key': stack.apiKey }] as Record<string, string>[]) {
          const before = invocations(target);
          const res = await call(route.method, path, headers);
          expect(res.status, what).toBe(expectedGatewayAnswer('ACCESS_DENIED', res).status);
          expect(
            ((await res.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
            what,
          ).toBe('MissingSignature');
          expect(invocations(target), what).toBe(before);
        }
        // A wrong signature: the authorizer's deny, rendered by the template's ACCESS_DENIED.
        const before = invocations(target);
        const res = await call(route.method, path, {}, { ...keys, secretAccessKey: 'not-the-secret' });
        expect(res.status, what).toBe(expectedGatewayAnswer('ACCESS_DENIED', res).status);
        expect(
          ((await res.json()) as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code,
        ).toBe('SignatureDoesNotMatch');
        expect(invocations(target), what).toBe(before);
      }
      const before = invocations(target);
      const res = await call(route.method, path, {}, route.apiKeyRequired ? keys : undefined);
      await res.arrayBuffer();
      expect(invocations(target), `${what} reached ${target} (answered ${res.status})`).toBe(before + 1);
    }
  });

  it('answers unknown routes and undefined methods with the template gateway answer, byte for byte', async () => {
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
    const cases: [string, string][] = [
      ['GET', 'nope'],
      ['POST', 'v1'],
      ['GET', 'v1/images/extra'],
      ['GET', 'v1/tasks/x/submissions/extra'],
      ['POST', 'callbacks'],
    ];
    for (const route of template.routes)
      for (const method of methods)
        if (!template.routes.some((r) => r.resource === route.resource && r.method === method))
          cases.push([method, pathOf(route.resource)]);
    const before = Object.keys(stack.functions).map(invocations);
    for (const [method, path] of cases) {
      for (const signed of [false, true]) {
        const res = await call(
          method,
          path,
          {},
          signed
            ? { accessKeyId: stack.info.clientAccessKeyId, secretAccessKey: stack.info.clientSecretAccessKey }
            : undefined,
        );
        const expected = expectedGatewayAnswer('MISSING_AUTHENTICATION_TOKEN', res);
        expect(res.status, `${method} /${path}`).toBe(expected.status);
        expect(await res.text(), `${method} /${path}`).toBe(expected.body);
        expect(res.headers.get('x-amzn-errortype')).toBe('RouteNotFound');
      }
    }
    expect(Object.keys(stack.functions).map(invocations)).toEqual(before);
  });

  it("runs every function with the template's environment names, timeout and memory, in its own processes", () => {
    const local = new Set<string>(LOCAL_ENVIRONMENT);
    expect(Object.keys(stack.functions).sort()).toEqual(Object.keys(template.functions).sort());
    for (const fn of Object.values(template.functions)) {
      const running = stack.functions[fn.key]!;
      const names = Object.keys(running.env);
      expect(names.filter((n) => !local.has(n)).sort(), fn.key).toEqual(Object.keys(fn.environment).sort());
      // Literal values are the template's, but where IVA is (NOT_DERIVED).
      for (const [name, value] of Object.entries(fn.environment))
        if (typeof value === 'string' && !name.startsWith('IVA_'))
          expect(running.env[name], `${fn.key} ${name}`).toBe(value);
      expect(running.timeoutMs).toBe(fn.timeoutSeconds * 1000);
      expect(running.memoryMb).toBe(fn.memoryMb);
      expect(running.run).toBeInstanceOf(FunctionHost);
    }
  });

  it('takes the queue, event source, notification filter and schedule from the template', () => {
    expect(stack.queue.settings).toEqual({
      batchSize: template.eventSource.batchSize,
      batchingWindowMs: template.eventSource.maximumBatchingWindowSeconds * 1000,
      visibilityTimeoutMs: template.queue.visibilityTimeoutSeconds * 1000,
      maxReceiveCount: template.queue.maxReceiveCount,
      maxConcurrency: template.eventSource.maximumConcurrency,
    });
    expect(template.notification.prefix).toBe('incoming/');
    // The callback inbox's pipeline, with its own queue settings.
    const inbox = template.pipelines.find((p) => p.notification.prefix === 'callbacks-inbox/');
    expect(inbox?.eventSource.functionKey).toBe('resultCallback');
    expect(stack.pipelineQueues.resultCallback?.settings).toEqual({
      batchSize: inbox?.eventSource.batchSize,
      batchingWindowMs: (inbox?.eventSource.maximumBatchingWindowSeconds ?? -1) * 1000,
      visibilityTimeoutMs: (inbox?.queue.visibilityTimeoutSeconds ?? -1) * 1000,
      maxReceiveCount: inbox?.queue.maxReceiveCount,
      maxConcurrency: 4,
    });
    expect(template.pipelines).toHaveLength(2);
    expect(template.sweep.functionKey).toBe('sweep');
    expect(template.sweep.intervalMs).toBe(15 * 60 * 1000);
    expect(stack.functions.sweep!.run).toBeInstanceOf(FunctionHost);
    expect((stack.functions.sweep!.run as FunctionHost).options.maxConcurrency).toBe(
      template.functions.sweep!.reservedConcurrency,
    );
  });
});
