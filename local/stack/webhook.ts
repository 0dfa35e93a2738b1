/**
 * npm start's webhook: what the stack's EventBridge API destination does (infra/webhooks.ts),
 * for `IVA_BRIDGE_RESULT_WEBHOOK_URL`. The same events (lib/webhook), the same payload (the
 * event itself), the same header secret; retried with backoff like EventBridge, then
 * given up and logged (the deployed stack's dead-letter queue). In-process and in memory:
 * deliveries pending when npm start stops are lost (the deployed stack keeps them 24 h).
 */
import { WEBHOOK_DETAIL_TYPES, WEBHOOK_EVENT_SOURCE, WEBHOOK_SECRET_HEADER } from '../../lib/webhook/index';
import type { LocalEventBridge, RecordedEvent } from './eventbridge';

export interface LocalWebhookOptions {
  url: string;
  secret: string;
  /** Attempts in all (default 6: about 30 s of backoff). */
  attempts?: number;
  /** First retry delay, doubled each time (default 1 s). */
  baseDelayMs?: number;
  log?: (line: string) => void;
}

export interface WebhookDelivery {
  eventId: string;
  detailType: string;
  attempts: number;
  ok: boolean;
  status?: number;
}

const TYPES: ReadonlySet<string> = new Set(WEBHOOK_DETAIL_TYPES);

/** Starts delivering; returns what was delivered and a stop function (pending retries are dropped). */
export function deliverWebhooks(
  bus: Pick<LocalEventBridge, 'emitter'>,
  options: LocalWebhookOptions,
): { deliveries: WebhookDelivery[]; stop: () => void } {
  const attempts = options.attempts ?? 6;
  const baseDelayMs = options.baseDelayMs ?? 1_000;
  const deliveries: WebhookDelivery[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const post = async (event: RecordedEvent, attempt: number): Promise<void> => {
    if (stopped) return;
    const { eventBusName: _bus, ...payload } = event;
    let status: number | undefined;
    try {
      const res = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [WEBHOOK_SECRET_HEADER]: options.secret },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(5_000),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
    } catch {
      status = undefined;
    }
    const ok = status !== undefined && status >= 200 && status < 300;
    // EventBridge retries 429 and 5xx (and unreachable); another 4xx is final.
    const retryable = status === undefined || status === 429 || status >= 500;
    if (ok || !retryable || attempt >= attempts) {
      deliveries.push({
        eventId: event.id,
        detailType: event['detail-type'],
        attempts: attempt,
        ok,
        ...(status ? { status } : {}),
      });
      if (!ok)
        options.log?.(
          `webhook: gave up on "${event['detail-type']}" ${event.id} after ${attempt} attempt(s) (last answer ${status ?? 'none'})`,
        );
      return;
    }
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        void post(event, attempt + 1);
      },
      baseDelayMs * 2 ** (attempt - 1),
    );
    timers.add(timer);
  };

  const onEvent = (event: RecordedEvent): void => {
    if (event.source === WEBHOOK_EVENT_SOURCE && TYPES.has(event['detail-type'])) void post(event, 1);
  };
  bus.emitter.on('event', onEvent);
  return {
    deliveries,
    stop: () => {
      stopped = true;
      bus.emitter.off('event', onEvent);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
