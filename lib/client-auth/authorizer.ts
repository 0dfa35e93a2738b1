/**
 * The API's REQUEST authorizer (functions/client-auth), free of Lambda types: verifies
 * the client's HMAC-SHA256 signature (verify.ts), refuses a replayed signature
 * (replay.ts), and on the multipart routes the declared body size (lib/api/size-guard.ts,
 * one authorizer per method is all API Gateway allows). A refusal becomes an IVA-shaped
 * 403 through the ACCESS_DENIED gateway response, which reads `code` and `message` from
 * the deny's context. An allow hands the function `accessKeyId`, `client` and the verified
 * `bodySha256`, and API Gateway the client's usage plan key (`usageIdentifierKey`).
 * A failure to read the key or write the replay record throws: API Gateway answers 500
 * (fail closed).
 */
import { checkDirectBodySize } from '../api/size-guard';
import { ROUTES } from '../api/routes';
import type { Query } from '../signer/index';
import type { ReplayGuard } from './replay';
import { type ClientKey, verifySignedRequest } from './verify';

export interface AuthorizerRequest {
  method: string;
  /** The resource template API Gateway matched, e.g. `/v1/images`. */
  resource: string;
  /** The path as the client sent it (`requestContext.path`: stage or base path included). */
  requestPath?: string;
  /** The path without the stage (`event.path`). */
  path: string;
  query: Query;
  /** Lower-case names. */
  headers: Readonly<Record<string, string>>;
}

export interface AuthorizerDeps {
  secretOf(accessKeyId: string): Promise<ClientKey | undefined>;
  replay: ReplayGuard;
  region: string;
  service: string;
  directMaxBytes: number;
  now?: () => Date;
}

export type AuthorizerOutcome =
  | {
      effect: 'Allow';
      usageKey: string;
      context: { accessKeyId: string; client: string; bodySha256: string };
    }
  | { effect: 'Deny'; context: { code: string; message: string; accessKeyId?: string; maxBytes?: string } };

const SIZE_GUARDED = new Set(ROUTES.filter((r) => r.sizeGuarded).map((r) => `${r.method} ${r.resource}`));

/** The ACCESS_DENIED gateway response puts the message inside a JSON string literal: no quotes, backslashes or controls. */
const templateSafe = (text: string): string => text.replace(/[\u0000-\u001f"\\]/g, "'");

export async function authorize(req: AuthorizerRequest, deps: AuthorizerDeps): Promise<AuthorizerOutcome> {
  const outcome = await decide(req, deps);
  if (outcome.effect === 'Deny') {
    outcome.context.message = templateSafe(outcome.context.message);
    if (outcome.context.accessKeyId)
      outcome.context.accessKeyId = templateSafe(outcome.context.accessKeyId.slice(0, 64));
  }
  return outcome;
}

async function decide(req: AuthorizerRequest, deps: AuthorizerDeps): Promise<AuthorizerOutcome> {
  const now = deps.now?.() ?? new Date();
  const paths = [...new Set([req.requestPath, req.path].filter((p): p is string => typeof p === 'string' && p !== ''))];
  const decision = await verifySignedRequest(
    { method: req.method, paths, query: req.query, headers: req.headers },
    { region: deps.region, service: deps.service, now, secretOf: deps.secretOf },
  );
  if (!decision.ok)
    return {
      effect: 'Deny',
      context: {
        code: decision.code,
        message: decision.message,
        ...(decision.accessKeyId ? { accessKeyId: decision.accessKeyId } : {}),
      },
    };
  if (!(await deps.replay.firstUse(decision.signature, decision.signedAtSeconds, decision.accessKeyId)))
    return {
      effect: 'Deny',
      context: {
        code: 'InvalidTimestamp',
        message:
          'This signature was already used: every request is accepted once. Sign it again with a fresh X-Date (or add a nonce header such as X-Nonce to the signed headers).',
        accessKeyId: decision.accessKeyId,
      },
    };
  if (SIZE_GUARDED.has(`${req.method.toUpperCase()} ${req.resource}`)) {
    const size = checkDirectBodySize(req.headers, deps.directMaxBytes);
    if (size.kind === 'deny-too-large')
      return {
        effect: 'Deny',
        context: {
          code: 'PayloadTooLarge',
          message: `The request body is over ${deps.directMaxBytes} bytes, the most a direct submission can carry through API Gateway and Lambda. Send large files with POST /v1/uploads: it returns a presigned URL to PUT the file to.`,
          maxBytes: String(size.maxBytes),
        },
      };
  }
  return {
    effect: 'Allow',
    usageKey: decision.usageKey,
    context: { accessKeyId: decision.accessKeyId, client: decision.client, bodySha256: decision.bodySha256 },
  };
}

/** Positive lookups cached per container for `ttlMs` (a revoked key stops working within it); misses are not cached. */
export function cachedKeyLookup(
  load: (accessKeyId: string) => Promise<ClientKey | undefined>,
  ttlMs: number,
  now = () => Date.now(),
): (accessKeyId: string) => Promise<ClientKey | undefined> {
  const cache = new Map<string, { key: ClientKey; at: number }>();
  return async (accessKeyId) => {
    const hit = cache.get(accessKeyId);
    if (hit && now() - hit.at < ttlMs) return hit.key;
    const key = await load(accessKeyId);
    if (key) cache.set(accessKeyId, { key, at: now() });
    else cache.delete(accessKeyId);
    return key;
  };
}
