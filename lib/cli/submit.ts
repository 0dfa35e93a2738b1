/**
 * `iva-bridge submit`: one image or video to IVA from a shell, with the same client the
 * functions use. Pure logic (argv, env and output injected) so tests drive it directly
 * or through bin/iva-bridge.mjs.
 */
import { BridgeError } from '../errors';
import { stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { ENV, ivaTarget, type Env } from '../config';
import { createIvaClient } from '../iva/client';
import { IvaAmbiguousError, IvaError, IvaInputError } from '../iva/errors';
import { KIND_PROTOCOL } from '../iva/protocol';
import type { MediaKind, SubmitInput, SubmitSource } from '../iva/types';
import { checkDesc, checkName, checkTaskId, parseAlgoParamConf, SubmissionFieldError } from '../submission/validate';

export interface CliIo {
  stdout: { write(text: string | Uint8Array): unknown };
  stderr: { write(text: string): unknown };
  env: Env;
  /** The fetch the API client uses (tests validate its answers against docs/openapi.json); default: the global one. */
  fetch?: typeof fetch;
}

export const EXIT_OK = 0;
/** IVA (or the network to it) refused or failed the submission. */
export const EXIT_IVA = 1;
/** The command line, the environment or a local file is wrong: nothing was sent. */
export const EXIT_USAGE = 2;
/**
 * The request was sent but its answer was lost (connection dropped, timeout, an answer
 * that is not IVA's): IVA may have it. Not retried; check before submitting again.
 */
export const EXIT_UNCERTAIN = 3;

export const MAIN_HELP = `Usage: iva-bridge <command> [options]

Commands for iva-bridge's API (the local stack of "npm start", or a deployed stack):
  send      Send images and videos (direct or by upload, by size), optionally wait and save results
  status    Print submissions by id
  list      Print the submissions of a task, or of every task in one state (--status uncertain)
  wait      Wait for submissions to reach a final state
  result    Fetch a submission's result (the callback body, byte for byte)
  resolve   Record your verdict on an uncertain submission (IVA has it, or not)
  resubmit  Send uncertain uploads to IVA again, under the same submission id
  api       One signed request to any route, like curl (prints the answer's body)
  keys      Issue, rotate, revoke and list client access keys (issue|rotate|revoke|list)

Commands for Volcengine IVA itself:
  submit    Submit one image or video to Volcengine IVA (AddAsyncTask{Image,Video}Data)

Run "iva-bridge submit --help" for the options of a command.
`;

export const SUBMIT_HELP = `Usage: iva-bridge submit --task-id ID (--image PATH | --image-url URL | --video PATH | --video-url URL)
                         [--name NAME] [--desc TEXT] [--algo-param-conf JSON]
                         [--content-type TYPE] [--budget-ms MS]

Submits one image or video to a Volcengine IVA async task.

Input (exactly one):
  --image PATH           image file, streamed from disk as the ImageFile part (Source=file)
  --image-url URL        image that IVA fetches itself (Source=url)
  --video PATH           video file, streamed from disk as the VideoFile part (Source=file)
  --video-url URL        video that IVA fetches itself (Source=url)

Options:
  --task-id ID           the async task's TaskID (required)
  --name NAME            data name (default: the file name, or the URL's last path segment)
  --desc TEXT            optional description
  --algo-param-conf JSON optional algorithm parameters, a JSON object
  --content-type TYPE    file part Content-Type (default application/octet-stream)
  --budget-ms MS         total time for all attempts and retries (default 60000)
  -h, --help             show this help

Environment:
  VOLC_ACCESSKEY, VOLC_SECRETKEY   Volcengine access key id and secret (required)
  VOLC_SESSION_TOKEN               STS session token, for temporary credentials
  IVA_ENDPOINT                     default https://open.volcengineapi.com
  IVA_REGION, IVA_SERVICE          default cn-north-1, iva
  IVA_TIMEOUT_MS                   per-attempt timeout, default 20000

Output:
  success: one JSON line on stdout, {"ImageID"|"VideoID": "...", "RequestId": "..."}, exit 0
  retries: one line on stderr per retry, as it happens ("retrying: …")
  failure: one line on stderr with IVA's Code, Message and RequestId, or the local cause;
           exit 1 when IVA or the network failed, exit 2 for a usage, environment or file
           error, exit 3 when IVA may have the submission (see below)

IVA's own retryable errors (rate limits, 5xx with IVA's error code) and connections
that failed before anything was sent are retried with backoff within the budget; an
expired X-Date is re-signed once. A host name that does not resolve or a certificate
that does not verify ends at once. A failure after the request was sent (connection
dropped, no answer within the per-attempt timeout, an answer that is not IVA's) is never
retried: IVA may have accepted it, so the command exits 3 instead of submitting twice.
`;

/** Commands that talk to iva-bridge's own API, loaded on use (lib/cli/send.ts, lib/cli/query.ts). */
const API_COMMANDS: Record<string, () => Promise<(args: string[], io: CliIo) => Promise<number>>> = {
  send: async () => (await import('./send')).runSend,
  status: async () => (await import('./query')).runStatus,
  list: async () => (await import('./query')).runList,
  wait: async () => (await import('./query')).runWait,
  result: async () => (await import('./query')).runResult,
  resolve: async () => (await import('./query')).runResolve,
  resubmit: async () => (await import('./query')).runResubmit,
  api: async () => (await import('./api')).runApi,
  keys: async () => (await import('./keys')).runKeys,
};

class UsageError extends BridgeError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('Usage', message);
  }
}

