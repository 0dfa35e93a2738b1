export * from './errors';
export { secretMatches, redactPath, REDACTED_CALLBACK_PATH } from './auth';
export {
  bodyBytes,
  parseBody,
  parseForm,
  mediaType,
  MAX_CALLBACK_BYTES,
  type BodyFormat,
  type ParsedBody,
} from './parse';
export { identify, isMatchable, normalizeStatus, type CallbackIdentity } from './identify';
export {
  resultKey,
  placeResult,
  type Placement,
  type UnmatchedReason,
  keySegment,
  putOnce,
  UNMATCHED_PREFIX,
  EMITTED_PREFIX,
  type StoredObject,
  type StoreOutcome,
} from './store';
export {
  createEventBridgePublisher,
  createMemoryPublisher,
  EVENT_SOURCE,
  RESULT_STORED_DETAIL_TYPE,
  type EventPublisher,
  type MemoryPublisher,
  type ResultStoredDetail,
} from './events';
export {
  handleCallback,
  type CallbackAnswer,
  type CallbackDeps,
  type CallbackRequest,
} from './handle';
export { processInboxObject, inboxKeysIn, isInboxKey, INBOX_METADATA, type InboxOutcome } from './inbox';
export { storeAndAnnounce, type AcceptedBody, type StoreDeps } from './handle';
export { authorizeCallback, type CallbackAuthDecision } from './authorize';
