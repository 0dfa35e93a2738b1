/**
 * docs/openapi.json: a valid OpenAPI 3.1 document (the OpenAPI Initiative's JSON schema,
 * through @seriousme/openapi-schema-validator), naming every route of the synthesized
 * template and every error code the API, the gateway responses and the callback route
 * answer. The e2e suites validate the stack's answers against it (test/support/openapi.ts).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_ERRORS } from '../../lib/api/errors';
import { AUTH_ERROR_CODES } from '../../lib/client-auth/verify';
import * as callbackErrors from '../../lib/callback/errors';
import { ROUTES } from '../../lib/api/routes';
import { type CfnTemplate, parseTemplate, synthesizeTemplate } from '../../local/stack/template';
import { loadOpenApi, pathTemplateOf, responseChecker } from '../support/openapi';

const doc = loadOpenApi();
const schemas = doc.components.schemas as Record<string, { enum?: string[] }>;

let synthesized: CfnTemplate;
beforeAll(async () => {
  synthesized = await synthesizeTemplate();
}, 120_000);

describe('docs/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('the validator refuses a broken document (the test above can fail)', async () => {
    const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, unknown>> };
    (broken.paths['/v1/images']!['post'] as Record<string, unknown>)['responses'] = 'none';
    expect((await new Validator().validate(broken as unknown as Parameters<Validator['validate']>[0])).valid).toBe(
      false,
    );
  });

  it('has every method of the synthesized template, and nothing else', () => {
    const routes = parseTemplate(synthesized)
      .routes.map((r) => `${r.method} ${r.resource}`)
      .sort();
    expect(routes.length).toBe(ROUTES.length);
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(routes);
  });

  it("has every method of the template's IAM API (AWS_IAM) on a documented path, with the IamSignature scheme and server", () => {
    const iam = parseTemplate(synthesized).iamApi;
    if (!iam) throw new Error('the default synthesis builds the IAM API');
    expect(iam.routes.length).toBe(ROUTES.filter((r) => r.apiKeyRequired).length);
    for (const route of iam.routes) {
      expect(route.authorizationType).toBe('AWS_IAM');
      const op = doc.paths[route.resource]?.[route.method.toLowerCase()] as
        | { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }
        | undefined;
      expect(op, `${route.method} ${route.resource}`).toBeDefined();
      expect(JSON.stringify(op?.responses['403']), route.resource).toContain('AwsGatewayError');
    }
    const schemes = (doc.components as { securitySchemes?: Record<string, Record<string, unknown>> }).securitySchemes;
    expect(schemes?.['IamSignature']?.['x-amazon-apigateway-authtype']).toBe('awsSigv4');
    const servers = (doc as unknown as { servers: { url: string }[] }).servers.map((s) => s.url);
    expect(servers).toEqual(['{ApiUrl}', '{IamApiUrl}']);
  });

  it('names every error code of lib/api/errors.ts and of the gateway responses', () => {
    const codes = new Set(schemas['ErrorCode']?.enum);
    for (const code of Object.keys(API_ERRORS)) expect(codes, code).toContain(code);
    const gateway = Object.values(synthesized.Resources)
      .filter((r) => r.Type === 'AWS::ApiGateway::GatewayResponse')
      .map(
        (r) => (r.Properties as { ResponseTemplates: Record<string, string> }).ResponseTemplates['application/json']!,
      )
      .map((t) => /"Code":"([^"$]+)"/.exec(t)?.[1])
      .filter((c): c is string => c !== undefined);
    expect(gateway.length).toBeGreaterThan(5);
    for (const code of gateway) expect(codes, code).toContain(code);
  });

  it('names each code of the multipart upload routes at its status, on every route that answers it', () => {
    const answered: Record<string, (keyof typeof API_ERRORS)[]> = {
      '/v1/uploads': ['InvalidMultipart', 'InvalidPartSize', 'FileTooLarge', 'PayloadTooLarge'],
      '/v1/uploads/{id}/parts': [
        'InvalidPartNumbers',
        'SubmissionNotFound',
        'UploadNotMultipart',
        'UploadClosed',
        'PayloadTooLarge',
        'UnsupportedMediaType',
      ],
      '/v1/uploads/{id}/complete': [
        'InvalidParts',
        'InvalidPart',
        'EntityTooSmall',
        'SubmissionNotFound',
        'UploadNotFound',
        'UploadNotMultipart',
        'UploadClosed',
        'IdempotencyKeyInFlight',
        'IdempotencyKeyReuse',
        'PayloadTooLarge',
        'UnsupportedMediaType',
      ],
      '/v1/uploads/{id}/abort': ['SubmissionNotFound', 'UploadNotFound', 'UploadNotMultipart', 'UploadClosed'],
    };
    for (const [path, codes] of Object.entries(answered)) {
      const responses = doc.paths[path]?.['post']?.responses as Record<string, { description?: string }> | undefined;
      expect(responses, path).toBeDefined();
      for (const code of codes) {
        const status = String(API_ERRORS[code]);
        expect(responses?.[status]?.description ?? '', `${path} ${status} ${code}`).toMatch(
          new RegExp(`\\b${code}\\b`),
        );
      }
    }
  });

  it("names every code the client authorizer answers (IVA's own)", () => {
    const codes = new Set(schemas['ErrorCode']?.enum);
    for (const code of [...AUTH_ERROR_CODES, 'PayloadTooLarge', 'InvalidApiKey']) expect(codes, code).toContain(code);
    expect(Object.keys(doc.components['securitySchemes' as keyof typeof doc.components] ?? {})).toContain(
      'ClientSignature',
    );
  });

  it('names every code of lib/callback/errors.ts', () => {
    const codes = new Set(schemas['CallbackErrorCode']?.enum);
    const made: string[] = [
      new callbackErrors.NotFoundError().code,
      new callbackErrors.EmptyBodyError().code,
      new callbackErrors.MalformedJsonError().code,
      new callbackErrors.PayloadTooLargeError(1).code,
      new callbackErrors.SecretUnavailableError().code,
      new callbackErrors.StorageUnavailableError('x').code,
      new callbackErrors.LedgerUnavailableError('x').code,
      new callbackErrors.EventPublishError('x').code,
      new callbackErrors.EventInProgressError().code,
    ];
    // NotFound is never answered as such: a wrong secret gets the unknown-route 404 (RouteNotFound).
    for (const code of made.filter((c) => c !== 'NotFound')) expect(codes, code).toContain(code);
    expect(new Set(schemas['ErrorCode']?.enum)).toContain('RouteNotFound');
  });

  it('the response checker accepts a documented answer and refuses a drifted one', () => {
    const checker = responseChecker(doc);
    expect(pathTemplateOf(doc, '/v1/submissions/abc/results')).toBe('/v1/submissions/{id}/results');
    expect(pathTemplateOf(doc, '/v1/submissions')).toBe('/v1/submissions');
    const ok = JSON.stringify({ Items: [], NextCursor: 'c' });
    checker.check('GET', '/v1/submissions?status=failed', 200, 'application/json; charset=utf-8', ok);
    expect(() =>
      checker.check(
        'GET',
        '/v1/submissions?status=failed',
        200,
        'application/json',
        JSON.stringify({ Items: [], Next: 1 }),
      ),
    ).toThrow(/does not match/);
    const error = JSON.stringify({
      ResponseMetadata: { RequestId: 'r', Error: { Code: 'InvalidLimit', Message: 'm' } },
    });
    checker.check('GET', '/v1/submissions', 400, 'application/json', error);
    expect(() =>
      checker.check('GET', '/v1/submissions', 400, 'application/json', JSON.stringify({ error: { code: 'x' } })),
    ).toThrow(/does not match/);
    expect(() => checker.check('GET', '/v2/nothing', 200, 'application/json', '{}')).toThrow(/no path/);
    // POST /v1/uploads answers either ticket; a part plan missing its PartCount is neither.
    const plan = {
      SubmissionId: 'upl_1',
      Method: 'MULTIPART',
      UploadId: 'u',
      PartSize: 5 * 1024 * 1024,
      PartCount: 1,
      Parts: [{ PartNumber: 1, Url: 'http://s3/x?partNumber=1', Size: 10 }],
      ExpiresAt: '2026-12-03T10:00:00.000Z',
      Key: 'incoming/t/upl_1/a.mp4',
      Bucket: 'b',
    };
    checker.check('POST', '/v1/uploads', 200, 'application/json', JSON.stringify(plan));
    const { PartCount: _, ...noCount } = plan;
    expect(() => checker.check('POST', '/v1/uploads', 200, 'application/json', JSON.stringify(noCount))).toThrow(
      /does not match/,
    );
  });
});
