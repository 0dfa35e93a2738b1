/**
 * Turns whatever a local S3 emits (s3rver's in-process events, Ceph RGW's HTTP pushes)
 * into the S3 event notification AWS puts on the SQS queue: one record per message,
 * eventVersion 2.1, eventSource aws:s3, the key URL-encoded the way AWS does it
 * (form encoding: `+` for space, `/` kept), eTag without quotes, a sequencer that grows
 * per upload. Only ObjectCreated events under the configured prefix pass, like the
 * deployed bucket notification's prefix filter.
 */
import { randomBytes } from 'node:crypto';
import { decodeS3EventKey } from '../../lib/s3-intake/rules';
import { encodeS3EventKey } from '../servers/s3rver';

export interface AwsS3EventRecord {
  eventVersion: '2.1';
  eventSource: 'aws:s3';
  awsRegion: string;
  eventTime: string;
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: { 'x-amz-request-id': string; 'x-amz-id-2': string };
  s3: {
    s3SchemaVersion: '1.0';
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size: number; eTag?: string; versionId?: string; sequencer: string };
  };
}

/** What a backend told us, with the key RAW (decoded). */
export interface ObjectCreatedFact {
  bucket: string;
  key: string;
  eventName: string;
  size?: number;
  eTag?: string;
  versionId?: string;
  sourceIp?: string;
  eventTime?: string;
}

let lastSequencer = 0n;

/**
 * AWS sequencers are hex strings that grow for successive events on one key. s3rver uses
 * Date.now(), which repeats within a millisecond, so the stack issues its own.
 */
function nextSequencer(): string {
  const candidate = BigInt(Date.now()) * 1_000_000n;
  lastSequencer = candidate > lastSequencer ? candidate : lastSequencer + 1n;
  return lastSequencer.toString(16).toUpperCase().padStart(18, '0');
}

/** Plain event name: Ceph may prefix `s3:`. */
export function normalizeEventName(name: string): string {
  return name.replace(/^s3:/, '');
}

export function awsRecord(fact: ObjectCreatedFact, region = 'us-east-1'): AwsS3EventRecord {
  const eTag = fact.eTag?.replace(/"/g, '') || undefined;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: region,
    eventTime: fact.eventTime || new Date().toISOString(),
    eventName: normalizeEventName(fact.eventName),
    userIdentity: { principalId: 'AWS:AIDALOCALSTACKUSER' },
    requestParameters: { sourceIPAddress: fact.sourceIp || '127.0.0.1' },
    responseElements: {
      'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase(),
      'x-amz-id-2': randomBytes(32).toString('base64'),
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'iva-bridge-incoming',
      bucket: {
        name: fact.bucket,
        ownerIdentity: { principalId: 'LOCALSTACKOWNER' },
        arn: `arn:aws:s3:::${fact.bucket}`,
      },
      object: {
        key: encodeS3EventKey(fact.key),
        size: fact.size ?? 0,
        ...(eTag ? { eTag } : {}),
        ...(fact.versionId && fact.versionId !== 'null' ? { versionId: fact.versionId } : {}),
        sequencer: nextSequencer(),
      },
    },
  };
}

/** The bucket notification's filter (events `s3:ObjectCreated:*`, key prefix and suffix from the template). */
export function passesFilter(
  fact: ObjectCreatedFact,
  bucket: string,
  filter: { prefix?: string; suffix?: string },
): boolean {
  return (
    fact.bucket === bucket &&
    normalizeEventName(fact.eventName).startsWith('ObjectCreated:') &&
    fact.key.startsWith(filter.prefix ?? '') &&
    fact.key.endsWith(filter.suffix ?? '')
  );
}

interface RawRecord {
  eventName?: unknown;
  eventTime?: unknown;
  requestParameters?: { sourceIPAddress?: unknown };
  s3?: {
    bucket?: { name?: unknown };
    object?: { key?: unknown; size?: unknown; eTag?: unknown; etag?: unknown; versionId?: unknown };
  };
}

/**
 * Facts from a notification body. `keysEncoded` says whether the backend already
 * URL-encoded the keys (local/servers' s3rver wrapper does; Ceph sends them raw).
 */
export function factsFrom(notification: unknown, keysEncoded: boolean): ObjectCreatedFact[] {
  const records = (notification as { Records?: unknown })?.Records;
  if (!Array.isArray(records)) return [];
  const facts: ObjectCreatedFact[] = [];
  for (const r of records as RawRecord[]) {
    const name = r?.s3?.bucket?.name;
    const rawKey = r?.s3?.object?.key;
    if (typeof name !== 'string' || typeof rawKey !== 'string' || typeof r.eventName !== 'string') continue;
    const object = r.s3!.object!;
    const eTag =
      typeof object.eTag === 'string' ? object.eTag : typeof object.etag === 'string' ? object.etag : undefined;
    facts.push({
      bucket: name,
      key: keysEncoded ? decodeS3EventKey(rawKey) : rawKey,
      eventName: r.eventName,
      ...(typeof object.size === 'number'
        ? { size: object.size }
        : typeof object.size === 'string'
          ? { size: Number(object.size) }
          : {}),
      ...(eTag ? { eTag } : {}),
      ...(typeof object.versionId === 'string' && object.versionId ? { versionId: object.versionId } : {}),
      ...(typeof r.eventTime === 'string' && r.eventTime ? { eventTime: r.eventTime } : {}),
      ...(typeof r.requestParameters?.sourceIPAddress === 'string'
        ? { sourceIp: r.requestParameters.sourceIPAddress }
        : {}),
    });
  }
  return facts;
}
