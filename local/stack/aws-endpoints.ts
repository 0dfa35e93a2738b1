/**
 * The AWS APIs the functions call besides S3, DynamoDB and EventBridge, on one local
 * endpoint (the functions reach it through AWS_ENDPOINT_URL_STS,
 * AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_SQS):
 *
 * - STS `AssumeRole` (query protocol): the template gives object-created and
 *   direct-submit a signing role (PRESIGN_ROLE_ARN, UPLOAD_ROLE_ARN) to presign URLs
 *   with (lib/storage/role-session.ts). Locally any role is "assumed" and answered with
 *   the local S3's keys and a true Expiration (the session's end, as AWS reports it).
 * - Secrets Manager `GetSecretValue` and `PutSecretValue` (JSON protocol): the template
 *   names the secrets by ARN (VOLC_SECRET_ARN, CALLBACK_SECRET_ARN); locally those ARNs
 *   hold the IVA keys and the callback secret. `CreateSecret`, `DeleteSecret` and
 *   `ListSecrets` (name filter, tags) serve the client keys (lib/client-auth/keys.ts:
 *   `iva-bridge keys …` and client-auth's reads by name); `onSecretsChanged` lets the
 *   stack keep them across restarts.
 * - SQS `SendMessage` and `ChangeMessageVisibility` (JSON protocol) on the intake queue:
 *   object-created sets its own redelivery delays and requeues deferred messages, and
 *   resubmit queues an S3 event (lib/s3-intake/redelivery.ts, lib/api/resubmit.ts). The
 *   queue is the local one the event source mapping reads, found by the URL's last segment.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listen, urlOf } from '../servers/http-close';

export interface LocalAwsEndpointsOptions {
  port?: number;
  /** Keys every assumed session gets (the local S3 accepts them). */
  sessionCredentials: { accessKeyId: string; secretAccessKey: string };
  /** Secret ARN → value. */
  secrets: Record<string, string>;
  /** Secrets created before (kept by the stack across restarts): ARN → value, tags, creation time. */
  created?: Record<string, CreatedSecret>;
  /** Called after CreateSecret / DeleteSecret with every created secret still there. */
  onSecretsChanged?: (created: Record<string, CreatedSecret>) => void;
  /** Queue name → the local queue its SQS calls act on. */
  queues?: Record<string, LocalSqsQueue>;
  log?: (line: string) => void;
}

export interface CreatedSecret {
  value: string;
  tags: { Key: string; Value: string }[];
  createdAt: number;
  description?: string;
}

/** What the SQS calls need of a local queue (local/stack/sqs.ts LocalQueue). */
export interface LocalSqsQueue {
  send(body: string, delaySeconds?: number): string;
  changeVisibility(receiptHandle: string, seconds: number): boolean;
}

export interface LocalAwsEndpoints {
  url: string;
  /** Roles assumed so far (ARN per call). */
  assumedRoles: string[];
  close(): Promise<void>;
}

/** SQS's JSON error types whose query-protocol code differs. */
const QUERY_CODES: Record<string, string> = {
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
  InvalidAction: 'AWS.SimpleQueueService.UnsupportedOperation',
};

/** Longest session AssumeRole grants when chained from a role (AWS: 1 h). */
const MAX_SESSION_SECONDS = 3600;

const xmlEscape = (s: string): string =>
  s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

