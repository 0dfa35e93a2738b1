/**
 * iva-bridge's HTTP API client for Node.js users of this package:
 *
 *   import { createIvaBridgeClient, resolveConnection } from 'iva-bridge/client';
 *   const client = createIvaBridgeClient(await resolveConnection());
 *   const sent = await client.sendFile({ path: 'cat.jpg', taskId: 'my-task' });
 *   await client.waitFor(sent.submissionId);
 *   const { bytes, contentType } = await client.getResult(sent.submissionId);
 */
export {
  IvaBridgeClient,
  createIvaBridgeClient,
  contentTypeOf,
  IDEMPOTENCY_KEY_HEADER,
  DEFAULT_MULTIPART_THRESHOLD_BYTES,
  DEFAULT_PART_CONCURRENCY,
  type IvaBridgeClientOptions,
  type RetryOptions,
  type SendFileInput,
  type WaitOptions,
} from './client';
export {
  resolveConnection,
  connectionFromStack,
  CONNECTION_ENV,
  type AuthMode,
  type Connection,
  type ConnectionInput,
} from './connection';
export { regionOfApiUrl, type AwsCredentials, type AwsCredentialsProvider, type AwsSigning } from './signing';
export { IvaBridgeError, IvaBridgeInputError, IvaBridgeNetworkError, isRetryableStatus } from './errors';
export * from './types';
