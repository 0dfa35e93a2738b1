/**
 * An in-memory SQS queue with a Lambda event source mapping on top, as the deployed
 * stack wires object-created: batches of up to `batchSize` messages, a short batching
 * window, a visibility timeout, partial batch responses (`batchItemFailures`), a receive
 * count in `attributes.ApproximateReceiveCount`, a dead-letter list after
 * `maxReceiveCount` receives, and at most `maxConcurrency` invocations at once.
 * With `persistPath`, every message and dead letter is written to that file before
 * `send` returns and after each change, so a restart delivers what was left (messages in
 * flight when the process stopped are received again, as after a visibility timeout).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface QueueMessage {
  messageId: string;
  body: string;
  sentAt: number;
  receiveCount: number;
  firstReceivedAt?: number;
  /** Invisible until then (ms epoch). */
  visibleAt: number;
  /** Set while a batch holding it is being processed. */
  receiptHandle?: string;
  /** Its consumer set its visibility (ChangeMessageVisibility) during this receive. */
  visibilityChanged?: boolean;
}

export interface DeadLetter {
  messageId: string;
  body: string;
  receiveCount: number;
  sentAt: string;
  deadAt: string;
}

/** SQS record as Lambda receives it (structurally `aws-lambda`'s SQSRecord). */
export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: {
    ApproximateReceiveCount: string;
    SentTimestamp: string;
    SenderId: string;
    ApproximateFirstReceiveTimestamp: string;
  };
  messageAttributes: Record<string, never>;
  md5OfBody: string;
  eventSource: 'aws:sqs';
  eventSourceARN: string;
  awsRegion: string;
}

export interface SqsBatchEvent {
  Records: SqsRecord[];
}

export type BatchOutcome =
  /** Every listed id stays in the queue; the rest are deleted. */
  | { kind: 'partial'; failedIds: string[] }
  /** The invocation failed as a whole: every message stays. */
  | { kind: 'error'; error: Error };

export interface LocalQueueOptions {
  name?: string;
  region?: string;
  batchSize?: number;
  /** Wait this long after the first message for more to fill a batch (AWS: up to 300 s; deployed: 5 s). */
  batchingWindowMs?: number;
  visibilityTimeoutMs?: number;
  maxReceiveCount?: number;
  maxConcurrency?: number;
  /** Processes one batch; decides which messages stay. */
  consume: (event: SqsBatchEvent) => Promise<BatchOutcome>;
  /** A JSON file that keeps the messages and dead letters across restarts. */
  persistPath?: string;
  /** False: deliver nothing until resume() (the consumer is not ready yet); default true. */
  autoStart?: boolean;
  log?: (line: string) => void;
}

interface PersistedQueue {
  messages: Omit<QueueMessage, 'receiptHandle'>[];
  deadLetters: DeadLetter[];
}

