/**
 * docs/openapi.json as a response checker for the end-to-end tests: every answer they
 * read through `checkedFetch` is validated against the document's schema for its route,
 * status and content type (Ajv, JSON Schema 2020-12: OpenAPI 3.1's dialect), so the
 * document cannot drift from what the stack answers.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { type ClientCredentials, signingFetch } from '../../lib/client/signing';

export const OPENAPI_PATH = fileURLToPath(new URL('../../docs/openapi.json', import.meta.url));

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown> };
}
export interface OpenApiOperation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

export function loadOpenApi(): OpenApiDocument {
  return JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as OpenApiDocument;
}

const pointer = (...parts: string[]): string => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** The document's path template that a concrete path (relative to the API root) matches. */
export function pathTemplateOf(doc: OpenApiDocument, path: string): string | undefined {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  const candidates = Object.keys(doc.paths).filter((t) => {
    const want = t.split('/').filter(Boolean);
    return want.length === parts.length && want.every((w, i) => w.startsWith('{') || w === parts[i]);
  });
  // A literal segment beats a {parameter} at the same place, as in API Gateway.
  const literals = (t: string): number => t.split('/').filter((s) => s && !s.startsWith('{')).length;
  return candidates.sort((a, b) => literals(b) - literals(a))[0];
}

export interface ResponseChecker {
  /** Throws with the schema errors when `body` is not what the document says for this answer. */
  check(method: string, path: string, status: number, contentType: string | null, body: string): void;
  /** How many answers were checked against a schema. */
  readonly checked: number;
}

export function responseChecker(doc: OpenApiDocument = loadOpenApi()): ResponseChecker {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ ...doc, $id: 'openapi' });
  const compiled = new Map<string, ValidateFunction>();
  let checked = 0;
  return {
    get checked() {
      return checked;
    },
    check(method, path, status, contentType, body) {
      const template = pathTemplateOf(doc, path);
      const where = `${method} ${path} → ${status}`;
      if (!template) throw new Error(`docs/openapi.json has no path for ${where}`);
      const operation = doc.paths[template]?.[method.toLowerCase()];
      if (!operation) {
        // An undefined method: API Gateway's unknown-route answer (info.description says so).
        if (status !== 404) throw new Error(`docs/openapi.json has no ${method} on ${template} (${where})`);
        checked++;
        const validate = ajv.getSchema('openapi#/components/schemas/IvaError') as ValidateFunction;
        if (!validate(JSON.parse(body)))
          throw new Error(`${where}: not the RouteNotFound answer: ${body.slice(0, 500)}`);
        return;
      }
      const code = operation.responses[String(status)] ? String(status) : 'default';
      const response = operation.responses[code];
      if (!response) throw new Error(`docs/openapi.json: ${operation.operationId} documents no ${status} (${where})`);
      const mime = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
      const media = response.content?.[mime] ? mime : response.content?.['*/*'] ? '*/*' : undefined;
      if (!media) {
        if (!response.content && body === '') return;
        throw new Error(`docs/openapi.json: ${operation.operationId} ${code} has no content ${mime} (${where})`);
      }
      const ref = `openapi#${pointer('', 'paths', template, method.toLowerCase(), 'responses', code, 'content', media, 'schema')}`;
      let validate = compiled.get(ref);
      if (!validate) {
        validate = ajv.compile({ $ref: ref });
        compiled.set(ref, validate);
      }
      if (media !== 'application/json') return;
      const value: unknown = JSON.parse(body);
      checked++;
      if (!validate(value))
        throw new Error(
          `${where}: the answer does not match docs/openapi.json (${operation.operationId} ${code}): ${ajv.errorsText(validate.errors)}\n${body.slice(0, 2000)}`,
        );
    },
  };
}

/** The answer, validated against the document (its body read once here and re-wrapped). */
async function checkedAnswer(checker: ResponseChecker, method: string, path: string, res: Response): Promise<Response> {
  // A followed 303 ends at S3's presigned URL: that answer is S3's, not the API's.
  if (res.redirected) return res;
  const bytes = Buffer.from(await res.arrayBuffer());
  checker.check(method, path, res.status, res.headers.get('content-type'), bytes.toString('utf8'));
  return new Response(res.status === 204 || res.status === 304 ? null : bytes, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/**
 * `fetch` against the API root `apiUrl` that validates every answer against the document
 * before handing it back (the body is read once here and re-wrapped, so callers use it as usual).
 */
export function checkedFetch(
  apiUrl: string,
  options: { checker?: ResponseChecker; credentials?: ClientCredentials } = {},
) {
  const checker = options.checker ?? sharedChecker();
  const send = options.credentials ? signingFetch(options.credentials) : fetch;
  return async (path: string, init: RequestInit = {}): Promise<Response> => {
    const relative = path.replace(/^\//, '');
    const res = await send(`${apiUrl}${relative}`, init);
    return checkedAnswer(checker, init.method ?? 'GET', `/${relative}`, res);
  };
}

/**
 * A drop-in `fetch` for the client library and the CLI (`CliIo.fetch`): requests go out
 * as given (already signed by the client); every answer from under `apiUrl` is validated
 * against the document, anything else (S3's presigned URLs) passes unchecked.
 */
export function checkingFetch(apiUrl: string, checker: ResponseChecker = sharedChecker()): typeof fetch {
  const root = apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
  return async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input);
    const res = await fetch(input, init);
    if (!url.startsWith(root)) return res;
    const path = `/${url.slice(root.length)}`;
    return checkedAnswer(checker, init.method ?? (input instanceof Request ? input.method : 'GET'), path, res);
  };
}

let shared: ResponseChecker | undefined;
export function sharedChecker(): ResponseChecker {
  shared ??= responseChecker();
  return shared;
}

/** The API of a local stack as its default client calls it: signed, every answer checked against the document. */
export function signedApi(info: { apiUrl: string; clientAccessKeyId: string; clientSecretAccessKey: string }) {
  return checkedFetch(info.apiUrl, {
    credentials: { accessKeyId: info.clientAccessKeyId, secretAccessKey: info.clientSecretAccessKey },
  });
}
