/**
 * The local IAM API's SigV4 check (local/stack/sigv4.ts) on requests signed by the
 * client's real @smithy/signature-v4 signer: what passes, what API Gateway would refuse
 * and with which error type, and which resource policy principals let a caller in.
 */
import { describe, expect, it } from 'vitest';
import { signRequestSigV4 } from '../../../lib/client/signing';
import { type KnownAwsKey, principalAllows, verifySigV4 } from '../../../local/stack/sigv4';

const REGION = 'us-east-1';
const ROLE_KEY: KnownAwsKey = {
  accessKeyId: 'ASIAROLESESSION00001',
  secretAccessKey: 'role-session-secret-000000000000000000000',
  sessionToken: 'session-token-1',
  arn: 'arn:aws:sts::123456789012:assumed-role/uploader/i-0abc',
};
const URL_ = 'http://127.0.0.1:4574/v1/submissions/api_1%20x?limit=5&status=failed';

async function verify(
  init: RequestInit,
  options: {
    principals?: string[];
    now?: Date;
    sendBody?: string;
    signWith?: Parameters<typeof signRequestSigV4>[2];
  } = {},
) {
  const signed = await signRequestSigV4(URL_, init, options.signWith ?? ROLE_KEY, REGION);
  const url = new URL(signed.url);
  const rawHeaders = Object.entries({ ...(signed.init.headers as Record<string, string>), host: url.host }).flat();
  const body = Buffer.from(options.sendBody ?? (signed.init.body ? Buffer.from(signed.init.body as Uint8Array) : ''));
  return verifySigV4(
    { method: signed.init.method ?? 'GET', rawPath: url.pathname, search: url.search, rawHeaders, body },
    {
      region: REGION,
      keyOf: (ak) => (ak === ROLE_KEY.accessKeyId ? ROLE_KEY : undefined),
      principals: options.principals ?? ['arn:aws:iam::123456789012:role/uploader'],
      methodArn: 'arn:aws:execute-api:us-east-1:000000000000:local/prod/GET/v1/submissions/{id}',
      ...(options.now ? { now: () => options.now as Date } : {}),
    },
  );
}

describe('verifySigV4', () => {
  it('accepts a session-credential signature over an encoded path and query, naming the assumed role session', async () => {
    const outcome = await verify({});
    expect(outcome).toEqual({
      ok: true,
      identity: { arn: ROLE_KEY.arn, accountId: '123456789012', accessKeyId: ROLE_KEY.accessKeyId, caller: 'i-0abc' },
    });
  });

  it('covers the body: the same signature over another body is refused', async () => {
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' };
    expect((await verify(init)).ok).toBe(true);
    expect(await verify(init, { sendBody: '{"a":2}' })).toMatchObject({
      ok: false,
      responseType: 'INVALID_SIGNATURE',
      errorType: 'InvalidSignatureException',
    });
  });

  it('refuses a signature more than 5 minutes off, and a session key without its token', async () => {
    const later = new Date(Date.now() + 6 * 60_000);
    const stale = await verify({}, { now: later });
    expect(stale).toMatchObject({ ok: false, errorType: 'InvalidSignatureException' });
    expect(stale.ok === false && stale.message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than/);
    expect((await verify({}, { now: new Date(Date.now() + 4 * 60_000) })).ok).toBe(true);

    const { sessionToken: _t, ...withoutToken } = ROLE_KEY;
    expect(await verify({}, { signWith: withoutToken })).toMatchObject({
      ok: false,
      errorType: 'UnrecognizedClientException',
    });
  });

  it('applies the resource policy: the role of the session, its account, or nothing else', async () => {
    expect((await verify({}, { principals: ['arn:aws:iam::123456789012:root'] })).ok).toBe(true);
    expect((await verify({}, { principals: ['123456789012'] })).ok).toBe(true);
    expect(await verify({}, { principals: ['arn:aws:iam::123456789012:role/other'] })).toMatchObject({
      ok: false,
      responseType: 'ACCESS_DENIED',
      errorType: 'AccessDeniedException',
    });
  });
});

describe('principalAllows', () => {
  it('matches ARNs, accounts and roles of assumed-role sessions, never another account', () => {
    const user = 'arn:aws:iam::123456789012:user/alice';
    expect(principalAllows(user, user)).toBe(true);
    expect(principalAllows('arn:aws:iam::123456789012:root', user)).toBe(true);
    expect(principalAllows('arn:aws:iam::210987654321:root', user)).toBe(false);
    expect(principalAllows('arn:aws:iam::123456789012:user/bob', user)).toBe(false);
    expect(principalAllows('arn:aws:iam::123456789012:role/path/uploader', ROLE_KEY.arn)).toBe(true);
    expect(principalAllows('arn:aws:iam::210987654321:role/uploader', ROLE_KEY.arn)).toBe(false);
  });
});
