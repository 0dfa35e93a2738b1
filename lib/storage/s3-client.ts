/**
 * The one way this project builds an S3 client (Lambda code, the local stack, tests).
 *
 * Checksums are WHEN_REQUIRED on both sides because the SDK's default (WHEN_SUPPORTED)
 * adds trailing `x-amz-checksum-*` to streamed PutObject: local S3 servers store the
 * aws-chunked framing in the object (s3rver) or answer 411 (Ceph RGW), and a presigned
 * URL would carry checksum query parameters that a plain `fetch`/`curl` cannot satisfy.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { ENV, type Env } from '../config';
import { sdkRequestHandler, type SdkHttpTimeouts } from '../aws/sdk-http';

export interface S3ClientOptions {
  /** e.g. `http://127.0.0.1:4568` for a local S3; omitted → the SDK's own resolution. */
  endpoint?: string;
  /** Defaults to AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1. */
  region?: string;
  /** Defaults to the S3_FORCE_PATH_STYLE environment variable (`true`/`1`). */
  forcePathStyle?: boolean;
  /** Static keys, or a provider (e.g. an assumed-role session whose expiry presigners report). */
  credentials?:
    | { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
    | (() => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>);
  /** Environment to read defaults from; process.env when omitted. */
  env?: Env;
  /** Overrides of SDK_HTTP_TIMEOUTS (lib/aws/sdk-http.ts). */
  timeouts?: Partial<SdkHttpTimeouts>;
}

export function forcePathStyleFromEnv(env: Env = process.env): boolean {
  const raw = (env[ENV.s3ForcePathStyle] ?? '').trim().toLowerCase();
  return raw === 'true' || raw === '1' || raw === 'yes';
}

export function createS3Client(options: S3ClientOptions = {}): S3Client {
  const env = options.env ?? process.env;
  return new S3Client({
    region: options.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'),
    forcePathStyle: options.forcePathStyle ?? forcePathStyleFromEnv(env),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A hung S3 call fails its attempt (and is retried) instead of burning the invocation.
    requestHandler: sdkRequestHandler(options.timeouts),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
}
