/**
 * `iva-bridge api [-X METHOD] PATH [--json JSON | -F NAME=VALUE | -F NAME=@FILE …] [-H 'Name: value' …]`:
 * one request to the API, signed with the client's access key (lib/client/signing.ts), or
 * with `--auth iam` with the caller's AWS credentials (SigV4) against the IAM API, like curl. Prints the answer's body; exit 0 for a 2xx/3xx, 1 otherwise.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveConnection } from '../client/connection';
import { defaultAwsCredentials, signRequest, signRequestSigV4 } from '../client/signing';
import { authMode, CONNECTION_HELP, CONNECTION_OPTIONS, failWith, UsageError } from './connect';
import { EXIT_IVA, EXIT_OK, type CliIo } from './submit';

export const API_HELP = `Usage: iva-bridge api [-X METHOD] PATH [--json JSON | -F NAME=VALUE | -F NAME=@FILE ...] [-H 'Name: value' ...]

One request to the API, signed with your client access key; prints the answer's body.
PATH is relative to the API URL (v1/images, v1/tasks/demo/submissions?limit=5, ...).
  -X METHOD      default GET, or POST with --json / -F
  --json JSON    a JSON body (Content-Type: application/json)
  -F NAME=VALUE  a multipart field; NAME=@FILE attaches a file (as curl -F)
  -H 'N: V'      an extra header (e.g. Idempotency-Key)
Exit 0 for a 2xx or 3xx answer, 1 otherwise.

${CONNECTION_HELP}
`;

export async function runApi(args: string[], io: CliIo): Promise<number> {
  try {
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args,
        options: {
          ...CONNECTION_OPTIONS,
          request: { type: 'string', short: 'X' },
          json: { type: 'string' },
          form: { type: 'string', short: 'F', multiple: true },
          header: { type: 'string', short: 'H', multiple: true },
        },
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
    if (values.help) {
      io.stdout.write(API_HELP);
      return EXIT_OK;
    }
    const [path] = parsed.positionals;
    if (!path || parsed.positionals.length !== 1) throw new UsageError('name one PATH');
    const forms = (values.form as string[] | undefined) ?? [];
    if (forms.length > 0 && values.json !== undefined) throw new UsageError('use --json or -F, not both');
    const headers: Record<string, string> = {};
    for (const h of (values.header as string[] | undefined) ?? []) {
      const at = h.indexOf(':');
      if (at < 1) throw new UsageError(`a header is "Name: value", got "${h}"`);
      headers[h.slice(0, at).trim()] = h.slice(at + 1).trim();
    }
    let body: RequestInit['body'] | undefined;
    if (typeof values.json === 'string') {
      body = values.json;
      headers['content-type'] ??= 'application/json';
    } else if (forms.length > 0) {
      const form = new FormData();
      for (const field of forms) {
        const eq = field.indexOf('=');
        if (eq < 1) throw new UsageError(`-F takes NAME=VALUE or NAME=@FILE, got "${field}"`);
        const name = field.slice(0, eq);
        const value = field.slice(eq + 1);
        if (value.startsWith('@')) form.append(name, await openAsBlob(value.slice(1)), basename(value.slice(1)));
        else form.append(name, value);
      }
      body = form;
    }
    const method = (values.request as string | undefined)?.toUpperCase() ?? (body !== undefined ? 'POST' : 'GET');
    const connection = await resolveConnection({
      ...(typeof values['api-url'] === 'string' ? { apiUrl: values['api-url'] } : {}),
      ...(typeof values['access-key-id'] === 'string' ? { accessKeyId: values['access-key-id'] } : {}),
      ...(typeof values['secret-access-key'] === 'string' ? { secretAccessKey: values['secret-access-key'] } : {}),
      ...(typeof values.stack === 'string' ? { stack: values.stack } : {}),
      ...(typeof values.region === 'string' ? { region: values.region } : {}),
      ...(typeof values.auth === 'string' ? { auth: authMode(values.auth) } : {}),
      env: io.env,
    });
    const { credentials, aws } = connection;
    if (!credentials && !aws) throw new UsageError('no client access key: see "Every request is signed" below --help');
    const url = new URL(
      path.replace(/^\//, ''),
      connection.apiUrl.endsWith('/') ? connection.apiUrl : `${connection.apiUrl}/`,
    ).href;
    const init: RequestInit = { method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) };
    const signed = aws
      ? await signRequestSigV4(url, init, aws.credentials ?? (await defaultAwsCredentials()), aws.region)
      : credentials
        ? await signRequest(url, init, credentials)
        : { url, init };
    const res = await fetch(signed.url, signed.init);
    io.stdout.write(Buffer.from(await res.arrayBuffer()));
    return res.status < 400 ? EXIT_OK : EXIT_IVA;
  } catch (error) {
    return failWith('api', io, error);
  }
}
