/**
 * IAM (SigV4) authentication against the local stack's IAM API, derived from the
 * template's AWS_IAM methods and resource policy: the client library signs with AWS
 * credentials (service execute-api, the stack's region) through @smithy/signature-v4,
 * submits an image and reads its status, and the SigV4 principal reaches the ledger
 * record. Unsigned requests, a wrong secret, an altered body, an unknown key, an IVA
 * HMAC header and a principal outside the resource policy are refused with API
 * Gateway's own answers. Every answer is checked against docs/openapi.json.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApi } from '../../lib/cli/api';
import { createIvaBridgeClient } from '../../lib/client/client';
import { resolveConnection } from '../../lib/client/connection';
import { signRequest, signRequestSigV4 } from '../../lib/client/signing';
import { createDynamoLedger } from '../../lib/ledger/dynamo';
import { DEFAULT_TABLE, LOCAL_IAM_CALLER_ARN, startLocalStack, type LocalStack } from '../../local/stack/index';
import { sharedChecker } from '../support/openapi';

const CAT = join(import.meta.dirname, '../../docs/samples/cat.jpg');
/** Known to the local IAM API, but its account is not in the resource policy (the stack's own account is). */
const OUTSIDER = {
  accessKeyId: 'AKIAOUTSIDER00000001',
  secretAccessKey: 'outsider-secret-key-0000000000000000000',
  arn: 'arn:aws:iam::111111111111:user/outsider',
};

let stack: LocalStack;
let dir: string;
let factsFile: string;
let region: string;
let caller: { accessKeyId: string; secretAccessKey: string };

beforeAll(async () => {
  stack = await startLocalStack({
    log: () => undefined,
    sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
    awsCallers: [OUTSIDER],
  });
  dir = await mkdtemp(join(tmpdir(), 'iva-bridge-iam-'));
  factsFile = join(dir, 'stack.json');
  await writeFile(factsFile, JSON.stringify(stack.info));
  if (!stack.iamApiUrl || !stack.iamRegion || !stack.awsAccessKeyId || !stack.awsSecretAccessKey)
    throw new Error('the local stack serves no IAM API');
  region = stack.iamRegion;
  caller = { accessKeyId: stack.awsAccessKeyId, secretAccessKey: stack.awsSecretAccessKey };
}, 120_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  errorType: string | null;
  body: Record<string, any>;
}

async function send(url: string, init: RequestInit): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  sharedChecker().check(init.method ?? 'GET', new URL(url).pathname, res.status, res.headers.get('content-type'), text);
  return { status: res.status, errorType: res.headers.get('x-amzn-errortype'), body: JSON.parse(text) };
}

const iamUrl = (path: string) => `${stack.iamApiUrl}${path}`;

