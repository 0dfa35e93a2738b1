/**
 * Every route of the REST API, in one table: infra/stack.ts builds the API Gateway
 * resources and methods from it, and router.ts dispatches on it. Pure data (no imports),
 * so the stack can read it without pulling in the functions' dependencies.
 *
 * Order matters to the stack only: resources are created in this order, which keeps the
 * synthesized template (and so the deployment's logical ids) stable.
 */

/** The Lambda function a route invokes (its folder under functions/). */
export type RouteFunction = 'direct-submit' | 'result-callback';

export interface RouteSpec {
  /** Unique; router.ts maps each direct-submit route's name to its operation. */
  readonly name: string;
  readonly method: 'GET' | 'POST';
  /** API Gateway resource template, e.g. `/v1/submissions/{id}`. */
  readonly resource: string;
  readonly function: RouteFunction;
  /** The caller signs (the client-auth authorizer; its usage plan key comes from it). IVA's callbacks cannot. */
  readonly apiKeyRequired: boolean;
  /** Multipart bodies: the client-auth authorizer refuses a declared body over the limit (PayloadTooLarge). */
  readonly sizeGuarded: boolean;
}

export const ROUTES = [
  {
    name: 'submitImage',
    method: 'POST',
    resource: '/v1/images',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: true,
  },
  {
    name: 'submitVideo',
    method: 'POST',
    resource: '/v1/videos',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: true,
  },
  {
    name: 'createUpload',
    method: 'POST',
    resource: '/v1/uploads',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  // An upload's S3 multipart upload (lib/api/multipart-uploads.ts): more part URLs, finish, abort.
  {
    name: 'uploadParts',
    method: 'POST',
    resource: '/v1/uploads/{id}/parts',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'completeUpload',
    method: 'POST',
    resource: '/v1/uploads/{id}/complete',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'abortUpload',
    method: 'POST',
    resource: '/v1/uploads/{id}/abort',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  // ?status=…: every task's submissions in one status (the status index).
  {
    name: 'listSubmissions',
    method: 'GET',
    resource: '/v1/submissions',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'getSubmission',
    method: 'GET',
    resource: '/v1/submissions/{id}',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'getResult',
    method: 'GET',
    resource: '/v1/submissions/{id}/result',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'listResults',
    method: 'GET',
    resource: '/v1/submissions/{id}/results',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'getResultById',
    method: 'GET',
    resource: '/v1/submissions/{id}/results/{resultId}',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  // The owner's verdict on an uncertain submission (lib/iva/README.md).
  {
    name: 'resolveSubmission',
    method: 'POST',
    resource: '/v1/submissions/{id}/resolve',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  // The owner's other verdict: IVA did not take it, send the object again.
  {
    name: 'resubmitSubmission',
    method: 'POST',
    resource: '/v1/submissions/{id}/resubmit',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  {
    name: 'listTaskSubmissions',
    method: 'GET',
    resource: '/v1/tasks/{taskId}/submissions',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: false,
  },
  // Vendor-compatible form: POST /?Action=AddAsyncTaskImageData&Version=… (lib/iva/protocol.ts).
  {
    name: 'vendorSubmit',
    method: 'POST',
    resource: '/',
    function: 'direct-submit',
    apiKeyRequired: true,
    sizeGuarded: true,
  },
  // IVA cannot send our API key: the long random path secret is the credential,
  // checked in constant time by result-callback.
  {
    name: 'callback',
    method: 'POST',
    resource: '/callbacks/{secret}',
    function: 'result-callback',
    apiKeyRequired: false,
    sizeGuarded: false,
  },
] as const satisfies readonly RouteSpec[];

export type RouteName = (typeof ROUTES)[number]['name'];

/** The routes that run a given function. */
export function routesOf<F extends RouteFunction>(fn: F): Extract<(typeof ROUTES)[number], { function: F }>[] {
  return ROUTES.filter((r): r is Extract<(typeof ROUTES)[number], { function: F }> => r.function === fn);
}
