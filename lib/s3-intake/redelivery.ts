/**
 * When a message comes back, and whether it may reach the DLQ (lib/s3-intake/README.md,
 * "Throttling"). A message handed back waits a delay that doubles with each receive
 * (SQS `ChangeMessageVisibility`), instead of the queue's visibility timeout, so a backlog
 * drains at IVA's pace rather than burning receives. A message deferred through no fault
 * of its own (IVA throttled it, or the invocation had no time left for it) is never sent
 * to the DLQ for that: on its last allowed receive it is sent again as a new message
 * (`SendMessage` with `DelaySeconds`, which restarts its receive count) and the old one is
 * deleted. Any other failure keeps the DLQ as its end after `maxReceiveCount` receives.
 */

import { awsErrorFields } from '../aws/errors';
import type { LoggerPort } from '../observability';

/** Why a message is handed back. */
export type RetryCause =
  /** IVA's flow limit, no send slot, or no time left: the message is fine, IVA is busy. */
  | 'deferred'
  /** Anything else retryable (IVA 5xx, our credentials, the ledger): the DLQ is its end. */
  | 'fault';

export interface RedeliveryOptions {
  /** Delay after the first receive, doubled per receive. @default 2 */
  baseSeconds?: number;
  /** Longest delay; SQS caps DelaySeconds at 900. @default 900 */
  maxSeconds?: number;
  /** The queue's redrive maxReceiveCount; unknown → never requeued. */
  maxReceiveCount?: number;
  /** [0, 1) source for jitter. @default Math.random */
  random?: () => number;
}

export type Redelivery =
  /** Report it failed after setting its visibility to this many seconds. */
  | { action: 'return'; visibilitySeconds: number }
  /** Send its body again with this delay, then let the old one be deleted. */
  | { action: 'requeue'; delaySeconds: number };

const defaults = { baseSeconds: 2, maxSeconds: 900 } as const;

/** SQS's largest DelaySeconds (15 min); visibility could go to 12 h, kept the same for one scale. */
export const SQS_MAX_DELAY_SECONDS = 900;

/**
 * `receiveCount`: the message's ApproximateReceiveCount in this delivery (1 on the first).
 * The delay is "equal jitter": half fixed, half random, so it grows with every receive and
 * messages returned together do not come back together.
 */
export function planRedelivery(receiveCount: number, cause: RetryCause, options: RedeliveryOptions = {}): Redelivery {
  const baseSeconds = options.baseSeconds ?? defaults.baseSeconds;
  const maxSeconds = Math.min(options.maxSeconds ?? defaults.maxSeconds, SQS_MAX_DELAY_SECONDS);
  const random = options.random ?? Math.random;
  const count = Number.isFinite(receiveCount) && receiveCount >= 1 ? Math.floor(receiveCount) : 1;
  const ceiling = Math.min(maxSeconds, baseSeconds * 2 ** Math.min(count - 1, 30));
  const seconds = Math.max(1, Math.round(ceiling / 2 + (ceiling / 2) * random()));
  const last = options.maxReceiveCount !== undefined && count >= options.maxReceiveCount;
  if (cause === 'deferred' && last) return { action: 'requeue', delaySeconds: seconds };
  return { action: 'return', visibilitySeconds: seconds };
}

/** The two queue calls a redelivery needs; sqs-queue.ts is the SQS one. */
export interface QueuePort {
  /** Sets a received message's remaining invisibility (SQS ChangeMessageVisibility). */
  changeVisibility(receiptHandle: string, seconds: number): Promise<void>;
  /** Sends a body again as a new message, invisible for `delaySeconds` (SQS SendMessage). */
  send(body: string, delaySeconds: number): Promise<void>;
}

export interface DeliveredMessage {
  messageId: string;
  body: string;
  receiptHandle?: string;
  /** ApproximateReceiveCount of this delivery. */
  receiveCount: number;
}

export interface HandBack {
  messageId: string;
  retry: boolean;
  cause?: RetryCause;
}

/**
 * Carries out the plan for every handed-back message and returns the ids SQS must report
 * as batch item failures. A queue call that fails leaves the message to the queue's own
 * visibility timeout (reported failed): a requeue is reported done only once its copy is
 * sent, so a message is never lost between the two.
 */
export async function redeliver(
  outcomes: readonly HandBack[],
  messages: readonly DeliveredMessage[],
  queue: QueuePort | undefined,
  options: RedeliveryOptions & { log?: Pick<LoggerPort, 'warn'> } = {},
): Promise<string[]> {
  const byId = new Map(messages.map((m) => [m.messageId, m]));
  const failed: string[] = [];
  await Promise.all(
    outcomes
      .filter((o) => o.retry)
      .map(async (outcome) => {
        const message = byId.get(outcome.messageId);
        if (!queue || !message) {
          failed.push(outcome.messageId);
          return;
        }
        const plan = planRedelivery(message.receiveCount, outcome.cause ?? 'fault', options);
        try {
          if (plan.action === 'requeue') {
            await queue.send(message.body, plan.delaySeconds);
            options.log?.warn('Deferred on its last allowed receive; sent again as a new message, not to the DLQ', {
              messageId: message.messageId,
              receiveCount: message.receiveCount,
              delaySeconds: plan.delaySeconds,
            });
            return;
          }
          failed.push(outcome.messageId);
          if (message.receiptHandle) await queue.changeVisibility(message.receiptHandle, plan.visibilitySeconds);
        } catch (error) {
          if (!failed.includes(outcome.messageId)) failed.push(outcome.messageId);
          options.log?.warn('Could not set the redelivery delay; the queue visibility timeout applies', {
            messageId: message.messageId,
            ...awsErrorFields(error),
          });
        }
      }),
  );
  return failed;
}
