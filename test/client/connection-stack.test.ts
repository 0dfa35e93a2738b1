/**
 * `--stack NAME`: the connection read from a deployed stack with the caller's AWS
 * credentials, against a local server that answers CloudFormation's DescribeStacks (query
 * protocol, XML) and API Gateway's GetApiKey (REST, JSON) as AWS does. The SDK clients are
 * the real ones, pointed at it by AWS_ENDPOINT_URL_*; the server checks each request is
 * SigV4-signed with the caller's key for the right service.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConnection } from '../../lib/client/connection';

const API_URL = 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/';
const IAM_API_URL = 'https://iam456.execute-api.ap-southeast-1.amazonaws.com/prod/';
let server: Server;
const seen: { service: string; credential: string }[] = [];
const saved: Record<string, string | undefined> = {};

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

const stackXml = (name: string, outputs: Record<string, string>) =>
  `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member><StackName>${name}</StackName><StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/${name}/1</StackId><CreationTime>2026-12-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${Object.entries(
    outputs,
  )
    .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
    .join(
      '',
    )}</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeStacksResponse>`;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const auth = String(req.headers.authorization ?? '');
    const credential = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\//.exec(auth);
    seen.push({ service: credential?.[3] ?? 'unsigned', credential: credential?.[1] ?? '' });
    const text = await body(req);
    if (req.method === 'POST' && text.includes('Action=DescribeStacks')) {
      const name = new URLSearchParams(text).get('StackName') ?? '';
      res.setHeader('content-type', 'text/xml');
      if (name === 'IvaBridge')
        return res.end(stackXml(name, { ApiUrl: API_URL, ApiKeyId: 'key123', IamApiUrl: IAM_API_URL }));
      if (name === 'NotOurs') return res.end(stackXml(name, { Something: 'else' }));
      res.statusCode = 400;
      return res.end(
        `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>`,
      );
    }
    if (req.method === 'GET' && req.url?.startsWith('/apikeys/key123')) {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ id: 'key123', value: 'the-api-key-value', enabled: true }));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env = {
    AWS_ENDPOINT_URL_CLOUDFORMATION: url,
    AWS_ENDPOINT_URL_API_GATEWAY: url,
    AWS_ACCESS_KEY_ID: 'AKIACALLER',
    AWS_SECRET_ACCESS_KEY: 'caller-secret',
    AWS_REGION: 'eu-west-1',
  };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('--stack NAME', () => {
  it('reads ApiUrl and the API key value with the caller’s credentials', async () => {
    seen.length = 0;
    const connection = await resolveConnection({ stack: 'IvaBridge', env: {} });
    expect(connection).toEqual({
      apiUrl: API_URL,
      apiKey: 'the-api-key-value',
      source: 'stack',
      origin: 'IvaBridge',
    });
    expect(seen).toEqual([
      { service: 'cloudformation', credential: 'AKIACALLER' },
      { service: 'apigateway', credential: 'AKIACALLER' },
    ]);
  });

  it('lets an explicit --api-key win over the stack’s, and flags or env over the stack', async () => {
    expect(await resolveConnection({ stack: 'IvaBridge', apiKey: 'mine', env: {} })).toMatchObject({ apiKey: 'mine' });
    expect(
      await resolveConnection({ stack: 'IvaBridge', env: { IVA_BRIDGE_API_URL: 'http://elsewhere/' } }),
    ).toMatchObject({ apiUrl: 'http://elsewhere/', source: 'env' });
  });

  it('names the stack and what to check when it cannot be read or is not ours', async () => {
    await expect(resolveConnection({ stack: 'Missing', env: {} })).rejects.toMatchObject({
      code: 'StackUnreadable',
      message: expect.stringMatching(/Missing.*ValidationError.*does not exist.*AWS credentials, AWS_REGION/),
    });
    await expect(resolveConnection({ stack: 'NotOurs', env: {} })).rejects.toMatchObject({
      code: 'StackUnreadable',
      message: expect.stringMatching(/no ApiUrl output/),
    });
  });
});

describe('--auth iam', () => {
  it('--stack NAME reads IamApiUrl and signs for its region with the default credential chain; no API key is read', async () => {
    seen.length = 0;
    const connection = await resolveConnection({ stack: 'IvaBridge', auth: 'iam', env: {} });
    expect(connection).toEqual({
      apiUrl: IAM_API_URL,
      aws: { region: 'ap-southeast-1' },
      source: 'stack',
      origin: 'IvaBridge',
    });
    expect(seen).toEqual([{ service: 'cloudformation', credential: 'AKIACALLER' }]);
  });

  it('IVA_BRIDGE_AUTH=iam with an explicit URL takes the region from the execute-api host, else --region', async () => {
    expect(await resolveConnection({ env: { IVA_BRIDGE_AUTH: 'iam', IVA_BRIDGE_API_URL: IAM_API_URL } })).toMatchObject(
      { apiUrl: IAM_API_URL, aws: { region: 'ap-southeast-1' }, source: 'env' },
    );
    expect(
      await resolveConnection({ auth: 'iam', apiUrl: 'https://api.example.com/', region: 'eu-central-1', env: {} }),
    ).toMatchObject({ aws: { region: 'eu-central-1' } });
    await expect(resolveConnection({ auth: 'iam', apiUrl: 'https://api.example.com/', env: {} })).rejects.toMatchObject(
      {
        code: 'NoRegion',
      },
    );
  });

  it('names what is missing: a stack without IamApiUrl, an unknown auth mode', async () => {
    await expect(resolveConnection({ stack: 'NotOurs', auth: 'iam', env: {} })).rejects.toMatchObject({
      code: 'StackUnreadable',
      message: expect.stringMatching(/no IamApiUrl output.*iamPrincipals=none/),
    });
    await expect(resolveConnection({ env: { IVA_BRIDGE_AUTH: 'sigv4' } })).rejects.toMatchObject({
      code: 'InvalidAuth',
    });
  });
});
