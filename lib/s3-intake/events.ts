/**
 * Reads one SQS message body as S3 sends it: an event notification `{Records:[…]}`
 * (possibly several records), the `s3:TestEvent` sent when notifications are configured,
 * or either of those wrapped in an SNS envelope (fan-out setups).
 */
import type { ObjectRef } from '../ledger/types';
import { MalformedMessageError } from './errors';
import { decodeS3EventKey } from './rules';

/** One ObjectCreated record, key already decoded. */
export interface ObjectCreatedRecord {
  bucket: string;
  key: string;
  /** The key exactly as the event carried it (URL-encoded). */
  rawKey: string;
  eventName: string;
  eventTime?: string;
  size?: number;
  eTag?: string;
  versionId?: string;
  sequencer?: string;
}

export type ParsedMessage =
  | { type: 'test' }
  | { type: 'records'; records: ObjectCreatedRecord[]; ignored: { eventName: string; key?: string }[] };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function parseMessageBody(body: string): ParsedMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new MalformedMessageError(`The message body is not JSON (${body.length} bytes)`);
  }
  if (isObject(parsed) && parsed.Type === 'Notification' && typeof parsed.Message === 'string') {
    return parseMessageBody(parsed.Message);
  }
  if (!isObject(parsed)) throw new MalformedMessageError('The message body is not a JSON object');
  if (parsed.Event === 's3:TestEvent') return { type: 'test' };
  if (!Array.isArray(parsed.Records))
    throw new MalformedMessageError('The message body has no Records array (not an S3 event notification)');

  const records: ObjectCreatedRecord[] = [];
  const ignored: { eventName: string; key?: string }[] = [];
  parsed.Records.forEach((raw, index) => {
    if (!isObject(raw) || !isObject(raw.s3) || !isObject(raw.s3.bucket) || !isObject(raw.s3.object)) {
      throw new MalformedMessageError(`Record ${index} is not an S3 event record`);
    }
    const eventName = str(raw.eventName) ?? '';
    const bucket = str(raw.s3.bucket.name);
    const rawKey = str(raw.s3.object.key);
    if (!bucket || !rawKey) throw new MalformedMessageError(`Record ${index} has no bucket name or object key`);
    if (!eventName.startsWith('ObjectCreated:')) {
      // Not ours to submit; its key is only logged, so an odd encoding must not fail the message.
      ignored.push({ eventName, key: rawKey });
      return;
    }
    let key: string;
    try {
      key = decodeS3EventKey(rawKey);
    } catch {
      throw new MalformedMessageError(`Record ${index} has a key that is not valid URL encoding`);
    }
    const object = raw.s3.object;
    const record: ObjectCreatedRecord = { bucket, key, rawKey, eventName };
    const eventTime = str(raw.eventTime);
    if (eventTime) record.eventTime = eventTime;
    if (typeof object.size === 'number') record.size = object.size;
    const eTag = str(object.eTag);
    if (eTag) record.eTag = eTag;
    // `null` is what S3 sends for an unversioned object's versionId in some paths.
    const versionId = str(object.versionId);
    if (versionId && versionId !== 'null') record.versionId = versionId;
    const sequencer = str(object.sequencer);
    if (sequencer) record.sequencer = sequencer;
    records.push(record);
  });
  return { type: 'records', records, ignored };
}

/** The event name of a message iva-bridge sends itself to submit an object again (resubmit). */
export const RESUBMIT_EVENT_NAME = 'ObjectCreated:Resubmitted';

/**
 * An S3 event notification body for one object, as S3 would send it (key form-encoded),
 * so the intake submits it by the same path as any upload: POST
 * /v1/submissions/{id}/resubmit queues one.
 */
export function objectCreatedMessage(object: ObjectRef): string {
  const encodedKey = encodeURIComponent(object.key).replace(/%20/g, '+');
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: RESUBMIT_EVENT_NAME,
        eventTime: new Date().toISOString(),
        s3: {
          bucket: { name: object.bucket },
          object: {
            key: encodedKey,
            ...(object.size !== undefined ? { size: object.size } : {}),
            ...(object.eTag !== undefined ? { eTag: object.eTag } : {}),
            ...(object.versionId !== undefined ? { versionId: object.versionId } : {}),
            ...(object.sequencer !== undefined ? { sequencer: object.sequencer } : {}),
          },
        },
      },
    ],
  });
}
