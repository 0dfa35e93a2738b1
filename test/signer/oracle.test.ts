/**
 * lib/signer against the official signer (`@volcengine/openapi/lib/base/sign.js`),
 * byte for byte, plus a server-side verification that fails on any signed byte changed.
 *
 * Two facts about the oracle shape these tests:
 * - it hashes a non-string, non-FormData body as JSON.stringify(body), so a binary body
 *   goes to it as a `form-data` FormData (its own SDK's path) or with `bodySha256`
 *   computed here by crypto-js (an independent SHA-256);
 * - it sets X-Content-Sha256 only for a truthy body, while ours always sends it: for
 *   the empty body the oracle is given the header ours sends, so both sign the same set.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { frameWithFile, randomBoundary } from '../../lib/iva/multipart';
import {
  expectedSignature,
  parseAuthorization,
  sha256Hex,
  sign,
  type BodyPiece,
  type Query,
  type SignInput,
} from '../../lib/signer/index';
import { OracleFormData as FormData, type OracleRequest, Signer } from '../support/oracle-signer';

const require = createRequire(import.meta.url);

const CryptoJS = require('crypto-js') as {
  SHA256(data: unknown): { toString(): string };
  lib: { WordArray: { create(data: Uint8Array): unknown } };
};

/** crypto-js's SHA-256, not node's: the expected hash does not come from the code under test. */
function oracleSha256(data: Uint8Array): string {
  return CryptoJS.SHA256(CryptoJS.lib.WordArray.create(data)).toString();
}

const DATE = new Date('2024-03-05T07:08:09.123Z');
const REGION = 'cn-north-1';
const SERVICE = 'iva';
const HOST = 'open.volcengineapi.com';
const CREDS = { accessKeyId: 'AKLTexampleAccessKey', secretAccessKey: 'c2VjcmV0LW9yYWNsZS10ZXN0LWtleQ==' };
const IVA_QUERY = { Action: 'AddAsyncTaskImageData', Version: '2022-05-13' };

interface Case {
  query: Query;
  /** Headers both sides send, besides Host (Content-Type and X- headers). */
  headers: Record<string, string>;
  ours: BodyPiece | readonly BodyPiece[] | undefined;
  oracleBody: unknown;
  oracleOptions?: { bodySha256?: string };
  sessionToken?: string;
}

function signBoth(c: Case): { ours: Record<string, string>; oracle: Record<string, string> } {
  const input: SignInput = {
    method: 'POST',
    host: HOST,
    query: c.query,
    headers: c.headers,
    credentials: { ...CREDS, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) },
    region: REGION,
    service: SERVICE,
    date: DATE,
    ...(c.ours !== undefined ? { body: c.ours } : {}),
  };
  const ours = sign(input).headers;
  const req: OracleRequest = {
    region: REGION,
    method: 'POST',
    params: { ...c.query },
    headers: { Host: HOST, ...c.headers },
    body: c.oracleBody,
  };
  new Signer(req, SERVICE, c.oracleOptions).addAuthorization(
    {
      accessKeyId: CREDS.accessKeyId,
      secretKey: CREDS.secretAccessKey,
      ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
    },
    DATE,
  );
  return { ours, oracle: req.headers };
}

function expectSame(c: Case): Record<string, string> {
  const { ours, oracle } = signBoth(c);
  expect(ours['Authorization']).toMatch(
    /^HMAC-SHA256 Credential=AKLTexampleAccessKey\/20240305\/cn-north-1\/iva\/request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
  );
  expect(ours['Authorization']).toBe(oracle['Authorization']);
  expect(ours).toEqual(oracle);
  return ours;
}

