/**
 * The asynchronous half of a callback (README.md in this folder, "How a callback
 * travels"): API Gateway has already PUT the exact body to
 * `callbacks-inbox/<request id>` and answered 2xx; an S3 event names that object, and
 * this files it exactly as a direct call would (handle.ts `storeAndAnnounce`: the
 * content-addressed copy under results/, the ledger, one event), then deletes the inbox
 * object. The delete is the last step, so a crash or a transient failure anywhere before
 * it leaves the object where it is and the redelivered event (or a later redrive)
 * completes it; every step is idempotent on the body's SHA-256.
 *
 * Outcomes, all final (the inbox object is gone afterwards):
 * - `stored`: filed (or found filed by an earlier delivery) and announced once;
 * - `malformed`: declared JSON that does not parse, kept under results/_unmatched/;
 * - `empty`: an empty (or blank) body, of which nothing is kept;
 * - `gone`: no inbox object any more (an earlier delivery of the event finished it).
 * Transient failures throw a RetryableCallbackError (or whatever the SDK threw) and
 * leave the inbox object in place.
 */
import { DeleteObjectCommand, GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorName, s3ObjectAbsence } from '../aws/errors';
import { CALLBACK_INBOX_PREFIX } from '../storage/prefixes';
import { METRIC, MetricUnit, noMetrics, silentLogger } from '../observability';
import { CallbackError, MalformedJsonError, StorageUnavailableError } from './errors';
import { INBOX_METADATA } from './inbox-metadata';
import { decodeS3EventKey } from '../s3-intake/rules';
import { type CallbackAnswer, type StoreDeps, storeAndAnnounce } from './handle';

/** What S3 calls an object stored without a Content-Type. */
const S3_DEFAULT_CONTENT_TYPE = 'binary/octet-stream';

export { INBOX_METADATA };

export type InboxOutcome =
  | { kind: 'stored'; key: string; answer: CallbackAnswer }
  | { kind: 'malformed'; key: string; stored?: string }
  | { kind: 'empty'; key: string }
  | { kind: 'gone'; key: string };

export function isInboxKey(key: string): boolean {
  return key.startsWith(CALLBACK_INBOX_PREFIX) && key.length > CALLBACK_INBOX_PREFIX.length;
}

interface InboxObject {
  bytes: Buffer;
  contentType?: string;
  requestId?: string;
  receivedAt: string;
}

async function readInbox(s3: S3Client, bucket: string, key: string, now: Date): Promise<InboxObject | undefined> {
  let out: GetObjectCommandOutput;
  try {
    out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if (s3ObjectAbsence(error) !== undefined) return undefined;
    throw new StorageUnavailableError(`GetObject of the inbox object failed: ${awsErrorName(error)}`);
  }
  const bytes = Buffer.from((await out.Body?.transformToByteArray()) ?? new Uint8Array());
  const metadata = out.Metadata ?? {};
  const declared = metadata[INBOX_METADATA.contentType]?.trim();
  // Without the declared type (older inbox objects, a gateway that did not map it), the
  // object's own type, unless it is S3's default for "none given".
  const contentType =
    declared || (out.ContentType && out.ContentType !== S3_DEFAULT_CONTENT_TYPE ? out.ContentType : undefined);
  const epoch = Number(metadata[INBOX_METADATA.requestTimeEpoch]);
  const receivedAt =
    Number.isFinite(epoch) && epoch > 0 ? new Date(epoch).toISOString() : (out.LastModified ?? now).toISOString();
  const requestId = metadata[INBOX_METADATA.requestId] || undefined;
  return {
    bytes,
    receivedAt,
    ...(contentType ? { contentType } : {}),
    ...(requestId ? { requestId } : {}),
  };
}

async function deleteInbox(s3: S3Client, bucket: string, key: string): Promise<void> {
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    // Filed and announced already; the redelivery finds it all done and deletes again.
    throw new StorageUnavailableError(`DeleteObject of the inbox object failed: ${awsErrorName(error)}`);
  }
}

/** Files one inbox object (`key` under callbacks-inbox/) and deletes it; see the header. */
export async function processInboxObject(deps: StoreDeps, key: string): Promise<InboxOutcome> {
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? noMetrics;
  const count = (name: string) => metrics.addMetric(name, MetricUnit.Count, 1);
  if (!isInboxKey(key)) throw new Error(`not an inbox key: ${key}`);
  const inbox = await readInbox(deps.s3, deps.bucket, key, deps.now?.() ?? new Date());
  if (!inbox) {
    log.info('Inbox object already processed', { inboxKey: key });
    return { kind: 'gone', key };
  }
  count(METRIC.callbacksReceived);
  if (inbox.bytes.length === 0 || inbox.bytes.toString('utf8').trim() === '') {
    count(METRIC.callbacksRejected);
    log.warn('Callback body is empty; nothing to keep', { inboxKey: key, requestId: inbox.requestId });
    await deleteInbox(deps.s3, deps.bucket, key);
    return { kind: 'empty', key };
  }
  let answer: CallbackAnswer;
  try {
    answer = await storeAndAnnounce(deps, inbox, log, count, metrics);
  } catch (error) {
    if (error instanceof MalformedJsonError) {
      // Permanent: kept under _unmatched/ (storeAndAnnounce logged it); retrying changes nothing.
      count(METRIC.callbacksRejected);
      await deleteInbox(deps.s3, deps.bucket, key);
      return { kind: 'malformed', key, ...(error.stored ? { stored: error.stored } : {}) };
    }
    if (error instanceof CallbackError)
      log.warn('Callback not filed yet; the inbox object stays for the retry', {
        inboxKey: key,
        code: error.code,
      });
    throw error;
  }
  await deleteInbox(deps.s3, deps.bucket, key);
  return { kind: 'stored', key, answer };
}

/**
 * The inbox keys an S3 event notification names (the body of one SQS message): only
 * ObjectCreated records under callbacks-inbox/, keys URL-decoded as S3 encodes them.
 * S3's `s3:TestEvent` (sent once when the notification is configured) names none.
 * Throws on a body that is not JSON: such a message can never be processed.
 */
export function inboxKeysIn(body: string): string[] {
  const parsed = JSON.parse(body) as { Records?: unknown };
  if (!Array.isArray(parsed.Records)) return [];
  const keys: string[] = [];
  for (const record of parsed.Records as { eventName?: unknown; s3?: { object?: { key?: unknown } } }[]) {
    const raw = record?.s3?.object?.key;
    if (typeof raw !== 'string' || typeof record.eventName !== 'string') continue;
    if (!record.eventName.replace(/^s3:/, '').startsWith('ObjectCreated:')) continue;
    const key = decodeS3EventKey(raw);
    if (isInboxKey(key)) keys.push(key);
  }
  return keys;
}
