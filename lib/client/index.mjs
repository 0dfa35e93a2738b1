// `import … from 'iva-bridge/client'` for plain Node.js: the library is TypeScript, so
// tsx's loader compiles it on the fly (as bin/iva-bridge.mjs does for the CLI).
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
const client = await import('./index.ts');

export const {
  IvaBridgeClient,
  createIvaBridgeClient,
  contentTypeOf,
  IDEMPOTENCY_KEY_HEADER,
  DEFAULT_MULTIPART_THRESHOLD_BYTES,
  DEFAULT_PART_CONCURRENCY,
  resolveConnection,
  connectionFromStack,
  CONNECTION_ENV,
  IvaBridgeError,
  IvaBridgeInputError,
  IvaBridgeNetworkError,
  isRetryableStatus,
  regionOfApiUrl,
  FINAL_STATUSES,
} = client;
