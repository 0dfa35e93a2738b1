/**
 * Signing credentials whose expiry is known, for presigned URLs.
 *
 * A presigned URL stops working when the credentials that signed it expire, whatever
 * `X-Amz-Expires` says. Lambda hands a function its role's session credentials with no
 * expiry (only AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), so a URL
 * signed with them has an unknown real lifetime (reported in the field as 1 to 36 hours).
 * Assuming a dedicated signing role instead returns credentials with an `Expiration`:
 * then the URL's real end is known and reported. Assuming a role from a role session is
 * "role chaining", which AWS caps at one hour, so URLs signed this way live at most 1 h;
 * longer lifetimes need long-lived keys (PRESIGN_SECRET_ARN, see docs/aws-behaviour.md).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { optional, type Env } from '../config';
import { createS3Client } from './s3-client';
import { sdkRequestHandler } from '../aws/sdk-http';

/** The shape an SDK client's `credentials` option accepts (a provider with an expiry). */
export interface ExpiringCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}
export type ExpiringCredentialsProvider = () => Promise<ExpiringCredentials>;

/** Role chaining's cap on a session (seconds). */
export const ROLE_CHAINING_MAX_SECONDS = 3600;
/** Keep a session only while it still covers a URL this long, at most chaining's cap less 5 minutes. */
const REFRESH_HEADROOM_SECONDS = 300;

export interface AssumedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** One STS AssumeRole call (the runtime passes @aws-sdk/client-sts; tests a local STS endpoint). */
export type AssumeRole = (input: {
  roleArn: string;
  sessionName: string;
  durationSeconds: number;
}) => Promise<AssumedCredentials>;

export interface RoleSessionOptions {
  roleArn: string;
  assumeRole: AssumeRole;
  /** The lifetime wanted for each URL signed with these credentials (seconds). */
  urlTtlSeconds: number;
  sessionName?: string;
  now?: () => number;
}

/**
 * A credentials provider for the signing S3 client: an assumed-role session, renewed
 * whenever it no longer covers a whole URL lifetime (the asked TTL, or chaining's cap
 * less five minutes when the TTL is longer). The provider's `expiration` is what the
 * presigner and the upload route report as the URL's real end.
 */
export function roleSessionCredentials(options: RoleSessionOptions): ExpiringCredentialsProvider {
  const now = options.now ?? Date.now;
  const duration = ROLE_CHAINING_MAX_SECONDS;
  const wanted = Math.min(options.urlTtlSeconds, duration - REFRESH_HEADROOM_SECONDS);
  let current: ExpiringCredentials | undefined;
  let pending: Promise<ExpiringCredentials> | undefined;
  return async () => {
    const left = current?.expiration ? (current.expiration.getTime() - now()) / 1000 : -1;
    if (current && left >= wanted) return current;
    pending ??= options
      .assumeRole({
        roleArn: options.roleArn,
        sessionName: options.sessionName ?? `iva-bridge-presign-${now()}`,
        durationSeconds: duration,
      })
      .then((c) => {
        current = {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          expiration: c.expiration,
        };
        return current;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

/** AssumeRole through the official STS client (region from the environment, as Lambda sets it). */
export function stsAssumeRole(client: STSClient): AssumeRole {
  return async ({ roleArn, sessionName, durationSeconds }) => {
    const out = await client.send(
      new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName, DurationSeconds: durationSeconds }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw new Error(`AssumeRole ${roleArn} returned no complete credentials`);
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
    };
  };
}

export interface RoleSigningClientOptions {
  env?: Env;
  /** STS client; default one for AWS_REGION (tests point it at a local STS endpoint). */
  sts?: STSClient;
  /** S3 endpoint of the signing client (a local S3 in tests); default the SDK's own. */
  endpoint?: string;
}

/**
 * The S3 client that signs URLs: with the role named by `roleEnvName` assumed (known
 * expiry) when that variable is set, else `fallback` (local stacks and tests sign with
 * static keys, whose URLs live their whole TTL).
 */
export function signingS3Client(
  fallback: S3Client,
  roleEnvName: string,
  urlTtlSeconds: number,
  options: RoleSigningClientOptions = {},
): S3Client {
  const env = options.env ?? process.env;
  const roleArn = optional(env, roleEnvName);
  if (!roleArn) return fallback;
  const sts =
    options.sts ??
    new STSClient({
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
      requestHandler: sdkRequestHandler(),
    });
  return createS3Client({
    env,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    credentials: roleSessionCredentials({ roleArn, assumeRole: stsAssumeRole(sts), urlTtlSeconds }),
  });
}