describe('sign() equals the official Volcengine signer', () => {
  it('multipart body given as prefix/file/suffix; the oracle gets the form-data FormData joined', () => {
    const file = randomBytes(64 * 1024);
    const form = new FormData();
    form.setBoundary('----oracle-boundary-1234');
    form.append('ImageFile', file, { filename: 'photo.jpg', contentType: 'application/octet-stream' });
    form.append('Request', JSON.stringify({ TaskID: 't', Image: { Name: 'photo.jpg', Source: 'file' } }));
    const joined = form.getBuffer();
    const at = joined.indexOf(file);
    expect(at).toBeGreaterThan(0);
    const pieces = [joined.subarray(0, at), file, joined.subarray(at + file.length)];
    const headers = expectSame({
      query: IVA_QUERY,
      headers: { 'Content-Type': form.getHeaders()['content-type'] as string },
      ours: pieces,
      oracleBody: form,
    });
    expect(headers['X-Content-Sha256']).toBe(oracleSha256(joined));
  });

  it("our own multipart framing, hashed in pieces, equals the oracle's hash of the joined body", () => {
    const file = randomBytes(100_003);
    const boundary = randomBoundary();
    const { prefix, suffix } = frameWithFile({
      boundary,
      fieldName: 'VideoFile',
      filename: 'clip.mp4',
      requestJson: '{"TaskID":"t"}',
    });
    const joined = Buffer.concat([prefix, file, suffix]);
    expectSame({
      query: { ...IVA_QUERY, Action: 'AddAsyncTaskVideoData' },
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      ours: [prefix, file.subarray(0, 1), file.subarray(1, 70_000), file.subarray(70_000), suffix],
      oracleBody: 'unused: bodySha256 wins',
      oracleOptions: { bodySha256: oracleSha256(joined) },
    });
  });

  it('query values with spaces, unicode, RFC 3986 reserved marks and empty strings', () => {
    expectSame({
      query: {
        ...IVA_QUERY,
        q: 'a b+c',
        u: 'ü 日本 😀',
        marks: "!'()*",
        safe: '~-._',
        slash: 'a/b?c=d&e',
        empty: '',
        'key with space': 'v',
      },
      headers: {},
      ours: 'x',
      oracleBody: 'x',
    });
  });

  it('repeated (array) query values are sorted after encoding', () => {
    expectSame({
      query: { ...IVA_QUERY, Tag: ['b', 'a c', 'a', 'A', '*'], One: ['only'] },
      headers: {},
      ours: 'x',
      oracleBody: 'x',
    });
  });

  it('undefined and null query values are left out on both sides', () => {
    expectSame({ query: { ...IVA_QUERY, gone: undefined, none: null }, headers: {}, ours: 'x', oracleBody: 'x' });
  });

  it('an empty body (oracle given the X-Content-Sha256 ours always sends)', () => {
    const headers = expectSame({
      query: IVA_QUERY,
      headers: { 'X-Content-Sha256': sha256Hex('') },
      ours: undefined,
      oracleBody: '',
    });
    expect(headers['X-Content-Sha256']).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('a UTF-8 string body is hashed as UTF-8 by both', () => {
    expectSame({
      query: IVA_QUERY,
      headers: { 'Content-Type': 'application/json' },
      ours: '{"Name":"café 日本"}',
      oracleBody: '{"Name":"café 日本"}',
    });
  });

  it('a session token is sent and signed as X-Security-Token', () => {
    const headers = expectSame({
      query: IVA_QUERY,
      headers: {},
      ours: 'body',
      oracleBody: 'body',
      sessionToken: 'STS2eyJhbGciOi.token/with+chars==',
    });
    expect(headers['X-Security-Token']).toBe('STS2eyJhbGciOi.token/with+chars==');
    expect(parseAuthorization(headers['Authorization'])!.signedHeaders).toContain('x-security-token');
  });

  it('extra X- headers are signed, with values whitespace-normalised; Content-Type and User-Agent are not', () => {
    const headers = expectSame({
      query: IVA_QUERY,
      headers: {
        'X-Custom-Id': '  a   b\tc ',
        'X-Top-Region': 'cn-north-1',
        'Content-Type': 'text/plain',
        'User-Agent': 'iva-bridge/0.1',
      },
      ours: 'body',
      oracleBody: 'body',
    });
    expect(parseAuthorization(headers['Authorization'])!.signedHeaders).toEqual([
      'host',
      'x-content-sha256',
      'x-custom-id',
      'x-date',
      'x-top-region',
    ]);
  });
});

/** As a server verifies: SignedHeaders from the request, body hash from the bytes received. */
function verify(req: { query: Query; headers: Record<string, string>; body: Buffer }, secret: string): boolean {
  const lower = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const auth = parseAuthorization(lower['authorization']);
  if (!auth) return false;
  const declared = lower['x-content-sha256'];
  if (declared !== sha256Hex(req.body)) return false;
  const received = {
    method: 'POST',
    path: '/',
    query: req.query,
    header: (name: string) => lower[name],
    bodySha256: declared,
  };
  return expectedSignature(received, auth, secret, lower['x-date']!) === auth.signature;
}

describe('a server verifying the signature', () => {
  const file = randomBytes(10_000);
  const { prefix, suffix } = frameWithFile({
    boundary: 'b0undary',
    fieldName: 'ImageFile',
    filename: 'f.jpg',
    requestJson: '{"TaskID":"t"}',
  });
  const query: Query = { ...IVA_QUERY, Extra: 'a b' };
  const signed = sign({
    method: 'POST',
    host: HOST,
    query,
    headers: { 'Content-Type': 'multipart/form-data; boundary=b0undary', 'X-Custom-Id': 'abc' },
    body: [prefix, file, suffix],
    credentials: { ...CREDS, sessionToken: 'tok' },
    region: REGION,
    service: SERVICE,
    date: DATE,
  });
  const body = Buffer.concat([prefix, file, suffix]);
  const untouched = { query, headers: signed.headers, body };

  it('accepts the untouched request', () => {
    expect(verify(untouched, CREDS.secretAccessKey)).toBe(true);
  });

  it('rejects one changed body byte', () => {
    const changed = Buffer.from(body);
    changed[prefix.length + 5_000]! ^= 0x01;
    expect(verify({ ...untouched, body: changed }, CREDS.secretAccessKey)).toBe(false);
  });

  it('rejects a body byte changed with X-Content-Sha256 recomputed to match', () => {
    const changed = Buffer.from(body);
    changed[0]! ^= 0x01;
    expect(
      verify(
        { ...untouched, body: changed, headers: { ...signed.headers, 'X-Content-Sha256': sha256Hex(changed) } },
        CREDS.secretAccessKey,
      ),
    ).toBe(false);
  });

  it('rejects a changed query value', () => {
    expect(verify({ ...untouched, query: { ...query, Extra: 'a c' } }, CREDS.secretAccessKey)).toBe(false);
    expect(verify({ ...untouched, query: { ...query, Action: 'AddAsyncTaskVideoData' } }, CREDS.secretAccessKey)).toBe(
      false,
    );
  });

  it('rejects a changed signed header value (X- header, session token, host)', () => {
    for (const [name, value] of [
      ['X-Custom-Id', 'abd'],
      ['X-Security-Token', 'tok2'],
      ['Host', 'evil.example.com'],
    ] as const) {
      expect(verify({ ...untouched, headers: { ...signed.headers, [name]: value } }, CREDS.secretAccessKey)).toBe(
        false,
      );
    }
  });

  it('rejects a changed X-Date', () => {
    expect(
      verify({ ...untouched, headers: { ...signed.headers, 'X-Date': '20240305T070810Z' } }, CREDS.secretAccessKey),
    ).toBe(false);
  });

  it('rejects the wrong secret', () => {
    expect(verify(untouched, `${CREDS.secretAccessKey}x`)).toBe(false);
  });

  it('ignores unsigned headers (Content-Type), as the official signer does', () => {
    expect(
      verify({ ...untouched, headers: { ...signed.headers, 'Content-Type': 'text/plain' } }, CREDS.secretAccessKey),
    ).toBe(true);
  });
});
