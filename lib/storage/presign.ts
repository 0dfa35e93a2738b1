/**
 * Presigned GET URLs that IVA fetches (Source=url).
 *
 * A SigV4 URL signed with temporary credentials (the Lambda role's) stops working when
 * those credentials expire, whatever `X-Amz-Expires` says. So: the TTL is configured
 * (PRESIGN_TTL_SECONDS), long-lived keys can sign instead (PRESIGN_SECRET_ARN, a
 * Secrets Manager secret `{"accessKeyId","secretAccessKey"}`), and every URL whose TTL
 * outlives its signing credentials comes back with a warning for the caller to log.
 * SigV4 caps a presigned URL at 7 days; a longer TTL is capped, with a warning.
 *
 * The clients come from createS3Client (checksums WHEN_REQUIRED), so the URL carries no
 * `x-amz-checksum-mode`/`x-amz-checksum-*` parameter a plain GET could not satisfy.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DEFAULTS, ENV, number, optional, type Env } from '../config';
import { cachedSecret, parseKeyPair, type CachedSecret, type SecretSourceOptions } from '../secrets/index';
import { signingS3Client, type RoleSigningClientOptions } from './role-session';
import { createS3Client } from './s3-client';

/** SigV4's longest presigned URL lifetime. */
export const PRESIGN_MAX_SECONDS = 7 * 24 * 60 * 60;

export interface AwsKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface ObjectVersionRef {
  bucket: string;
  key: string;
  /** Signed into the URL when present, so IVA gets exactly this version. */
  versionId?: string;
}

export interface PresignedGet {
  url: string;
  /** The lifetime asked for in the URL, after capping. */
  expiresInSeconds: number;
  /**
   * When the URL really stops working: the asked lifetime, or earlier when the signing
   * credentials expire first. Unknowable only for session credentials that carry no
   * expiry (Lambda's own role credentials), which the stack never signs with.
   */
  expiresAt: string;
  signedWith: 'long-lived' | 'role';
  /** When the signing credentials expire, if they do (role credentials). */
  credentialsExpireAt?: string;
  /** Things an operator must know (TTL capped, URL dies before its TTL); never secret. */
  warnings: string[];
}

export interface PresignerOptions {
  /** The function's own client: signs when no long-lived keys are configured. */
  s3: S3Client;
  ttlSeconds: number;
  /** Long-lived keys to sign with instead of the role's session credentials. */
  longLived?: CachedSecret<AwsKeyPair>;
  /** Builds the client that signs with the long-lived keys; default createS3Client. */
  signingClient?: (credentials: AwsKeyPair) => S3Client;
  now?: () => number;
}

export interface Presigner {
  presignGet(ref: ObjectVersionRef): Promise<PresignedGet>;
}

export function createPresigner(options: PresignerOptions): Presigner {
  const now = options.now ?? Date.now;
  const makeClient = options.signingClient ?? ((credentials: AwsKeyPair) => createS3Client({ credentials }));
  // One signing client per access key: a rotated secret gets a new client.
  let signer: { accessKeyId: string; client: S3Client } | undefined;

  async function signingClientFor(): Promise<{
    client: S3Client;
    signedWith: PresignedGet['signedWith'];
    expiration?: Date;
  }> {
    if (options.longLived) {
      const keys = await options.longLived.get();
      if (signer?.accessKeyId !== keys.accessKeyId)
        signer = { accessKeyId: keys.accessKeyId, client: makeClient(keys) };
      // Keys from a secret may still be temporary (a session token): they say nothing of expiry.
      return { client: signer.client, signedWith: 'long-lived' };
    }
    const identity = await options.s3.config.credentials();
    return { client: options.s3, signedWith: 'role', expiration: identity.expiration };
  }

  return {
    async presignGet(ref) {
      const warnings: string[] = [];
      let ttl = Math.floor(options.ttlSeconds);
      if (!Number.isFinite(ttl) || ttl < 1)
        throw new RangeError(`The presign TTL must be at least 1 second, got ${options.ttlSeconds}`);
      if (ttl > PRESIGN_MAX_SECONDS) {
        warnings.push(`Presign TTL ${ttl} s exceeds the SigV4 maximum; capped to ${PRESIGN_MAX_SECONDS} s (7 days)`);
        ttl = PRESIGN_MAX_SECONDS;
      }
      const { client, signedWith, expiration } = await signingClientFor();
      const signedAt = now();
      const result: PresignedGet = {
        url: '',
        expiresInSeconds: ttl,
        expiresAt: new Date(signedAt + ttl * 1000).toISOString(),
        signedWith,
        warnings,
      };
      if (expiration) {
        result.credentialsExpireAt = expiration.toISOString();
        const lifetime = Math.floor((expiration.getTime() - signedAt) / 1000);
        if (lifetime < ttl) {
          result.expiresAt = result.credentialsExpireAt;
          warnings.push(
            `The presigned URL asks for ${ttl} s but is signed with temporary ${signedWith} credentials that expire in ${Math.max(lifetime, 0)} s ` +
              `(${result.credentialsExpireAt}); it stops working then. Configure ${ENV.presignSecretArn} with long-lived keys, or lower ${ENV.presignTtlSeconds} (an assumed signing role lives at most 1 h)`,
          );
        }
      }
      const command = new GetObjectCommand({
        Bucket: ref.bucket,
        Key: ref.key,
        ...(ref.versionId ? { VersionId: ref.versionId } : {}),
      });
      result.url = await getSignedUrl(client, command, { expiresIn: ttl });
      return result;
    },
  };
}

/** The URL without its query: safe to log (the signature stays out of logs). */
export function redactPresignedUrl(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Query parameters of a SigV4 URL that let its holder use it. */
const SIGNING_PARAMS = /([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s"'<>]*/gi;

/**
 * Text that may quote a presigned URL (an IVA error message about the Url it could not
 * fetch) with the signing parameters' values replaced: safe to log and to record.
 */
export function redactSignedUrls(text: string): string {
  return text.replace(SIGNING_PARAMS, '$1***');
}

export interface PresignerEnvOptions extends RoleSigningClientOptions {
  env?: Env;
  secrets?: SecretSourceOptions;
}

/** PRESIGN_TTL_SECONDS (default lib/config) and optional PRESIGN_SECRET_ARN. */
export function presignerFromEnv(s3: S3Client, options: PresignerEnvOptions = {}): Presigner {
  const env = options.env ?? process.env;
  const arn = optional(env, ENV.presignSecretArn);
  const ttlSeconds = number(env, ENV.presignTtlSeconds, DEFAULTS.presignTtlSeconds);
  return createPresigner({
    // Without long-lived keys, sign as the assumed PRESIGN_ROLE_ARN (known expiry) when set.
    s3: arn ? s3 : signingS3Client(s3, ENV.presignRoleArn, ttlSeconds, options),
    ttlSeconds,
    longLived: arn
      ? cachedSecret(arn, (raw) => parseKeyPair(raw, 'The presign credentials secret'), options.secrets)
      : undefined,
  });
}
