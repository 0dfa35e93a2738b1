/**
 * Webhooks for systems outside AWS (README "Webhooks"): which events are delivered, and
 * how a receiver recognises them. Constants only, no SDK imports: the stack (infra/webhooks.ts,
 * EventBridge API destinations) and npm start (local/stack/webhook.ts) both read them, so
 * the deployed and the local delivery cannot disagree.
 *
 * The payload is the EventBridge event itself, unchanged: `{version, id, detail-type, source,
 * account, time, region, resources, detail}` (the details are documented in
 * lib/callback/README.md and lib/sweep/README.md). `id` is unique per event: receivers
 * deduplicate on it, since delivery is at least once.
 */

/** The events a webhook receives (source `iva-bridge`). */
export const WEBHOOK_DETAIL_TYPES = [
  'IVA Result Stored',
  'IVA Result Overdue',
  'Upload Expired',
  'IVA Submission Uncertain',
] as const;

export const WEBHOOK_EVENT_SOURCE = 'iva-bridge';

/**
 * The header carrying the webhook secret (EventBridge connection "API key" authorization:
 * header name = value). The receiver compares it in constant time and refuses anything else.
 */
export const WEBHOOK_SECRET_HEADER = 'X-Iva-Bridge-Webhook-Secret';
