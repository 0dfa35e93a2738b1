/**
 * The user metadata API Gateway's integration writes on each inbox object (infra/stack.ts
 * maps them, the local gateway writes the same, lib/callback/inbox.ts reads them). Plain
 * constants, so infra/ imports them without the SDK.
 */
export const INBOX_METADATA = {
  /** `$context.requestId`, also the object's name under callbacks-inbox/. */
  requestId: 'request-id',
  /** `$context.requestTimeEpoch`: when API Gateway received the request, in ms. */
  requestTimeEpoch: 'request-time-epoch',
  /** The Content-Type the sender declared (absent when it sent none). */
  contentType: 'declared-content-type',
} as const;