/** Runs one of lib/submission's field rules; its failure is a usage error (exit 2). */
function usage<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof SubmissionFieldError) throw new UsageError(error.message);
    throw error;
  }
}
/** A local file cannot be read: exit 2 like a usage error, without pointing at --help. */
class LocalFileError extends BridgeError {
  override readonly name = 'LocalFileError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('LocalFile', message, options);
  }
}

type SubmitPlan = SubmitInput & { budgetMs?: number };

const OPTIONS = {
  'task-id': { type: 'string' },
  image: { type: 'string' },
  'image-url': { type: 'string' },
  video: { type: 'string' },
  'video-url': { type: 'string' },
  name: { type: 'string' },
  desc: { type: 'string' },
  'algo-param-conf': { type: 'string' },
  'content-type': { type: 'string' },
  'budget-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function lastUrlSegment(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`not a valid URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`the URL must be http(s): ${raw}`);
  const segment = url.pathname.split('/').filter(Boolean).pop() ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function plan(args: string[]): Promise<SubmitPlan | 'help'> {
  let values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';

  const inputs = (['image', 'image-url', 'video', 'video-url'] as const).filter((key) => values[key] !== undefined);
  const [input] = inputs;
  if (input === undefined) throw new UsageError('one of --image, --image-url, --video, --video-url is required');
  if (inputs.length > 1)
    throw new UsageError(`conflicting options: ${inputs.map((key) => `--${key}`).join(', ')} (give exactly one)`);
  const value = values[input] as string;
  if (value === '') throw new UsageError(`--${input} must not be empty`);
  // The same field rules as the API and the S3 path (lib/submission): refused here, never sent.
  const taskId = usage(() => checkTaskId(values['task-id'], '--task-id'));
  const algoParamConf = usage(() => parseAlgoParamConf(values['algo-param-conf'], '--algo-param-conf'));

  let budgetMs: number | undefined;
  if (values['budget-ms'] !== undefined) {
    budgetMs = Number(values['budget-ms']);
    if (!Number.isFinite(budgetMs) || budgetMs <= 0) throw new UsageError('--budget-ms must be a positive number');
  }

  const kind: MediaKind = input.startsWith('image') ? 'image' : 'video';
  let source: SubmitSource;
  let defaultName: string;
  if (input.endsWith('-url')) {
    defaultName = lastUrlSegment(value);
    source = { type: 'url', url: value };
  } else {
    let size: number;
    try {
      const info = await stat(value);
      if (!info.isFile()) throw new Error('not a regular file');
      size = info.size;
    } catch (error) {
      throw new LocalFileError(
        `cannot read ${value}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    defaultName = basename(value);
    const filename = basename(value);
    // Streamed twice (hash, then send), never read into memory whole.
    source = {
      type: 'file',
      data: { size, open: () => createReadStream(value) },
      filename,
      ...(values['content-type'] ? { contentType: values['content-type'] } : {}),
    };
  }
  const name = values.name ?? defaultName;
  if (!name || name.trim() === '') throw new UsageError('--name is required when the URL has no file name');
  usage(() => checkName(name, '--name'));
  const desc = usage(() => checkDesc(values.desc, '--desc'));

  return {
    kind,
    taskId,
    name,
    source,
    ...(desc !== undefined ? { desc } : {}),
    ...(algoParamConf ? { algoParamConf } : {}),
    ...(budgetMs !== undefined ? { budgetMs } : {}),
  };
}

/** One line, and never the secret, whatever an error message carries. */
function line(text: string, secret: string | undefined): string {
  let out = text.replace(/[\r\n]+/g, ' ');
  // Too short a "secret" would blank ordinary letters; real secret keys are 40+ characters.
  if (secret && secret.length >= 8) out = out.split(secret).join('***');
  return `${out}\n`;
}

export async function runSubmit(args: string[], io: CliIo): Promise<number> {
  const secret = io.env[ENV.volcSecretKey] || undefined;
  const fail = (code: number, message: string): number => {
    io.stderr.write(line(`iva-bridge submit: ${message}`, secret));
    return code;
  };

  let submission: SubmitPlan | 'help';
  let target: ReturnType<typeof ivaTarget>;
  try {
    submission = await plan(args);
    if (submission === 'help') {
      io.stdout.write(SUBMIT_HELP);
      return EXIT_OK;
    }
    target = ivaTarget(io.env);
  } catch (error) {
    return fail(EXIT_USAGE, `${(error as Error).message}${error instanceof UsageError ? ' (see --help)' : ''}`);
  }
  const accessKeyId = io.env[ENV.volcAccessKey];
  if (!accessKeyId || !secret)
    return fail(EXIT_USAGE, `missing credentials: set ${ENV.volcAccessKey} and ${ENV.volcSecretKey}`);
  const sessionToken = io.env[ENV.volcSessionToken] || undefined;

  const client = createIvaClient({
    credentials: { accessKeyId, secretAccessKey: secret, ...(sessionToken ? { sessionToken } : {}) },
    endpoint: target.endpoint,
    region: target.region,
    service: target.service,
    timeoutMs: target.timeoutMs,
  });
  try {
    const { budgetMs, ...input } = submission;
    const result = await client.submit(input, {
      ...(budgetMs !== undefined ? { budgetMs } : {}),
      // Each retry is shown as it happens: a long wait is never silent.
      onRetry: ({ attempt, delayMs, error }) => {
        const status = error.httpStatus !== undefined ? ` [HTTP ${error.httpStatus}]` : '';
        const requestId =
          error.requestId && !error.message.includes(error.requestId) ? ` (RequestId ${error.requestId})` : '';
        io.stderr.write(
          line(
            `iva-bridge submit: retrying: attempt ${attempt} failed with ${error.message}${requestId}${status}; attempt ${attempt + 1} in ${delayMs} ms`,
            secret,
          ),
        );
      },
    });
    io.stdout.write(
      line(JSON.stringify({ [KIND_PROTOCOL[result.kind].idKey]: result.dataId, RequestId: result.requestId }), secret),
    );
    return EXIT_OK;
  } catch (error) {
    if (error instanceof IvaInputError) return fail(EXIT_USAGE, error.message);
    if (error instanceof IvaAmbiguousError) {
      const status = error.httpStatus !== undefined ? ` [HTTP ${error.httpStatus}]` : '';
      return fail(
        EXIT_UNCERTAIN,
        `UNCERTAIN: IVA may have accepted this submission: ${error.message}${status} (sent ${new Date(error.sentAt).toISOString()}, failed ${new Date(error.failedAt).toISOString()}). Not retried; check the task's data in IVA (or wait for its callback) before submitting again.`,
      );
    }
    if (error instanceof IvaError) {
      const status = error.httpStatus !== undefined ? ` [HTTP ${error.httpStatus}]` : '';
      const requestId =
        error.requestId && !error.message.includes(error.requestId) ? ` (RequestId ${error.requestId})` : '';
      return fail(EXIT_IVA, `IVA error ${error.message}${requestId}${status}`);
    }
    return fail(EXIT_IVA, `unexpected failure: ${(error as Error)?.message ?? String(error)}`);
  } finally {
    client.close?.();
  }
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.stderr.write(MAIN_HELP);
    return EXIT_USAGE;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(MAIN_HELP);
    return EXIT_OK;
  }
  if (command === 'submit') return runSubmit(rest, io);
  const apiCommand = API_COMMANDS[command];
  if (apiCommand) return (await apiCommand())(rest, io);
  io.stderr.write(line(`iva-bridge: unknown command "${command}" (see iva-bridge --help)`, undefined));
  return EXIT_USAGE;
}
