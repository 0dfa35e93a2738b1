/** Maps method + path (+ Action/Version for the vendor-compatible form) to an operation. */
import { IVA_VERSION, KIND_PROTOCOL, kindOfAction } from '../iva/protocol';
import type { MediaKind } from '../iva/types';
import { ApiError } from './errors';
import { routesOf } from './routes';
import type { ApiRequest } from './types';

export type Route =
  | { op: 'submit'; kind: MediaKind; action: string }
  | { op: 'createUpload'; action: 'CreateUpload' }
  | { op: 'uploadParts'; action: 'UploadParts'; id: string }
  | { op: 'completeUpload'; action: 'CompleteUpload'; id: string }
  | { op: 'abortUpload'; action: 'AbortUpload'; id: string }
  | { op: 'getSubmission'; action: 'GetSubmission'; id: string }
  | { op: 'listTaskSubmissions'; action: 'ListTaskSubmissions'; taskId: string }
  | { op: 'listSubmissions'; action: 'ListSubmissions' }
  | { op: 'getResult'; action: 'GetResult'; id: string }
  | { op: 'listResults'; action: 'ListResults'; id: string }
  | { op: 'getResultById'; action: 'GetResultById'; id: string; resultId: string }
  | { op: 'resolveSubmission'; action: 'ResolveSubmission'; id: string }
  | { op: 'resubmitSubmission'; action: 'ResubmitSubmission'; id: string };

/** The operation name used in error metadata before a route is known. */
export const UNKNOWN_ACTION = 'Unknown';

export function firstQuery(req: ApiRequest, name: string): string | undefined {
  const values = req.query[name];
  return values && values.length > 0 ? values[0] : undefined;
}

function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A lone `%` is a literal character in an id, not an encoding error worth a 400.
    return segment;
  }
}

function vendorRoute(req: ApiRequest): Route {
  const action = firstQuery(req, 'Action');
  if (action === undefined || action === '') {
    throw new ApiError(
      'MissingAction',
      `The Action query parameter is required: POST /?Action=${KIND_PROTOCOL.image.action}&Version=${IVA_VERSION} (or ${KIND_PROTOCOL.video.action}), or use POST /v1/images and POST /v1/videos`,
    );
  }
  const kind = kindOfAction(action);
  if (!kind) {
    throw new ApiError(
      'InvalidActionOrVersion',
      `Unknown Action "${action.slice(0, 64)}": this endpoint serves ${KIND_PROTOCOL.image.action} and ${KIND_PROTOCOL.video.action}`,
    );
  }
  const version = firstQuery(req, 'Version');
  if (version !== IVA_VERSION) {
    throw new ApiError(
      'InvalidVersion',
      `${action} needs Version=${IVA_VERSION}${version ? `, got "${version.slice(0, 32)}"` : ' (missing)'}`,
    );
  }
  return { op: 'submit', kind, action };
}

type DirectRouteName = ReturnType<typeof routesOf<'direct-submit'>>[number]['name'];

/** The operation of each direct-submit route of the table in routes.ts. */
const BUILD: Record<DirectRouteName, (params: Readonly<Record<string, string>>, req: ApiRequest) => Route> = {
  vendorSubmit: (_p, req) => vendorRoute(req),
  submitImage: () => ({ op: 'submit', kind: 'image', action: KIND_PROTOCOL.image.action }),
  submitVideo: () => ({ op: 'submit', kind: 'video', action: KIND_PROTOCOL.video.action }),
  createUpload: () => ({ op: 'createUpload', action: 'CreateUpload' }),
  uploadParts: (p) => ({ op: 'uploadParts', action: 'UploadParts', id: p['id'] ?? '' }),
  completeUpload: (p) => ({ op: 'completeUpload', action: 'CompleteUpload', id: p['id'] ?? '' }),
  abortUpload: (p) => ({ op: 'abortUpload', action: 'AbortUpload', id: p['id'] ?? '' }),
  listSubmissions: () => ({ op: 'listSubmissions', action: 'ListSubmissions' }),
  getSubmission: (p) => ({ op: 'getSubmission', action: 'GetSubmission', id: p['id'] ?? '' }),
  getResult: (p) => ({ op: 'getResult', action: 'GetResult', id: p['id'] ?? '' }),
  listResults: (p) => ({ op: 'listResults', action: 'ListResults', id: p['id'] ?? '' }),
  getResultById: (p) => ({
    op: 'getResultById',
    action: 'GetResultById',
    id: p['id'] ?? '',
    resultId: p['resultId'] ?? '',
  }),
  resolveSubmission: (p) => ({ op: 'resolveSubmission', action: 'ResolveSubmission', id: p['id'] ?? '' }),
  resubmitSubmission: (p) => ({ op: 'resubmitSubmission', action: 'ResubmitSubmission', id: p['id'] ?? '' }),
  listTaskSubmissions: (p) => ({ op: 'listTaskSubmissions', action: 'ListTaskSubmissions', taskId: p['taskId'] ?? '' }),
};

/**
 * The direct-submit routes (routes.ts, the table infra/stack.ts deploys). Deployed, API
 * Gateway has already matched method and resource: an undefined method or path never
 * reaches the function (it answers MISSING_AUTHENTICATION_TOKEN, mapped to 404
 * RouteNotFound), so there is no 405 here either.
 */
const DIRECT_ROUTES = routesOf('direct-submit').map((r) => ({ ...r, build: BUILD[r.name] }));

/** The routes as a RouteNotFound message lists them. */
const ROUTE_LIST = DIRECT_ROUTES.map((r) =>
  r.resource === '/' ? `${r.method} /?Action=…&Version=${IVA_VERSION}` : `${r.method} ${r.resource}`,
).join(', ');

/** `{name}` segments of a template bound to the (decoded) segments of a path, or undefined. */
function matchTemplate(template: string, parts: readonly string[]): Record<string, string> | undefined {
  const want = segments(template);
  if (want.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string;
    const got = parts[i] as string;
    if (w.startsWith('{') && w.endsWith('}')) params[w.slice(1, -1)] = decode(got);
    else if (w !== got) return undefined;
  }
  return params;
}

/**
 * Routes on the resource template and path parameters API Gateway matched, never on
 * `path`: behind a custom domain's base path mapping, `path` carries the base path
 * (`/iva/v1/images`) while `resource` and `pathParameters` do not. Only an event without
 * one of our templates as its resource (a `{proxy+}` resource, hand-made events) falls
 * back to matching the path against the same templates.
 */
export function route(req: ApiRequest): Route {
  const method = req.method.toUpperCase();
  const norm = { ...req, method };
  const byResource = req.resource ? DIRECT_ROUTES.filter((r) => r.resource === req.resource) : [];
  if (byResource.length > 0) {
    const hit = byResource.find((r) => r.method === method);
    if (hit) return hit.build(req.pathParameters ?? {}, norm);
  } else {
    const parts = segments(req.path);
    for (const r of DIRECT_ROUTES) {
      if (r.method !== method) continue;
      const params = matchTemplate(r.resource, parts);
      if (params) return r.build({ ...params, ...(req.pathParameters ?? {}) }, norm);
    }
  }
  const shown = req.resource && byResource.length > 0 ? req.resource : req.path;
  throw new ApiError('RouteNotFound', `No route ${method} ${shown.slice(0, 200)}. Routes: ${ROUTE_LIST}`);
}
