/**
 * The sandbox as two Lambda handlers' logic, for a `-c ivaMode=sandbox` stack
 * (functions/iva-sandbox, functions/iva-sandbox-callbacks). The request handling is
 * the local sandbox's own (core.ts); only the callback differs. The local server posts
 * it from a timer after answering, but a Lambda function is frozen as soon as it has
 * answered, so a timer would fire (if ever) during some later invocation. Instead the
 * submit handler puts the callback on an SQS queue before answering (the queue's
 * delivery delay plays IVA's analysis time) and the sender posts it: a failed POST is
 * retried by SQS after the visibility timeout and ends in the queue's DLQ, as IVA
 * retries a callback a few times.
 */
import type { CachedSecret } from '../../lib/secrets/index';
import type { VolcCredentials } from '../../lib/signer/index';
import type { LoggerPort } from '../../lib/observability';
import { silentLogger } from '../../lib/observability';
import {
  acceptSubmission,
  callbackBody,
  describeFetchError,
  errorAnswer,
  newRequestId,
  responseMetadata,
} from './core';
import { SandboxError } from './errors';

/** What the sender needs to post one callback. Holds no secret (the URL is built by the sender). */
export interface CallbackMessage {
  taskId: string;
  dataId: string;
  /** The JSON body to post, exactly as the local sandbox would. */
  body: string;
}

export interface CallbackQueuePort {
  send(message: CallbackMessage): Promise<void>;
}

/** The parts of a Lambda function URL event (payload 2.0) the sandbox reads. */
export interface FunctionUrlRequest {
  rawPath: string;
  rawQueryString: string;
  headers: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded: boolean;
  requestContext: { http: { method: string } };
}

export interface FunctionUrlAnswer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface QueuedSandboxDeps {
  /** The key pair IVA clients sign with (the stack's generated sandbox secret). */
  credentials: CachedSecret<VolcCredentials>;
  region: string;
  service: string;
  queue: CallbackQueuePort;
  logger?: LoggerPort;
  downloadTimeoutMs?: number;
}

/**
 * Answers one IVA request the way the local sandbox does. An accepted submission's
 * callback is enqueued before the answer: a submission IVA answered 200 is always called
 * back, and one whose callback could not be queued is answered 500 (IVA did not take it).
 */
export async function answerIvaRequest(event: FunctionUrlRequest, deps: QueuedSandboxDeps): Promise<FunctionUrlAnswer> {
  const log = deps.logger ?? silentLogger;
  const url = new URL(
    `${event.rawPath || '/'}${event.rawQueryString ? `?${event.rawQueryString}` : ''}`,
    'https://sandbox.invalid',
  );
  const requestId = newRequestId();
  const meta = responseMetadata(url, requestId, deps.service, deps.region);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {}))
    if (value !== undefined) headers[name.toLowerCase()] = value;
  try {
    const credentials = await deps.credentials.get();
    const { submission, result } = await acceptSubmission(
      {
        method: event.requestContext.http.method,
        url,
        headers,
        body: Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8'),
      },
      requestId,
      {
        keys: new Map([[credentials.accessKeyId, credentials]]),
        region: deps.region,
        service: deps.service,
        ...(deps.downloadTimeoutMs !== undefined ? { downloadTimeoutMs: deps.downloadTimeoutMs } : {}),
      },
    );
    await deps.queue.send({
      taskId: submission.taskId,
      dataId: submission.dataId,
      body: callbackBody(submission, 'success'),
    });
    log.info('Sandbox accepted a submission', {
      action: submission.action,
      taskId: submission.taskId,
      dataId: submission.dataId,
      size: submission.size,
      requestId,
    });
    return json(200, { ResponseMetadata: meta, Result: result });
  } catch (err) {
    if (!(err instanceof SandboxError))
      log.error('Sandbox failed on a request', {
        requestId,
        errorName: (err as Error)?.name,
        errorMessage: (err as Error)?.message,
      });
    else log.info('Sandbox refused a request', { requestId, code: err.code });
    const answer = errorAnswer(err, meta);
    return json(answer.status, answer.body);
  }
}

export interface CallbackSenderDeps {
  /** The callback URL registered with IVA (it holds the receiver's secret: never logged). */
  callbackUrl: () => Promise<string>;
  timeoutMs?: number;
  logger?: LoggerPort;
}

export interface QueuedRecord {
  messageId: string;
  body: string;
}

/**
 * Posts each queued callback; the ones not answered 2xx are returned as batch item
 * failures, so SQS delivers them again after the visibility timeout.
 */
export async function sendCallbacks(
  records: readonly QueuedRecord[],
  deps: CallbackSenderDeps,
): Promise<{ batchItemFailures: Array<{ itemIdentifier: string }> }> {
  const log = deps.logger ?? silentLogger;
  const failures: Array<{ itemIdentifier: string }> = [];
  const target = await deps.callbackUrl();
  await Promise.all(
    records.map(async (record) => {
      let message: CallbackMessage;
      try {
        message = JSON.parse(record.body) as CallbackMessage;
        if (typeof message.body !== 'string') throw new Error('no body');
      } catch {
        // Not ours: retrying cannot fix it; dropping it is what IVA would do with garbage.
        log.error('Dropped a queued callback that is not a sandbox callback message', { messageId: record.messageId });
        return;
      }
      let outcome: string;
      try {
        const res = await fetch(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: message.body,
          signal: AbortSignal.timeout(deps.timeoutMs ?? 5_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        outcome = res.ok ? 'delivered' : `receiver answered HTTP ${res.status}`;
      } catch (err) {
        outcome = describeFetchError(err);
      }
      // The URL's origin only: its path is the receiver's secret.
      const fields = { dataId: message.dataId, taskId: message.taskId, to: new URL(target).origin, outcome };
      if (outcome === 'delivered') log.info('Sandbox callback delivered', fields);
      else {
        log.warn('Sandbox callback not delivered; SQS retries it', fields);
        failures.push({ itemIdentifier: record.messageId });
      }
    }),
  );
  return { batchItemFailures: failures };
}

function json(statusCode: number, body: unknown): FunctionUrlAnswer {
  return { statusCode, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}
