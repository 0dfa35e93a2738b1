/**
 * Volcengine's own Node signer (`@volcengine/openapi`, a dev dependency), loaded the one
 * way the tests and benches need it: as the oracle lib/signer must agree with, and as the
 * vendor client the authorizer must accept unchanged. Its form-data copy is exported too:
 * the signer recognises a FormData body only by `instanceof` of its own copy.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const SIGNER_PATH = require.resolve('@volcengine/openapi/lib/base/sign.js');

export interface OracleRequest {
  region: string;
  method: string;
  params: Record<string, unknown>;
  headers: Record<string, string>;
  body?: unknown;
  pathname?: string;
}

export type OracleSigner = new (
  request: OracleRequest,
  service: string,
  options?: { bodySha256?: string },
) => {
  addAuthorization(credentials: { accessKeyId: string; secretKey: string; sessionToken?: string }, date?: Date): void;
};

export const Signer = (require(SIGNER_PATH) as { default: OracleSigner }).default;

/** The SDK's own copy of form-data, as its Service builds form bodies. */
export const OracleFormData = require(
  require.resolve('form-data', { paths: [SIGNER_PATH] }),
) as typeof import('form-data');
