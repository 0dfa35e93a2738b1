/**
 * The signature Volcengine's own Node signer (`@volcengine/openapi`, a dev dependency:
 * local and test code, and the sandbox function of a `-c ivaMode=sandbox` stack, whose
 * bundle carries it) computes for a request as it was received. The sandbox and
 * the test gateway check signatures with it rather than with lib/signer, so a mistake in
 * lib/signer (a swapped region and service in the signing key, a wrong escape) fails
 * every flow that signs instead of agreeing with itself.
 */
import * as signModule from '@volcengine/openapi/lib/base/sign.js';

interface OfficialSigner {
  isSignableHeader(lowerCaseName: string): boolean;
  signature(
    credentials: { accessKeyId: string; secretKey: string; sessionToken?: string },
    datetime: string,
  ): { toString(): string };
}
type OfficialSignerClass = new (
  request: {
    region: string;
    method: string;
    pathname: string;
    params: Record<string, string | string[]>;
    headers: Record<string, string>;
  },
  service: string,
  options?: { bodySha256?: string },
) => OfficialSigner;

/**
 * The vendor's signer, a CommonJS module with `exports.default`. A static import so that
 * esbuild bundles it into the sandbox function; Node's ESM loader hands the whole
 * `module.exports` as `default`, a bundler the class itself, so both shapes are read.
 */
const Signer: OfficialSignerClass = (() => {
  const imported = (signModule as unknown as { default: OfficialSignerClass | { default: OfficialSignerClass } })
    .default;
  return typeof imported === 'function' ? imported : imported.default;
})();

export interface OfficialSignatureInput {
  method: string;
  path: string;
  query: Readonly<Record<string, string | readonly string[] | undefined | null>>;
  /** A received header's value by lower-case name. */
  header(name: string): string | undefined;
  /** The lower-case header names the client listed in SignedHeaders. */
  signedHeaders: readonly string[];
  /** Hex SHA-256 of the body the signature is to cover. */
  bodySha256: string;
  /** The scope the client named. */
  region: string;
  service: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  xDate: string;
}

/**
 * The expected signature. The gateway verifies exactly the headers the client listed
 * (the Go SDK signs content-type, the Node SDK does not), so the vendor's signer is told
 * to sign that list instead of its own fixed choice; everything else — canonical query,
 * header and value canonicalization, scope, signing key, HMAC — is the vendor's code.
 */
export function officialSignature(input: OfficialSignatureInput): string {
  const listed = new Set(input.signedHeaders);
  const headers: Record<string, string> = {};
  for (const name of listed) {
    // The vendor's signer reads the body hash from exactly `X-Content-Sha256`; every other
    // header name it lower-cases itself.
    headers[name === 'x-content-sha256' ? 'X-Content-Sha256' : name] = input.header(name) ?? '';
  }
  const params: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(input.query)) {
    if (value === undefined || value === null) continue;
    params[name] = typeof value === 'string' ? value : [...value];
  }
  const signer = new Signer(
    { region: input.region, method: input.method, pathname: input.path, params, headers },
    input.service,
    { bodySha256: input.bodySha256 },
  );
  signer.isSignableHeader = (name) => listed.has(name);
  return signer
    .signature(
      {
        accessKeyId: input.accessKeyId,
        secretKey: input.secretAccessKey,
        ...(input.sessionToken ? { sessionToken: input.sessionToken } : {}),
      },
      input.xDate,
    )
    .toString();
}