export async function startLocalAwsEndpoints(options: LocalAwsEndpointsOptions): Promise<LocalAwsEndpoints> {
  const assumedRoles: string[] = [];
  const secrets = new Map(Object.entries(options.secrets));
  const created = new Map(Object.entries(options.created ?? {}));
  for (const [arn, c] of created) secrets.set(arn, c.value);
  const changed = () => options.onSecretsChanged?.(Object.fromEntries(created));
  const versions = new Map<string, string>();
  const createdAt = Math.floor(Date.now() / 1000);

  const stsError = (res: ServerResponse, status: number, code: string, message: string): void => {
    res.writeHead(status, { 'content-type': 'text/xml' });
    res.end(
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
    );
  };

  const sts = (res: ServerResponse, form: URLSearchParams) => {
    if (form.get('Action') !== 'AssumeRole')
      return stsError(res, 400, 'InvalidAction', 'Only AssumeRole is served locally.');
    const roleArn = form.get('RoleArn') ?? '';
    const sessionName = form.get('RoleSessionName') ?? '';
    if (!/^arn:aws[\w-]*:iam::\d{12}:role\/.+/.test(roleArn))
      return stsError(res, 400, 'ValidationError', `RoleArn ${roleArn} is not a role ARN.`);
    const seconds = Number(form.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(seconds) || seconds < 900 || seconds > MAX_SESSION_SECONDS)
      return stsError(
        res,
        400,
        'ValidationError',
        `The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.`,
      );
    assumedRoles.push(roleArn);
    const expiration = new Date(Date.now() + seconds * 1000).toISOString();
    const { accessKeyId, secretAccessKey } = options.sessionCredentials;
    options.log?.(`sts: AssumeRole ${roleArn} (${seconds} s)`);
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
        `<Credentials><AccessKeyId>${xmlEscape(accessKeyId)}</AccessKeyId><SecretAccessKey>${xmlEscape(secretAccessKey)}</SecretAccessKey>` +
        `<SessionToken>local-session-${randomUUID()}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
        `<AssumedRoleUser><Arn>${xmlEscape(roleArn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/'))}/${xmlEscape(sessionName)}</Arn>` +
        `<AssumedRoleId>AROALOCAL:${xmlEscape(sessionName)}</AssumedRoleId></AssumedRoleUser>` +
        `</AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    );
  };

  /** A JSON-protocol answer: Secrets Manager speaks awsJson 1.1, SQS 1.0. */
  const json = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
    version = '1.1',
  ): void => {
    res.writeHead(status, {
      'content-type': `application/x-amz-json-${version}`,
      'x-amzn-requestid': randomUUID(),
      ...headers,
    });
    res.end(JSON.stringify(body));
  };

  const nameOf = (arn: string): string => (arn.split(':secret:')[1] ?? arn).replace(/-[A-Za-z0-9]{6}$|-local$/, '');
  const secretsManager = (res: ServerResponse, target: string, body: Record<string, unknown>) => {
    if (target === 'secretsmanager.CreateSecret') {
      const name = String(body.Name ?? '');
      if (!name || typeof body.SecretString !== 'string')
        return json(res, 400, { __type: 'InvalidParameterException', message: 'Name and SecretString are required.' });
      if ([...secrets.keys()].some((a) => nameOf(a) === name))
        return json(res, 400, {
          __type: 'ResourceExistsException',
          message: `The operation failed because the secret ${name} already exists.`,
        });
      const arn = `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}-${randomUUID().replace(/-/g, '').slice(0, 6)}`;
      const tags = Array.isArray(body.Tags) ? (body.Tags as { Key: string; Value: string }[]) : [];
      created.set(arn, {
        value: body.SecretString,
        tags,
        createdAt: Math.floor(Date.now() / 1000),
        ...(typeof body.Description === 'string' ? { description: body.Description } : {}),
      });
      secrets.set(arn, body.SecretString);
      versions.set(arn, randomUUID());
      changed();
      options.log?.(`secretsmanager: created ${name}`);
      return json(res, 200, { ARN: arn, Name: name, VersionId: versions.get(arn) });
    }
    if (target === 'secretsmanager.ListSecrets') {
      const filters = Array.isArray(body.Filters) ? (body.Filters as { Key: string; Values: string[] }[]) : [];
      const prefixes = filters.filter((f) => f.Key === 'name').flatMap((f) => f.Values);
      const list = [...secrets.keys()]
        .filter((arn) => prefixes.length === 0 || prefixes.some((p) => nameOf(arn).startsWith(p)))
        .map((arn) => ({
          ARN: arn,
          Name: nameOf(arn),
          Tags: created.get(arn)?.tags ?? [],
          CreatedDate: created.get(arn)?.createdAt ?? createdAt,
          ...(created.get(arn)?.description ? { Description: created.get(arn)?.description } : {}),
        }));
      return json(res, 200, { SecretList: list });
    }
    const id = String(body.SecretId ?? '');
    // An ARN, a name, or an ARN without its random suffix, as Secrets Manager resolves them.
    const arn = secrets.has(id)
      ? id
      : [...secrets.keys()].find((a) => nameOf(a) === id || a === id || a.startsWith(`${id}-`));
    if (!arn)
      return json(res, 400, {
        __type: 'ResourceNotFoundException',
        message: "Secrets Manager can't find the specified secret.",
      });
    const name = arn.split(':secret:')[1] ?? arn;
    if (target === 'secretsmanager.GetSecretValue') {
      versions.set(arn, versions.get(arn) ?? randomUUID());
      return json(res, 200, {
        ARN: arn,
        Name: name,
        SecretString: secrets.get(arn),
        VersionId: versions.get(arn),
        VersionStages: ['AWSCURRENT'],
        CreatedDate: createdAt,
      });
    }
    if (target === 'secretsmanager.PutSecretValue' && typeof body.SecretString === 'string') {
      secrets.set(arn, body.SecretString);
      versions.set(arn, randomUUID());
      options.log?.(`secretsmanager: new value for ${name}`);
      return json(res, 200, { ARN: arn, Name: name, VersionId: versions.get(arn), VersionStages: ['AWSCURRENT'] });
    }
    if (target === 'secretsmanager.DeleteSecret') {
      secrets.delete(arn);
      versions.delete(arn);
      created.delete(arn);
      changed();
      options.log?.(`secretsmanager: deleted ${name}`);
      return json(res, 200, { ARN: arn, Name: name, DeletionDate: Math.floor(Date.now() / 1000) });
    }
    json(res, 400, { __type: 'InvalidRequestException', message: `${target} is not served locally.` });
  };

  const sqsError = (res: ServerResponse, code: string, message: string): void =>
    // The query-protocol code SQS also sends (the SDK reads it for the error's Code).
    json(
      res,
      400,
      { __type: `com.amazonaws.sqs#${code}`, message },
      {
        'x-amzn-query-error': `${QUERY_CODES[code] ?? code};Sender`,
      },
      '1.0',
    );

  const sqs = (res: ServerResponse, target: string, body: Record<string, unknown>) => {
    const url = typeof body.QueueUrl === 'string' ? body.QueueUrl : '';
    const queue = options.queues?.[url.split('/').pop() ?? ''];
    if (!queue) return sqsError(res, 'QueueDoesNotExist', `The specified queue ${url} does not exist.`);
    const ok = (out: unknown) => json(res, 200, out, {}, '1.0');
    if (target === 'AmazonSQS.SendMessage') {
      const text = body.MessageBody;
      const delay = body.DelaySeconds ?? 0;
      if (typeof text !== 'string' || text === '') return sqsError(res, 'MissingParameter', 'MessageBody is required.');
      if (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > 900)
        return sqsError(res, 'InvalidParameterValue', 'DelaySeconds must be an integer from 0 to 900.');
      const messageId = queue.send(text, delay);
      options.log?.(`sqs: message ${messageId} sent by a function${delay ? `, visible in ${delay} s` : ''}`);
      // The SDK checks this digest of the body it sent.
      return ok({ MessageId: messageId, MD5OfMessageBody: createHash('md5').update(text).digest('hex') });
    }
    if (target === 'AmazonSQS.ChangeMessageVisibility') {
      const handle = body.ReceiptHandle;
      const seconds = body.VisibilityTimeout;
      if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > 43_200)
        return sqsError(res, 'InvalidParameterValue', 'VisibilityTimeout must be an integer from 0 to 43200.');
      if (typeof handle !== 'string' || !queue.changeVisibility(handle, seconds))
        return sqsError(res, 'ReceiptHandleIsInvalid', 'The receipt handle is not valid for a message in flight.');
      return ok({});
    }
    return sqsError(res, 'InvalidAction', `${target} is not served locally.`);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (target.startsWith('AmazonSQS.')) {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw || '{}') as Record<string, unknown>;
      } catch {
        return sqsError(res, 'SerializationException', 'The request body is not JSON.');
      }
      return sqs(res, target, body);
    }
    if (target.startsWith('secretsmanager.')) {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw || '{}') as Record<string, unknown>;
      } catch {
        return json(res, 400, { __type: 'SerializationException', message: 'The request body is not JSON.' });
      }
      return secretsManager(res, target, body);
    }
    return sts(res, new URLSearchParams(raw));
  };

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      raw += c;
    });
    req.on('end', () => handle(req, res, raw));
  });
  const address = await listen(server, options.port ?? 0);
  return { url: urlOf(address), assumedRoles, close: () => closeServer(server) };
}
