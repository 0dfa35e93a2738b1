/** Maps method + path (+ Action/Version for the vendor-compatible form) to an operation. */
import type { MediaKind } from '../iva/types';
import { ApiError } from './errors';
import { API_VERSION } from './responses';
import type { ApiRequest } from './types';

export const SUBMIT_ACTIONS: Record<MediaKind, string> = {
  image: 'AddAsyncTaskImageData',
  video: 'AddAsyncTaskVideoData',
};

export type Route =
  | { op: 'submit'; kind: MediaKind; action: string }
  | { op: 'createUpload'; action: 'CreateUpload' }
  | { op: 'getSubmission'; action: 'GetSubmission'; id: string }
  | { op: 'getResult'; action: 'GetResult'; id: string }
  | { op: 'listResults'; action: 'ListResults'; id: string }
  | { op: 'getResultById'; action: 'GetResultById'; id: string; resultId: string }
  | { op: 'listTaskSubmissions'; action: 'ListTaskSubmissions'; taskId: string };

/** The operation name used in error metadata before a route is known. */
export const UNKNOWN_ACTION = 'Unknown';

export function firstQuery(req: ApiRequest, name: string): string | undefined {
  const values = req.query[name];
  return values && values.length > 0 ? values[0] : undefined;
}

function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** A path segment decoded; the callers check the path's length first, so `undefined` never reaches here in practice. */
function decode(segment: string | undefined = ''): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A lone `%` is a literal character in an id, not an encoding error worth a 400.
    return segment;
  }
}

function methodNotAllowed(method: string, allowed: string, path: string): ApiError {
  return new ApiError('MethodNotAllowed', `${method} is not allowed on ${path}; use ${allowed}`, {
    headers: { allow: allowed },
  });
}

function vendorRoute(req: ApiRequest): Route {
  const action = firstQuery(req, 'Action');
  if (req.method !== 'POST') throw methodNotAllowed(req.method, 'POST', '/');
  if (action === undefined || action === '') {
    throw new ApiError(
      'MissingAction',
      `The Action query parameter is required: POST /?Action=${SUBMIT_ACTIONS.image}&Version=${API_VERSION} (or ${SUBMIT_ACTIONS.video}), or use POST /v1/images and POST /v1/videos`,
    );
  }
  const kind = (Object.keys(SUBMIT_ACTIONS) as MediaKind[]).find((k) => SUBMIT_ACTIONS[k] === action);
  if (!kind) {
    throw new ApiError(
      'InvalidActionOrVersion',
      `Unknown Action "${action.slice(0, 64)}": this endpoint serves ${SUBMIT_ACTIONS.image} and ${SUBMIT_ACTIONS.video}`,
    );
  }
  const version = firstQuery(req, 'Version');
  if (version !== API_VERSION) {
    throw new ApiError(
      'InvalidVersion',
      `${action} needs Version=${API_VERSION}${version ? `, got "${version.slice(0, 32)}"` : ' (missing)'}`,
    );
  }
  return { op: 'submit', kind, action };
}

export function route(req: ApiRequest): Route {
  const method = req.method.toUpperCase();
  const parts = segments(req.path);
  const norm = { ...req, method };
  if (parts.length === 0) return vendorRoute(norm);
  const path = `/${parts.join('/')}`;
  if (parts[0] === 'v1') {
    if (parts.length === 2 && (parts[1] === 'images' || parts[1] === 'videos' || parts[1] === 'uploads')) {
      if (method !== 'POST') throw methodNotAllowed(method, 'POST', path);
      if (parts[1] === 'uploads') return { op: 'createUpload', action: 'CreateUpload' };
      const kind: MediaKind = parts[1] === 'images' ? 'image' : 'video';
      return { op: 'submit', kind, action: SUBMIT_ACTIONS[kind] };
    }
    if (parts.length === 3 && parts[1] === 'submissions') {
      if (method !== 'GET') throw methodNotAllowed(method, 'GET', '/v1/submissions/{id}');
      return { op: 'getSubmission', action: 'GetSubmission', id: req.pathParameters?.['id'] ?? decode(parts[2]) };
    }
    if (parts.length >= 4 && parts.length <= 5 && parts[1] === 'submissions') {
      const id = req.pathParameters?.['id'] ?? decode(parts[2]);
      if (parts.length === 4 && parts[3] === 'result') {
        if (method !== 'GET') throw methodNotAllowed(method, 'GET', '/v1/submissions/{id}/result');
        return { op: 'getResult', action: 'GetResult', id };
      }
      if (parts.length === 4 && parts[3] === 'results') {
        if (method !== 'GET') throw methodNotAllowed(method, 'GET', '/v1/submissions/{id}/results');
        return { op: 'listResults', action: 'ListResults', id };
      }
      if (parts.length === 5 && parts[3] === 'results') {
        if (method !== 'GET') throw methodNotAllowed(method, 'GET', '/v1/submissions/{id}/results/{resultId}');
        const resultId = req.pathParameters?.['resultId'] ?? decode(parts[4]);
        return { op: 'getResultById', action: 'GetResultById', id, resultId };
      }
    }
    if (parts.length === 4 && parts[1] === 'tasks' && parts[3] === 'submissions') {
      if (method !== 'GET') throw methodNotAllowed(method, 'GET', '/v1/tasks/{TaskID}/submissions');
      const fromGateway =
        req.pathParameters?.['TaskID'] ?? req.pathParameters?.['taskId'] ?? req.pathParameters?.['taskID'];
      return { op: 'listTaskSubmissions', action: 'ListTaskSubmissions', taskId: fromGateway ?? decode(parts[2]) };
    }
  }
  throw new ApiError(
    'RouteNotFound',
    `No route ${method} ${path.slice(0, 200)}. Routes: POST /v1/images, POST /v1/videos, POST /?Action=…&Version=${API_VERSION}, POST /v1/uploads, GET /v1/submissions/{id}, GET /v1/submissions/{id}/result, GET /v1/submissions/{id}/results, GET /v1/submissions/{id}/results/{resultId}, GET /v1/tasks/{TaskID}/submissions`,
  );
}