export class LocalQueue {
  readonly name: string;
  readonly arn: string;
  readonly deadLetters: DeadLetter[] = [];
  private readonly messages = new Map<string, QueueMessage>();
  private readonly batchSize: number;
  private readonly batchingWindowMs: number;
  private readonly visibilityTimeoutMs: number;
  private readonly maxReceiveCount: number;
  private readonly maxConcurrency: number;
  private readonly region: string;
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private started: boolean;
  private deadLettered = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: LocalQueueOptions) {
    this.name = options.name ?? 'iva-bridge-local-incoming';
    this.region = options.region ?? 'us-east-1';
    this.arn = `arn:aws:sqs:${this.region}:000000000000:${this.name}`;
    this.batchSize = clamp(options.batchSize ?? 10, 1, 10);
    this.batchingWindowMs = options.batchingWindowMs ?? 50;
    this.visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000;
    this.maxReceiveCount = Math.max(1, options.maxReceiveCount ?? 5);
    this.maxConcurrency = Math.max(1, options.maxConcurrency ?? 2);
    this.started = options.autoStart ?? true;
    if (options.persistPath) this.restore(options.persistPath);
  }

  private restore(path: string): void {
    let kept: PersistedQueue;
    try {
      kept = JSON.parse(readFileSync(path, 'utf8')) as PersistedQueue;
    } catch {
      return; // nothing kept yet
    }
    const now = Date.now();
    for (const m of kept.messages ?? [])
      this.messages.set(m.messageId, { ...m, visibleAt: Math.min(m.visibleAt, now) });
    this.deadLetters.push(...(kept.deadLetters ?? []));
  }

  /** Starts delivering what was kept from the last run (once the consumer is ready). */
  resume(): void {
    this.started = true;
    if (this.messages.size > 0) this.schedule(Date.now() + this.batchingWindowMs);
  }

  /** Writes the queue's content in one go (write then rename: never a half-written file). */
  private persist(): void {
    const path = this.options.persistPath;
    if (!path) return;
    const state: PersistedQueue = {
      messages: [...this.messages.values()].map(({ receiptHandle: _h, ...m }) => m),
      deadLetters: this.deadLetters,
    };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
  }

  /** SQS SendMessage: visible after `delaySeconds` (0–900, as SQS's DelaySeconds). */
  send(body: string, delaySeconds = 0): string {
    const messageId = randomUUID();
    const now = Date.now();
    const visibleAt = now + Math.min(900, Math.max(0, delaySeconds)) * 1000;
    this.messages.set(messageId, { messageId, body, sentAt: now, receiveCount: 0, visibleAt });
    this.persist();
    // The batching window starts with the first visible message, as in a real poller.
    this.schedule(visibleAt + this.batchingWindowMs);
    return messageId;
  }

  /**
   * SQS ChangeMessageVisibility on a message in flight: it becomes visible `seconds` from
   * now (0–43 200) instead of after the queue's visibility timeout. False when the
   * receipt handle names no message in flight (SQS: ReceiptHandleIsInvalid).
   */
  changeVisibility(receiptHandle: string, seconds: number): boolean {
    for (const m of this.messages.values()) {
      if (m.receiptHandle !== receiptHandle) continue;
      m.visibleAt = Date.now() + Math.min(43_200, Math.max(0, seconds)) * 1000;
      m.visibilityChanged = true;
      return true;
    }
    return false;
  }

  /** The settings in effect (the template's, or a test's overrides). */
  get settings(): {
    batchSize: number;
    batchingWindowMs: number;
    visibilityTimeoutMs: number;
    maxReceiveCount: number;
    maxConcurrency: number;
  } {
    return {
      batchSize: this.batchSize,
      batchingWindowMs: this.batchingWindowMs,
      visibilityTimeoutMs: this.visibilityTimeoutMs,
      maxReceiveCount: this.maxReceiveCount,
      maxConcurrency: this.maxConcurrency,
    };
  }

  /** Messages still in the queue (visible or in flight). */
  get depth(): number {
    return this.messages.size;
  }

  /** Sends every dead letter back to the queue (the documented DLQ redrive). */
  redrive(): number {
    const letters = this.deadLetters.splice(0);
    for (const letter of letters) this.send(letter.body);
    this.persist();
    return letters.length;
  }

  /** Resolves when the queue is empty and nothing runs (dead letters do not count). */
  drained(): Promise<void> {
    if (this.messages.size === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inflight]);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private schedule(at: number): void {
    if (this.stopped || !this.started || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.poll();
      },
      Math.max(0, at - Date.now()),
    );
  }

  private poll(): void {
    if (this.stopped) return;
    const now = Date.now();
    let received = false;
    while (this.running < this.maxConcurrency) {
      const batch = this.receive(now);
      if (batch.length === 0) break;
      received = true;
      this.dispatch(batch);
    }
    if (received || this.deadLettered) this.persist();
    this.deadLettered = false;
    // Wake up for the next message that becomes visible (or when a slot frees up: see dispatch).
    let next = Number.POSITIVE_INFINITY;
    for (const m of this.messages.values()) if (!m.receiptHandle) next = Math.min(next, m.visibleAt);
    if (next !== Number.POSITIVE_INFINITY && this.running < this.maxConcurrency) this.schedule(next);
    this.notifyIdle();
  }

  /** Takes up to batchSize visible messages, moving over-received ones to the dead letters. */
  private receive(now: number): QueueMessage[] {
    const batch: QueueMessage[] = [];
    for (const m of this.messages.values()) {
      if (batch.length >= this.batchSize) break;
      if (m.receiptHandle || m.visibleAt > now) continue;
      if (m.receiveCount >= this.maxReceiveCount) {
        this.messages.delete(m.messageId);
        const letter: DeadLetter = {
          messageId: m.messageId,
          body: m.body,
          receiveCount: m.receiveCount,
          sentAt: new Date(m.sentAt).toISOString(),
          deadAt: new Date(now).toISOString(),
        };
        this.deadLetters.push(letter);
        this.deadLettered = true;
        this.log(
          `sqs: message ${m.messageId} moved to the dead-letter queue after ${m.receiveCount} receives (${summarize(m.body)})`,
        );
        continue;
      }
      m.receiveCount += 1;
      m.firstReceivedAt ??= now;
      m.receiptHandle = randomUUID();
      m.visibleAt = now + this.visibilityTimeoutMs;
      m.visibilityChanged = false;
      batch.push(m);
    }
    return batch;
  }

  private dispatch(batch: QueueMessage[]): void {
    this.running += 1;
    const event: SqsBatchEvent = { Records: batch.map((m) => this.record(m)) };
    const task = this.options
      .consume(event)
      .catch(
        (error: unknown): BatchOutcome => ({
          kind: 'error',
          error: error instanceof Error ? error : new Error(String(error)),
        }),
      )
      .then((outcome) => this.settle(batch, outcome))
      .finally(() => {
        this.running -= 1;
        this.inflight.delete(task);
        this.poll();
      });
    this.inflight.add(task);
  }

  private settle(batch: QueueMessage[], outcome: BatchOutcome): void {
    const ids = new Set(batch.map((m) => m.messageId));
    let failed: Set<string>;
    if (outcome.kind === 'error') {
      failed = ids;
      this.log(
        `sqs: batch of ${batch.length} failed as a whole (${outcome.error.message}); retry after the visibility timeout`,
      );
    } else if (outcome.failedIds.some((id) => !ids.has(id))) {
      // Lambda treats an unknown or empty itemIdentifier as a failure of the whole batch.
      failed = ids;
      this.log(`sqs: batchItemFailures named an unknown message id: the whole batch of ${batch.length} stays`);
    } else {
      failed = new Set(outcome.failedIds);
    }
    for (const m of batch) {
      if (failed.has(m.messageId)) {
        // Stays invisible until its visibility timeout passes, then is received again.
        m.receiptHandle = undefined;
      } else {
        this.messages.delete(m.messageId);
      }
    }
    this.persist();
    if (failed.size > 0 && outcome.kind === 'partial') {
      const now = Date.now();
      const waits = batch
        .filter((m) => failed.has(m.messageId))
        .map((m) => (m.visibilityChanged ? `${Math.max(0, m.visibleAt - now)} ms (set by its consumer)` : undefined));
      const set = waits.filter((w) => w !== undefined);
      this.log(
        set.length > 0
          ? `sqs: ${failed.size} of ${batch.length} message(s) will be redelivered after ${set.join(', ')}`
          : `sqs: ${failed.size} of ${batch.length} message(s) will be redelivered after ${this.visibilityTimeoutMs} ms`,
      );
    }
  }

  private record(m: QueueMessage): SqsRecord {
    return {
      messageId: m.messageId,
      receiptHandle: m.receiptHandle!,
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(m.receiveCount),
        SentTimestamp: String(m.sentAt),
        SenderId: 'AIDAS3LOCALSTACK',
        ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? Date.now()),
      },
      messageAttributes: {},
      md5OfBody: createHash('md5').update(m.body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: this.arn,
      awsRegion: this.region,
    };
  }

  private notifyIdle(): void {
    if (this.messages.size === 0 && this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** The object a dead letter was about, without the whole body. */
function summarize(body: string): string {
  try {
    const parsed = JSON.parse(body) as {
      Records?: { s3?: { bucket?: { name?: string }; object?: { key?: string } } }[];
    };
    const s3 = parsed.Records?.[0]?.s3;
    if (s3?.object?.key) return `s3://${s3.bucket?.name ?? '?'}/${s3.object.key}`;
  } catch {
    // not JSON: fall through
  }
  return `${body.length} bytes`;
}
