/**
 * URLs signed as an assumed role: the official STS client against a local STS endpoint
 * (AssumeRole, query protocol) and s3rver. The session's Expiration is what the
 * presigner reports as the URL's end, so ExpiresAt is true even when the asked TTL is
 * longer than the session can live (role chaining: 1 h).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lib/config';
import { presignerFromEnv } from '../../lib/storage/presign';
import { ROLE_CHAINING_MAX_SECONDS, roleSessionCredentials, stsAssumeRole } from '../../lib/storage/role-session';
import { createS3Client } from '../../lib/storage/s3-client';
import { startS3rver, type LocalS3 } from '../../local/servers/s3rver';

const BUCKET = 'role-signed';
const ROLE = 'arn:aws:iam::123456789012:role/IvaBridge-PresignGetRole';

let s3: LocalS3;
let stsServer: Server;
let sts: STSClient;
/** What the local STS saw, and how long the sessions it hands out live. */
let calls: Array<Record<string, string>> = [];
let sessionSeconds = ROLE_CHAINING_MAX_SECONDS;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
  stsServer = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      calls.push(form);
      const expiration = new Date(Date.now() + sessionSeconds * 1000).toISOString();
      res.writeHead(200, { 'content-type': 'text/xml' });
      // The session keys are s3rver's, so the URLs they sign are accepted there.
      res.end(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
          `<Credentials><AccessKeyId>${s3.accessKeyId}</AccessKeyId><SecretAccessKey>${s3.secretAccessKey}</SecretAccessKey>` +
          `<SessionToken>session-${calls.length}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
          `<AssumedRoleUser><Arn>${ROLE}/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>` +
          `</AssumeRoleResult><ResponseMetadata><RequestId>r-${calls.length}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => stsServer.listen(0, '127.0.0.1', resolve));
  sts = new STSClient({
    endpoint: `http://127.0.0.1:${(stsServer.address() as AddressInfo).port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'lambda-role', secretAccessKey: 'lambda-role-secret' },
  });
});

afterAll(async () => {
  sts?.destroy();
  await new Promise<void>((resolve) => (stsServer ? stsServer.close(() => resolve()) : resolve()));
  await s3?.close();
});

beforeEach(() => {
  calls = [];
  sessionSeconds = ROLE_CHAINING_MAX_SECONDS;
});

describe('presigned GET URLs signed as PRESIGN_ROLE_ARN', () => {
  const env = (ttl: number) => ({
    [ENV.presignRoleArn]: ROLE,
    [ENV.presignTtlSeconds]: String(ttl),
    [ENV.s3ForcePathStyle]: 'true',
    AWS_REGION: 'us-east-1',
  });
  const lambdaS3 = () =>
    createS3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });

  it('asks STS for a chained session, signs with it, and reports the session end when the TTL is longer', async () => {
    const client = createS3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'incoming/t/a.jpg', Body: 'abc' }));
    const presigner = presignerFromEnv(lambdaS3(), { env: env(6 * 3600), sts, endpoint: s3.endpoint });
    const before = Date.now();
    const signed = await presigner.presignGet({ bucket: BUCKET, key: 'incoming/t/a.jpg' });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ Action: 'AssumeRole', RoleArn: ROLE, DurationSeconds: '3600' });
    expect(new URL(signed.url).searchParams.get('X-Amz-Security-Token')).toBe('session-1');
    // Asked 6 h; the session lives 1 h: the URL's real end is the session's, and says so.
    const end = Date.parse(signed.expiresAt);
    expect(end).toBeGreaterThanOrEqual(before + 3600_000 - 2_000);
    expect(end).toBeLessThanOrEqual(Date.now() + 3600_000 + 1_000);
    expect(signed.expiresAt).toBe(signed.credentialsExpireAt);
    expect(signed.warnings.join(' ')).toMatch(/expire in 3\d{3} s/);
    const res = await fetch(signed.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('abc');
  });

  it('within the session: the asked TTL is the real lifetime, and no warning', async () => {
    const presigner = presignerFromEnv(lambdaS3(), { env: env(900), sts, endpoint: s3.endpoint });
    const before = Date.now();
    const signed = await presigner.presignGet({ bucket: BUCKET, key: 'incoming/t/a.jpg' });
    expect(signed.warnings).toEqual([]);
    expect(Date.parse(signed.expiresAt)).toBeGreaterThanOrEqual(before + 900_000 - 1_000);
    expect(Date.parse(signed.expiresAt)).toBeLessThanOrEqual(Date.now() + 900_000);
  });
});

describe('roleSessionCredentials', () => {
  it('reuses a session while it covers a whole URL lifetime and renews it when it does not', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const provider = roleSessionCredentials({
      roleArn: ROLE,
      assumeRole: stsAssumeRole(sts),
      urlTtlSeconds: 900,
      now: () => clock,
    });
    // The local STS dates sessions by the real clock; give them 1 h from the fake one.
    sessionSeconds = (clock - Date.now()) / 1000 + 3600;
    const first = await provider();
    expect(calls).toHaveLength(1);
    clock += 2700 * 1000; // 45 min later: 15 min left, exactly one URL lifetime
    expect(await provider()).toBe(first);
    expect(calls).toHaveLength(1);
    clock += 1000; // now short of a whole lifetime: renew
    const second = await provider();
    expect(calls).toHaveLength(2);
    expect(second.sessionToken).toBe('session-2');
  });

  it('one AssumeRole for concurrent first calls', async () => {
    const provider = roleSessionCredentials({ roleArn: ROLE, assumeRole: stsAssumeRole(sts), urlTtlSeconds: 600 });
    const all = await Promise.all([provider(), provider(), provider()]);
    expect(calls).toHaveLength(1);
    expect(new Set(all.map((c) => c.sessionToken)).size).toBe(1);
  });
});
