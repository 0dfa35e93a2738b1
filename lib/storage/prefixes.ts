/**
 * The bucket's two key prefixes, one home for both: the stack (infra/) scopes grants,
 * the notification and lifecycle rules by them, and the functions read and write under
 * them. Constants only, no imports, so infra can depend on it without pulling in SDKs.
 */

/** Objects under it are submitted (docs/contract.md, section 1); nothing else is. */
export const INCOMING_PREFIX = 'incoming/';

/** Where result-callback files IVA's callback bodies; never submitted, so never a loop. */
export const RESULTS_PREFIX = 'results/';

/**
 * Copies of uploads in a bucket without versioning, taken before IVA is handed a URL, so
 * that IVA fetches the bytes the event announced even if the key is overwritten later
 * (lib/s3-intake/pin.ts). Never submitted; expire them after the longest URL lifetime.
 */
export const PINNED_PREFIX = 'pinned/';

/**
 * Where API Gateway puts each authenticated callback body as it arrives (key = its
 * request id), before result-callback files it under results/ (lib/callback/inbox.ts).
 */
export const CALLBACK_INBOX_PREFIX = 'callbacks-inbox/';
