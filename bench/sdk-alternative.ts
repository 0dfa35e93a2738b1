/**
 * The obvious alternative both benches compare against: the `form-data` package builds
 * the whole multipart body, and the official @volcengine/openapi Signer signs it. Used
 * only by benchmarks (the SDK is a dev dependency).
 */
import { createHash } from 'node:crypto';
import { OracleFormData, Signer } from '../test/support/oracle-signer';

/** The SDK's own copy of form-data: its Signer recognises a FormData body only by instanceof. */
export const SdkFormData = OracleFormData;

export const BENCH_CREDENTIALS = { accessKeyId: 'AKLTbench', secretAccessKey: 'bench-secret' };

/**
 * Signs a form-data body the SDK way and returns the headers and the joined body to send.
 * `nodeHash` gives the Signer a node:crypto SHA-256 instead of letting it hash with
 * crypto-js, to separate the cost of copying from the cost of the SDK's hashing.
 */
export function sdkSign(
  form: InstanceType<typeof SdkFormData>,
  host: string,
  nodeHash: boolean,
): { headers: Record<string, string>; body: Buffer } {
  const headers: Record<string, string> = { Host: host, 'Content-Type': form.getHeaders()['content-type'] as string };
  const req = {
    region: 'cn-north-1',
    method: 'POST',
    pathname: '/',
    params: { Action: 'AddAsyncTaskImageData', Version: '2022-05-13' },
    headers,
    body: form as unknown,
  };
  const credentials = { accessKeyId: BENCH_CREDENTIALS.accessKeyId, secretKey: BENCH_CREDENTIALS.secretAccessKey };
  let body: Buffer;
  if (nodeHash) {
    body = form.getBuffer();
    new Signer(req, 'iva', { bodySha256: createHash('sha256').update(body).digest('hex') }).addAuthorization(
      credentials,
    );
  } else {
    // What the SDK's own Service does: the Signer calls form.getBuffer() and hashes it with crypto-js.
    new Signer(req, 'iva').addAuthorization(credentials);
    body = form.getBuffer();
  }
  return { headers: req.headers, body };
}