describe('IAM API (SigV4, AWS_IAM methods from the template)', () => {
  it('submits an image with the client library signing SigV4 and reads its status; the principal is on the ledger record', async () => {
    const connection = await resolveConnection({ auth: 'iam', env: { IVA_BRIDGE_STACK_JSON: factsFile } });
    expect(connection.apiUrl).toBe(stack.iamApiUrl);
    expect(connection.aws?.region).toBe(region);
    const client = createIvaBridgeClient({
      apiUrl: connection.apiUrl,
      ...(connection.aws ? { aws: connection.aws } : {}),
    });
    const sent = await client.sendFile({ path: CAT, taskId: 'iam-task' });
    expect(sent.route).toBe('direct');
    expect(sent.dataId).toBeTruthy();

    const status = await client.getSubmission(sent.submissionId);
    expect(status.Status).toMatch(/^(submitted|completed)$/);
    expect((status as unknown as Record<string, unknown>).Caller).toEqual({
      Auth: 'iam',
      Arn: LOCAL_IAM_CALLER_ARN,
      AccountId: '000000000000',
    });

    // The ledger itself (dynalite, the template's table) holds the principal.
    const doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.dynamodbEndpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    );
    try {
      const record = await createDynamoLedger({ tableName: DEFAULT_TABLE, client: doc }).get(sent.submissionId);
      expect(record?.caller).toEqual({
        auth: 'iam',
        arn: LOCAL_IAM_CALLER_ARN,
        accountId: '000000000000',
        accessKeyId: caller.accessKeyId,
      });
    } finally {
      doc.destroy();
    }

    // The same status through the signed GET, checked against docs/openapi.json.
    const signed = await signRequestSigV4(iamUrl(`v1/submissions/${sent.submissionId}`), {}, caller, region);
    const read = await send(signed.url, signed.init);
    expect(read.status).toBe(200);
    expect(read.body.SubmissionId).toBe(sent.submissionId);
  });

  it('iva-bridge api --auth iam sends one SigV4-signed request like curl', async () => {
    let out = '';
    let err = '';
    const code = await runApi(['--auth', 'iam', 'v1/tasks/iam-task/submissions'], {
      stdout: { write: (t: string | Uint8Array) => (out += String(t)) },
      stderr: { write: (t: string) => (err += t) },
      env: { IVA_BRIDGE_STACK_JSON: factsFile },
    });
    expect(code, err).toBe(0);
    const page = JSON.parse(out) as { Items: { TaskID: string }[] };
    expect(page.Items.length).toBeGreaterThan(0);
    expect(page.Items.every((i) => i.TaskID === 'iam-task')).toBe(true);
  });

  it('refuses an unsigned request with API Gateway\'s 403 "Missing Authentication Token"', async () => {
    const r = await send(iamUrl('v1/submissions?status=failed'), {});
    expect(r.status).toBe(403);
    expect(r.errorType).toBe('MissingAuthenticationTokenException');
    expect(r.body).toEqual({ message: 'Missing Authentication Token' });
  });

  it('refuses a signature made with the wrong secret key (InvalidSignatureException)', async () => {
    const wrong = { accessKeyId: caller.accessKeyId, secretAccessKey: `${caller.secretAccessKey}x` };
    const signed = await signRequestSigV4(iamUrl('v1/submissions?status=failed'), {}, wrong, region);
    const r = await send(signed.url, signed.init);
    expect(r.status).toBe(403);
    expect(r.errorType).toBe('InvalidSignatureException');
    expect(r.body.message).toMatch(/^The request signature we calculated does not match the signature you provided/);
  });

  it('refuses a body changed after signing: SigV4 covers the payload, direct-submit never runs', async () => {
    const json = (note: string) => JSON.stringify({ Action: 'failed', Note: note });
    const signed = await signRequestSigV4(
      iamUrl('v1/submissions/api_00000000000000000000000000/resolve'),
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: json('signed') },
      caller,
      region,
    );
    const r = await send(signed.url, { ...signed.init, body: json('altered') });
    expect(r.status).toBe(403);
    expect(r.errorType).toBe('InvalidSignatureException');
  });

  it('refuses a key the account does not know, a foreign scope, and IVA HMAC headers', async () => {
    const unknown = { accessKeyId: 'AKIANOTKNOWN00000000', secretAccessKey: 'whatever' };
    const a = await signRequestSigV4(iamUrl('v1/submissions?status=failed'), {}, unknown, region);
    const r1 = await send(a.url, a.init);
    expect([r1.status, r1.errorType]).toEqual([403, 'UnrecognizedClientException']);
    expect(r1.body.message).toBe('The security token included in the request is invalid.');

    const b = await signRequestSigV4(iamUrl('v1/submissions?status=failed'), {}, caller, 'eu-north-1');
    const r2 = await send(b.url, b.init);
    expect([r2.status, r2.errorType]).toEqual([403, 'InvalidSignatureException']);
    expect(r2.body.message).toContain('Credential should be scoped to a valid region');

    // A client key's IVA signature is not SigV4: API Gateway answers IncompleteSignature.
    const c = await signRequest(
      iamUrl('v1/submissions?status=failed'),
      {},
      {
        accessKeyId: stack.clientAccessKeyId,
        secretAccessKey: stack.clientSecretAccessKey,
      },
    );
    const r3 = await send(c.url, c.init);
    expect([r3.status, r3.errorType]).toEqual([403, 'IncompleteSignatureException']);
    expect(r3.body.message).toContain("Authorization header requires 'Credential' parameter.");
  });

  it('refuses a correctly signed principal the resource policy does not name (AccessDeniedException)', async () => {
    const signed = await signRequestSigV4(iamUrl('v1/submissions?status=failed'), {}, OUTSIDER, region);
    const r = await send(signed.url, signed.init);
    expect(r.status).toBe(403);
    expect(r.errorType).toBe('AccessDeniedException');
    expect(r.body.message).toContain(`User: ${OUTSIDER.arn} is not authorized to perform: execute-api:Invoke`);
  });

  it('the client-key API does not take SigV4, and the IAM API has no callback route', async () => {
    const signed = await signRequestSigV4(`${stack.apiUrl}v1/submissions?status=failed`, {}, caller, region);
    const r = await send(signed.url, signed.init);
    expect(r.status).toBe(403);
    expect(r.body.ResponseMetadata?.Error?.Code).toBe('InvalidAuthorization');

    const callback = await fetch(iamUrl('callbacks/0123456789abcdef'), { method: 'POST', body: '{}' });
    expect(callback.status).toBe(403);
    expect(callback.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  });
});
