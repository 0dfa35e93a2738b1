/**
 * The callback route's authorizer against a tiny Secrets Manager endpoint (GetSecretValue
 * over its JSON protocol), for rotation. Allow = API Gateway PUTs the body to the inbox;
 * `Unauthorized` = the UNAUTHORIZED gateway response, the unknown route's 404 (its
 * rendering is tested in test/infra and, through the local gateway, test/e2e).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler, PRINCIPAL_ID } from '../../../functions/callback-authorizer/handler';
import { logger } from '../../../lib/observability';
import { callbackSecretsFrom } from '../../../lib/secrets/index';

const SECRET = 'cb-secret-Zq8w3N1xY7pL0aVt5R2kH9mJ4sD6fG';
const PREVIOUS = 'cb-previous-Kd82hS0qP1zLm4Xv7Bn3Tc9Wy5Ra';
const METHOD_ARN = 'arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/callbacks/*';

let smServer: Server;
let smEndpoint: string;
let smValue = SECRET;
let reads = 0;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  smServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      reads++;
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(
        JSON.stringify({ ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:cb', Name: 'cb', SecretString: smValue }),
      );
    });
  });
  await new Promise<void>((resolve) => smServer.listen(0, '127.0.0.1', resolve));
  smEndpoint = `http://127.0.0.1:${(smServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => smServer?.close(() => resolve()));
});

function event(secret: string | undefined): APIGatewayRequestAuthorizerEvent {
  const path = `/callbacks/${secret ?? ''}`;
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '/callbacks/{secret}',
    path,
    httpMethod: 'POST',
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: { 'content-type': ['application/json'] },
    pathParameters: secret === undefined ? null : { secret },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {
      requestId: 'req-1',
      path: `/prod${path}`,
    } as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}

const allow = {
  principalId: PRINCIPAL_ID,
  policyDocument: {
    Version: '2012-10-17',
    Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: METHOD_ARN }],
  },
};

function rotatingSecrets() {
  const sm = new SecretsManagerClient({
    endpoint: smEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
  });
  return callbackSecretsFrom(
    { CALLBACK_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:cb' },
    { client: sm, ttlMs: 0 },
  );
}

describe('callback authorizer', () => {
  it('fails a wrong or missing secret with exactly "Unauthorized", and allows only the invoked method', async () => {
    const handler = createHandler({ secrets: { get: async () => [SECRET] } });
    for (const secret of [undefined, '', 'wrong', SECRET.slice(0, -1), `${SECRET}x`, SECRET.toUpperCase()])
      await expect(handler(event(secret))).rejects.toThrow(/^Unauthorized$/);
    expect(await handler(event(SECRET))).toEqual(allow);
  });

  it('accepts the current and, while rotating, the previous secret read from Secrets Manager', async () => {
    smValue = JSON.stringify({ current: SECRET, previous: PREVIOUS });
    const handler = createHandler({ secrets: rotatingSecrets() });
    expect(await handler(event(SECRET))).toEqual(allow);
    expect(await handler(event(PREVIOUS))).toEqual(allow);
    await expect(handler(event('other'))).rejects.toThrow(/^Unauthorized$/);
    // Rotation finished: the previous secret is dropped and refused from then on.
    smValue = SECRET;
    await expect(handler(event(PREVIOUS))).rejects.toThrow(/^Unauthorized$/);
    expect(await handler(event(SECRET))).toEqual(allow);
  });

  it('never re-reads the secret because a caller sent a wrong one', async () => {
    smValue = SECRET;
    const sm = new SecretsManagerClient({
      endpoint: smEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    const handler = createHandler({
      secrets: callbackSecretsFrom(
        { CALLBACK_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:cb' },
        { client: sm },
      ),
    });
    expect(await handler(event(SECRET))).toEqual(allow);
    const before = reads;
    for (let i = 0; i < 5; i++) await expect(handler(event(`wrong-${i}`))).rejects.toThrow(/^Unauthorized$/);
    expect(reads).toBe(before);
  });

  it('fails otherwise (a 5xx, so IVA retries) when the secret cannot be read: never the 404', async () => {
    const handler = createHandler({ secrets: { get: async () => Promise.reject(new Error('AccessDenied')) } });
    const error = await handler(event(SECRET)).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).not.toBe('Unauthorized');
  });

  it('never logs the secret or the secret path, for wrong and right secrets', async () => {
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    const capture = (chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    };
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    const level = logger.getLevelName();
    logger.setLogLevel('DEBUG');
    try {
      const handler = createHandler({ secrets: { get: async () => [SECRET] }, logger });
      await handler(event(`${SECRET}-wrong`)).catch(() => undefined);
      await handler(event(SECRET));
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      logger.setLogLevel(level);
    }
    const output = lines.join('');
    // The capture saw the handler's lines, so the absence below means something.
    expect(output).toContain('Callback refused: wrong or missing secret');
    expect(output).toContain('/callbacks/{secret}');
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain(SECRET.slice(0, 16));
  });
});
