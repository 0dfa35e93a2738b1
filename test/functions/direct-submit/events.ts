/** Realistic API Gateway REST (payload v1) events and Lambda contexts for the direct-submit tests. */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { lambdaContext as localLambdaContext } from '../../../local/stack/lambda';

export interface EventInput {
  method: string;
  path: string;
  resource?: string;
  headers?: Record<string, string>;
  query?: Record<string, string | string[]>;
  pathParameters?: Record<string, string>;
  body?: Buffer | string;
  /** Default: true for Buffer bodies (binary media type), false for strings. */
  base64?: boolean;
  /** When API Gateway received the request (default now). */
  requestTimeEpoch?: number;
}

export function restEvent(input: EventInput): APIGatewayProxyEvent {
  const headers = input.headers ?? {};
  const multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  const multi = input.query
    ? Object.fromEntries(Object.entries(input.query).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]))
    : null;
  // API Gateway's single-value map holds the LAST value of each parameter.
  const single = multi ? Object.fromEntries(Object.entries(multi).map(([k, v]) => [k, v[v.length - 1]!])) : null;
  const base64 = input.base64 ?? Buffer.isBuffer(input.body);
  const body =
    input.body === undefined
      ? null
      : Buffer.isBuffer(input.body)
        ? base64
          ? input.body.toString('base64')
          : input.body.toString('utf8')
        : base64
          ? Buffer.from(input.body).toString('base64')
          : input.body;
  const requestId = randomUUID();
  return {
    resource: input.resource ?? '/{proxy+}',
    path: input.path,
    httpMethod: input.method,
    headers,
    multiValueHeaders,
    queryStringParameters: single,
    multiValueQueryStringParameters: multi,
    pathParameters: input.pathParameters ?? null,
    stageVariables: null,
    body,
    isBase64Encoded: base64,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdef1234',
      authorizer: null,
      httpMethod: input.method,
      identity: {
        sourceIp: '127.0.0.1',
        userAgent: 'vitest',
        apiKey: 'test-key',
      } as APIGatewayProxyEvent['requestContext']['identity'],
      path: `/prod${input.path}`,
      protocol: 'HTTP/1.1',
      requestId,
      requestTimeEpoch: input.requestTimeEpoch ?? Date.now(),
      resourceId: 'res123',
      resourcePath: input.resource ?? '/{proxy+}',
      stage: 'prod',
    },
  };
}

export function lambdaContext(remainingMs = 30_000): Context {
  return localLambdaContext({ name: 'direct-submit', timeoutMs: remainingMs, memoryMb: 512 });
}

/** A multipart body as a real encoder (undici's FormData) writes it. */
export async function encodeForm(
  parts: Array<[string, string] | [string, Uint8Array, string, string?]>,
): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const part of parts) {
    if (typeof part[1] === 'string') form.append(part[0], part[1]);
    else form.append(part[0], new Blob([part[1]], part[3] ? { type: part[3] } : {}), part[2]);
  }
  const response = new Response(form);
  return { body: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type')! };
}
