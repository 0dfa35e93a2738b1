/**
 * The events consumers subscribe to, all with source `iva-bridge` (README.md in this
 * folder): `IVA Result Stored`, one per newly stored result, and `IVA Submission
 * Uncertain`, one per submission whose fate at IVA is unknown (its owner must resolve it).
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import type { MediaKind } from '../iva/types';
import { sdkRequestHandler } from '../aws/sdk-http';
import type { ResultStatus, SubmissionSource } from '../ledger/types';
import { EventPublishError } from './errors';
import type { StoredObject } from './store';
import { awsErrorName } from '../aws/errors';

export const EVENT_SOURCE = 'iva-bridge';
export const RESULT_STORED_DETAIL_TYPE = 'IVA Result Stored';

export interface ResultStoredDetail {
  taskId?: string;
  dataId: string;
  kind?: MediaKind;
  status: ResultStatus;
  rawStatus?: string;
  /** Present when the data id's submission is already known to the ledger. */
  submissionId?: string;
  /**
   * Whether this result is the one its data id shows now: false for a non-final after a
   * final, or a second, different final (the first final wins; ledger RESULT_ORDER).
   */
  applied: boolean;
  location: StoredObject;
  receivedAt: string;
}

export interface EventPublisher {
  /** Resolves once the bus accepted the event; throws EventPublishError otherwise. */
  publishResultStored(detail: ResultStoredDetail): Promise<void>;
}

export interface EventBridgePublisherOptions {
  client?: EventBridgeClient;
  /** A bus name or ARN; `default` when omitted. */
  eventBusName?: string;
}

/** Puts one entry; throws with the reason when the bus refuses it or cannot be reached. */
async function putEntry(
  client: EventBridgeClient,
  eventBusName: string,
  detailType: string,
  detail: unknown,
  time: Date,
): Promise<void> {
  let out: PutEventsCommandOutput;
  try {
    out = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: EVENT_SOURCE,
            DetailType: detailType,
            Detail: JSON.stringify(detail),
            EventBusName: eventBusName,
            Time: time,
          },
        ],
      }),
    );
  } catch (error) {
    throw new Error(`PutEvents failed: ${awsErrorName(error)}`);
  }
  // PutEvents answers 200 even when an entry is refused: the count is the only signal.
  if ((out.FailedEntryCount ?? 0) > 0) {
    const entry = out.Entries?.find((e) => e.ErrorCode) ?? out.Entries?.[0];
    throw new Error(
      `PutEvents refused the entry: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim(),
    );
  }
}

export function createEventBridgePublisher(options: EventBridgePublisherOptions = {}): EventPublisher {
  const client = options.client ?? new EventBridgeClient({ requestHandler: sdkRequestHandler() });
  const eventBusName = options.eventBusName || 'default';
  return {
    async publishResultStored(detail) {
      try {
        await putEntry(client, eventBusName, RESULT_STORED_DETAIL_TYPE, detail, new Date(detail.receivedAt));
      } catch (error) {
        throw new EventPublishError((error as Error).message);
      }
    },
  };
}

export const SUBMISSION_UNCERTAIN_DETAIL_TYPE = 'IVA Submission Uncertain';

/**
 * A submission whose answer from IVA was lost after it was sent (lib/iva/README.md): IVA
 * may or may not have it. Nothing resubmits it; its owner resolves it (resubmit, or mark
 * it submitted/failed) through the API or the CLI.
 */
export interface SubmissionUncertainDetail {
  submissionId: string;
  source: SubmissionSource;
  taskId?: string;
  kind?: MediaKind;
  name?: string;
  /** The ambiguous failure: ConnectionLostAfterSend, TimeoutAfterSend, UnreadableResponse. */
  code: string;
  message: string;
  /** When the request could first reach IVA, and when the failure was seen (ISO 8601). */
  sentAt?: string;
  failedAt: string;
}

export interface SubmissionEventPublisher {
  /** Resolves once the bus accepted the event; throws (with the reason) otherwise. */
  publishSubmissionUncertain(detail: SubmissionUncertainDetail): Promise<void>;
}

export function createSubmissionEventPublisher(options: EventBridgePublisherOptions = {}): SubmissionEventPublisher {
  const client = options.client ?? new EventBridgeClient({ requestHandler: sdkRequestHandler() });
  const eventBusName = options.eventBusName || 'default';
  return {
    publishSubmissionUncertain: (detail) =>
      putEntry(client, eventBusName, SUBMISSION_UNCERTAIN_DETAIL_TYPE, detail, new Date(detail.failedAt)),
  };
}

/** Keeps events in memory: for tests and `npm start`, where there is no EventBridge. */
export interface MemoryPublisher extends EventPublisher {
  readonly events: ResultStoredDetail[];
}

export function createMemoryPublisher(onEvent?: (detail: ResultStoredDetail) => void): MemoryPublisher {
  const events: ResultStoredDetail[] = [];
  return {
    events,
    async publishResultStored(detail) {
      events.push(detail);
      onEvent?.(detail);
    },
  };
}
