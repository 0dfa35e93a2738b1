/**
 * The one event consumers subscribe to: source `iva-bridge`, detail-type
 * `IVA Result Stored`, one per newly stored result (README.md in this folder).
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import type { MediaKind } from '../iva/types';
import { sdkRequestHandler } from '../storage/sdk-http';
import type { ResultStatus } from '../ledger/types';
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

export function createEventBridgePublisher(options: EventBridgePublisherOptions = {}): EventPublisher {
  const client = options.client ?? new EventBridgeClient({ requestHandler: sdkRequestHandler() });
  const eventBusName = options.eventBusName || 'default';
  return {
    async publishResultStored(detail) {
      let out: PutEventsCommandOutput;
      try {
        out = await client.send(
          new PutEventsCommand({
            Entries: [
              {
                Source: EVENT_SOURCE,
                DetailType: RESULT_STORED_DETAIL_TYPE,
                Detail: JSON.stringify(detail),
                EventBusName: eventBusName,
                Time: new Date(detail.receivedAt),
              },
            ],
          }),
        );
      } catch (error) {
        throw new EventPublishError(`PutEvents failed: ${awsErrorName(error)}`);
      }
      // PutEvents answers 200 even when an entry is refused: the count is the only signal.
      if ((out.FailedEntryCount ?? 0) > 0) {
        const entry = out.Entries?.find((e) => e.ErrorCode) ?? out.Entries?.[0];
        throw new EventPublishError(
          `PutEvents refused the entry: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim(),
        );
      }
    },
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
