/**
 * The route table (lib/api/routes.ts) and the router that dispatches on it, without a
 * gateway: each direct-submit route reaches its operation by resource template and by
 * path, and the callback route is not the direct-submit function's. The deployed shape
 * (methods, keys, authorizer) is checked against the synthesized template in
 * test/infra/stack.test.ts, independently of this table.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../lib/api/errors';
import { type Route, route } from '../../lib/api/router';
import { ROUTES, routesOf } from '../../lib/api/routes';
import type { ApiRequest } from '../../lib/api/types';

function request(method: string, path: string, more: Partial<ApiRequest> = {}): ApiRequest {
  return { method, path, headers: {}, query: {}, requestId: 'req-1', remainingMs: () => 10_000, ...more };
}

const VENDOR_QUERY = { Action: ['AddAsyncTaskVideoData'], Version: ['2022-05-13'] };

/** What each route means, written out here rather than read from the table. */
const EXPECTED: ReadonlyArray<[string, string, Record<string, string>, Route]> = [
  ['POST', '/v1/images', {}, { op: 'submit', kind: 'image', action: 'AddAsyncTaskImageData' }],
  ['POST', '/v1/videos', {}, { op: 'submit', kind: 'video', action: 'AddAsyncTaskVideoData' }],
  ['POST', '/', {}, { op: 'submit', kind: 'video', action: 'AddAsyncTaskVideoData' }],
  ['POST', '/v1/uploads', {}, { op: 'createUpload', action: 'CreateUpload' }],
  ['POST', '/v1/uploads/{id}/parts', { id: 'u1' }, { op: 'uploadParts', action: 'UploadParts', id: 'u1' }],
  ['POST', '/v1/uploads/{id}/complete', { id: 'u1' }, { op: 'completeUpload', action: 'CompleteUpload', id: 'u1' }],
  ['POST', '/v1/uploads/{id}/abort', { id: 'u1' }, { op: 'abortUpload', action: 'AbortUpload', id: 'u1' }],
  ['GET', '/v1/submissions', {}, { op: 'listSubmissions', action: 'ListSubmissions' }],
  ['GET', '/v1/submissions/{id}', { id: 'a b' }, { op: 'getSubmission', action: 'GetSubmission', id: 'a b' }],
  ['GET', '/v1/submissions/{id}/result', { id: 's1' }, { op: 'getResult', action: 'GetResult', id: 's1' }],
  ['GET', '/v1/submissions/{id}/results', { id: 's1' }, { op: 'listResults', action: 'ListResults', id: 's1' }],
  [
    'GET',
    '/v1/submissions/{id}/results/{resultId}',
    { id: 's1', resultId: 'r1' },
    { op: 'getResultById', action: 'GetResultById', id: 's1', resultId: 'r1' },
  ],
  [
    'POST',
    '/v1/submissions/{id}/resolve',
    { id: 's1' },
    { op: 'resolveSubmission', action: 'ResolveSubmission', id: 's1' },
  ],
  [
    'POST',
    '/v1/submissions/{id}/resubmit',
    { id: 's1' },
    { op: 'resubmitSubmission', action: 'ResubmitSubmission', id: 's1' },
  ],
  [
    'GET',
    '/v1/tasks/{taskId}/submissions',
    { taskId: 't/1' },
    { op: 'listTaskSubmissions', action: 'ListTaskSubmissions', taskId: 't/1' },
  ],
];

function concretePath(resource: string, params: Record<string, string>): string {
  return resource.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? ''));
}

function routeCode(req: ApiRequest): string | undefined {
  try {
    route(req);
    return undefined;
  } catch (error) {
    return error instanceof ApiError ? error.code : String(error);
  }
}

describe('route table', () => {
  it('names each route once and lists each method + resource once', () => {
    expect(new Set(ROUTES.map((r) => r.name)).size).toBe(ROUTES.length);
    expect(new Set(ROUTES.map((r) => `${r.method} ${r.resource}`)).size).toBe(ROUTES.length);
  });

  it('holds exactly the direct-submit routes the router serves, and the callback for result-callback', () => {
    const direct = routesOf('direct-submit').map((r) => `${r.method} ${r.resource}`);
    expect(direct.sort()).toEqual(EXPECTED.map(([m, r]) => `${m} ${r}`).sort());
    expect(routesOf('result-callback').map((r) => `${r.method} ${r.resource}`)).toEqual(['POST /callbacks/{secret}']);
  });

  it('asks for an API key everywhere but the callback, and guards the size of the multipart routes only', () => {
    for (const r of ROUTES) {
      expect(r.apiKeyRequired, r.name).toBe(r.function === 'direct-submit');
      expect(r.sizeGuarded, r.name).toBe(['/v1/images', '/v1/videos', '/'].includes(r.resource));
    }
  });
});

describe('router', () => {
  it.each(EXPECTED)('%s %s reaches its operation by resource template', (method, resource, params, want) => {
    const query = resource === '/' ? VENDOR_QUERY : {};
    const req = request(method, `/base${concretePath(resource, params)}`, { resource, pathParameters: params, query });
    expect(route(req)).toEqual(want);
  });

  it.each(EXPECTED)(
    '%s %s reaches its operation by path when the event has no resource',
    (method, resource, params, want) => {
      const query = resource === '/' ? VENDOR_QUERY : {};
      expect(route(request(method, concretePath(resource, params), { query }))).toEqual(want);
    },
  );

  it('answers RouteNotFound for the callback route, another method, or an unknown path', () => {
    expect(routeCode(request('POST', '/callbacks/x', { resource: '/callbacks/{secret}' }))).toBe('RouteNotFound');
    expect(routeCode(request('POST', '/callbacks/x'))).toBe('RouteNotFound');
    expect(routeCode(request('GET', '/v1/images', { resource: '/v1/images' }))).toBe('RouteNotFound');
    expect(routeCode(request('DELETE', '/v1/submissions/s1'))).toBe('RouteNotFound');
    expect(routeCode(request('GET', '/v2/submissions'))).toBe('RouteNotFound');
  });

  it('lists every direct-submit route in the RouteNotFound message', () => {
    let message = '';
    try {
      route(request('GET', '/nowhere'));
    } catch (error) {
      message = (error as Error).message;
    }
    for (const [method, resource] of EXPECTED) {
      const shown = resource === '/' ? `${method} /?Action=` : `${method} ${resource}`;
      expect(message).toContain(shown);
    }
  });

  it('takes the vendor route only with a known Action and the one Version', () => {
    const vendor = (query: Record<string, string[]>) => routeCode(request('POST', '/', { resource: '/', query }));
    expect(vendor({ Version: ['2022-05-13'] })).toBe('MissingAction');
    expect(vendor({ Action: ['AddAsyncTaskAudioData'], Version: ['2022-05-13'] })).toBe('InvalidActionOrVersion');
    expect(vendor({ Action: ['AddAsyncTaskImageData'], Version: ['2021-01-01'] })).toBe('InvalidVersion');
    expect(vendor({ Action: ['AddAsyncTaskImageData'] })).toBe('InvalidVersion');
  });
});
