/**
 * `iva-bridge send FILE|FOLDER… --task-id T`: files to iva-bridge's own API (not to IVA),
 * each by the route its size allows, several at once, optionally followed to their
 * final state with the results saved. See SEND_HELP.
 */
import { randomUUID } from 'node:crypto';
import { readdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { IvaBridgeClient, IvaBridgeClientOptions } from '../client/client';
import { IvaBridgeError, IvaBridgeInputError } from '../client/errors';
import type { MediaKind } from '../client/types';
import { createLimiter } from '../s3-intake/limiter';
import { kindFromExtension } from '../s3-intake/rules';
import { CONNECTION_HELP, CONNECTION_OPTIONS, UsageError, connect, failWith } from './connect';
import { jsonReporter, plainReporter, ttyReporter, type FileOutcome, type SendReporter, type Stream } from './progress';
import { EXIT_IVA, EXIT_OK, EXIT_UNCERTAIN, type CliIo } from './submit';

export const SEND_HELP = `Usage: iva-bridge send FILE|FOLDER... --task-id ID [options]

Sends images and videos to iva-bridge's API: each file as a direct multipart POST when it
fits (about 4.5 MB), else through POST /v1/uploads and a PUT to the presigned URL, and
above --multipart-threshold (64 MiB) as an S3 multipart upload: its parts PUT 4 at a
time, each streamed from its range of the file (memory stays a few MB whatever the
size), a failed part sent again alone, then POST /v1/uploads/{id}/complete. Files up to
5 TiB. Folders are searched recursively; files in them whose extension is neither an image nor a
video one are skipped (name such a file explicitly, with --kind, to send it).

Options:
  --task-id ID            the IVA async task's TaskID (required)
  --kind image|video      for every file (default: from each file's extension)
  --desc TEXT             description sent with every file
  --algo-param-conf JSON  algorithm parameters (a JSON object) sent with every file
  --wait                  follow each submission to its final state
  --out DIR               with --wait: save each result (the final callback body) as
                          DIR/<file name>.<json|txt|bin>
  --concurrency N         files in flight at once (default 4)
  --multipart-threshold SIZE  files larger than this go up in parts (default 64MiB;
                          SIZE in bytes, or with KiB/MiB/GiB)
  --part-size SIZE        the parts' size, 5MiB to 5GiB (default: the API's, 16MiB,
                          more for files over 160 GiB)
  --part-concurrency N    parts of one file in flight at once (default 4)
  --json                  one JSON line per file on stdout, nothing else there
  -h, --help              show this help

${CONNECTION_HELP}

Output:
  a terminal gets a progress bar per file in flight and one overall, counted in bytes
  (a part sent again counts again); otherwise one line per file ("sent FILE → ID
  (route)": direct, upload or multipart; then "FILE: STATUS ID → RESULT" with --wait);
  errors go to stderr as "iva-bridge send: FILE: ... Code: Message (RequestId ...)".
  exit 0: every file sent (with --wait: completed, and its result saved with --out)
  exit 1: the API, S3 or IVA refused or failed a file, or a submission ended failed
          (the other files still go through)
  exit 2: usage, connection settings or a local file is wrong: nothing was sent
  exit 3: with --wait, the only trouble is submissions that ended uncertain (IVA may or
          may not have them: see the submission and resolve it)

Retries: throttling (429), 5xx and dropped connections are retried with backoff. Every
POST carries an Idempotency-Key that stays the same across its retries, the upload PUT
sends If-None-Match: *, and a multipart upload is completed once (S3 makes one object of
it, whatever part was sent twice), so a retry never submits a file twice. A multipart
send that fails leaves its upload open; the sweep expires and aborts it after 2 h.

Example:
  iva-bridge send cat.jpg clip.mp4 ./photos --task-id my-task --wait --out results/
`;

/** Submissions followed at once with --wait (each one polls its status). */
const WAIT_CONCURRENCY = 16;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  'task-id': { type: 'string' },
  kind: { type: 'string' },
  desc: { type: 'string' },
  'algo-param-conf': { type: 'string' },
  wait: { type: 'boolean' },
  out: { type: 'string' },
  concurrency: { type: 'string' },
  'multipart-threshold': { type: 'string' },
  'part-size': { type: 'string' },
  'part-concurrency': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** `123`, `64MiB`, `5 GiB`, `16m` → bytes (binary units). */
export function parseSize(raw: string, flag: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(raw);
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${flag} must be a size such as 64MiB or 67108864, got "${raw}"`);
  return Number(m[1]) * unit;
}

interface FileJob {
  path: string;
  /** What reports call it: the path as given / found. */
  label: string;
  size: number;
  kind?: MediaKind;
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Every file to send, checked before anything is sent (a local problem sends nothing). */
async function collect(
  args: string[],
  kind: MediaKind | undefined,
): Promise<{ jobs: FileJob[]; skipped: { file: string; reason: string }[] }> {
  const jobs: FileJob[] = [];
  const skipped: { file: string; reason: string }[] = [];
  const seen = new Set<string>();
  for (const arg of args) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(arg);
    } catch (error) {
      throw new IvaBridgeInputError('FileUnreadable', `cannot read ${arg}: ${(error as NodeJS.ErrnoException).code}`);
    }
    const found: { path: string; explicit: boolean }[] = info.isDirectory()
      ? (await walk(arg)).map((path) => ({ path, explicit: false }))
      : [{ path: arg, explicit: true }];
    for (const { path, explicit } of found) {
      if (seen.has(path)) continue;
      seen.add(path);
      const fileKind = kind ?? kindFromExtension(path);
      if (!fileKind) {
        if (explicit)
          throw new IvaBridgeInputError(
            'UnknownKind',
            `cannot tell image from video by the extension of ${path}: pass --kind image|video`,
          );
        skipped.push({ file: path, reason: 'not an image or video file extension' });
        continue;
      }
      const size = explicit ? info.size : (await stat(path)).size;
      if (size === 0) throw new IvaBridgeInputError('EmptyFile', `${path} is empty`);
      jobs.push({ path, label: path, size, kind: fileKind });
    }
  }
  return { jobs, skipped };
}

const EXTENSION_BY_TYPE: [RegExp, string][] = [
  [/^application\/([\w.+-]*\+)?json\b/i, 'json'],
  [/^text\//i, 'txt'],
  [/^application\/x-www-form-urlencoded\b/i, 'txt'],
];

function resultFileName(job: FileJob, contentType: string, submissionId: string, unique: boolean): string {
  const ext = EXTENSION_BY_TYPE.find(([re]) => re.test(contentType))?.[1] ?? 'bin';
  const base = basename(job.path);
  return unique ? `${base}.${ext}` : `${base}.${submissionId}.${ext}`;
}

function errorOf(error: unknown): NonNullable<FileOutcome['error']> {
  if (error instanceof IvaBridgeError)
    return {
      code: error.code,
      message: error.message,
      ...(error.requestId ? { requestId: error.requestId } : {}),
      ...(error.status !== undefined ? { status: error.status } : {}),
    };
  return { code: 'UnexpectedError', message: (error as Error)?.message ?? String(error) };
}

export async function runSend(args: string[], io: CliIo): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  const parse = (a: string[]) => parseArgs({ args: a, options: OPTIONS, strict: true, allowPositionals: true });
  try {
    ({ values, positionals } = parse(args));
  } catch (error) {
    return failWith('send', io, new UsageError((error as Error).message));
  }
  if (values.help) {
    io.stdout.write(SEND_HELP);
    return EXIT_OK;
  }

  let client: IvaBridgeClient;
  let jobs: FileJob[];
  let skipped: { file: string; reason: string }[];
  let algoParamConf: Record<string, unknown> | undefined;
  let concurrency = 4;
  const clientOptions: Omit<IvaBridgeClientOptions, 'apiUrl' | 'apiKey'> = {};
  const kind = values.kind as MediaKind | undefined;
  try {
    if (positionals.length === 0) throw new UsageError('name at least one FILE or FOLDER to send');
    const taskId = values['task-id'];
    if (!taskId || taskId.trim() === '') throw new UsageError('--task-id is required');
    if (kind !== undefined && kind !== 'image' && kind !== 'video')
      throw new UsageError(`--kind must be image or video, got "${kind}"`);
    if (values['algo-param-conf'] !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(values['algo-param-conf']);
      } catch (error) {
        throw new UsageError(`--algo-param-conf is not valid JSON: ${(error as Error).message}`);
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new UsageError('--algo-param-conf must be a JSON object');
      algoParamConf = parsed as Record<string, unknown>;
    }
    if (values.concurrency !== undefined) {
      concurrency = Number(values.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new UsageError('--concurrency must be an integer from 1 to 64');
    }
    if (values['multipart-threshold'] !== undefined)
      clientOptions.multipartThresholdBytes = parseSize(values['multipart-threshold'], '--multipart-threshold');
    if (values['part-size'] !== undefined) {
      const partSize = parseSize(values['part-size'], '--part-size');
      if (partSize < 5 * 1024 ** 2 || partSize > 5 * 1024 ** 3)
        throw new UsageError('--part-size must be from 5MiB to 5GiB (S3 multipart limits)');
      clientOptions.partSizeBytes = partSize;
    }
    if (values['part-concurrency'] !== undefined) {
      const n = Number(values['part-concurrency']);
      if (!Number.isInteger(n) || n < 1 || n > 64)
        throw new UsageError('--part-concurrency must be an integer from 1 to 64');
      clientOptions.partConcurrency = n;
    }
    if (values.out !== undefined && !values.wait)
      throw new UsageError('--out saves results, which needs --wait (results arrive later)');
    ({ jobs, skipped } = await collect(positionals, kind));
    if (jobs.length === 0) throw new UsageError('no image or video files to send');
    client = await connect(values, io, clientOptions);
    if (values.out !== undefined) await mkdir(values.out, { recursive: true });
  } catch (error) {
    return failWith('send', io, error);
  }
  const taskId = values['task-id'] as string;
  const out = values.out;
  const stdout = io.stdout as Stream;
  const reporter: SendReporter = values.json
    ? jsonReporter(io)
    : stdout.isTTY
      ? await ttyReporter(
          io,
          jobs.reduce((sum, j) => sum + j.size, 0),
          jobs.length,
        )
      : plainReporter(io);
  for (const s of skipped) reporter.skipped(s.file, s.reason);

  const names = new Map<string, number>();
  for (const j of jobs) names.set(basename(j.path), (names.get(basename(j.path)) ?? 0) + 1);
  const outcomes: FileOutcome[] = [];

  // Sending is bounded by --concurrency; a file being waited for does not hold a send
  // slot, and the waits share their own bound (each polls GET /v1/submissions/{id}).
  const sending = createLimiter(concurrency);
  const waiting = createLimiter(WAIT_CONCURRENCY);
  const handle = async (job: FileJob): Promise<void> => {
    const outcome: FileOutcome = { file: job.label, ok: false, status: 'failed' };
    try {
      const sent = await sending.run(() => {
        reporter.started(job.label, job.size);
        return client.sendFile({
          path: job.path,
          taskId,
          ...(job.kind ? { kind: job.kind } : {}),
          ...(values.desc !== undefined ? { desc: values.desc } : {}),
          ...(algoParamConf ? { algoParamConf } : {}),
          idempotencyKey: randomUUID(),
          onProgress: (n) => reporter.progress(job.label, n),
          onRetry: (info) => reporter.retrying(job.label, info.reason),
        });
      });
      Object.assign(outcome, {
        submissionId: sent.submissionId,
        route: sent.route,
        kind: sent.kind,
        status: 'sent',
        ...(sent.dataId ? { dataId: sent.dataId } : {}),
      });
      if (!values.wait) {
        outcome.ok = true;
        return;
      }
      reporter.sent(job.label, sent.submissionId, sent.route);
      const final = await waiting.run(() =>
        client.waitFor(sent.submissionId, {
          intervalMs: 500,
          onStatus: (s) => reporter.waiting(job.label, s.Status),
        }),
      );
      outcome.status = final.Status;
      const dataId = final.ImageID ?? final.VideoID;
      if (dataId) outcome.dataId = dataId;
      if (final.Error)
        outcome.error = {
          code: final.Error.Code,
          message: final.Error.Message,
          ...(final.Error.RequestId ? { requestId: final.Error.RequestId } : {}),
        };
      if (out !== undefined && final.Result) {
        const result = await client.getResult(sent.submissionId);
        const file = join(
          out,
          resultFileName(job, result.contentType, sent.submissionId, names.get(basename(job.path)) === 1),
        );
        await writeFile(file, result.bytes);
        outcome.result = relative(process.cwd(), file) || file;
      }
      outcome.ok = final.Status === 'completed';
      if (!outcome.ok && !outcome.error)
        outcome.error = {
          code: final.Status === 'uncertain' ? 'SubmissionUncertain' : 'SubmissionNotCompleted',
          message:
            final.Status === 'uncertain'
              ? 'IVA may or may not have taken it; see GET /v1/submissions/{id} and resolve it'
              : `the submission ended ${final.Status}`,
        };
    } catch (error) {
      outcome.error = errorOf(error);
    } finally {
      outcomes.push(outcome);
      reporter.done(outcome);
    }
  };
  await Promise.all(jobs.map(handle));

  const failed = outcomes.filter((o) => !o.ok).length;
  const uncertain = outcomes.filter((o) => o.status === 'uncertain').length;
  const what = values.wait ? 'completed' : 'sent';
  reporter.finish(
    `iva-bridge send: ${outcomes.length - failed}/${outcomes.length} files ${what}${failed ? `, ${failed} not (see above)` : ''}${skipped.length ? `, ${skipped.length} skipped` : ''}`,
  );
  return failed === 0 ? EXIT_OK : failed === uncertain ? EXIT_UNCERTAIN : EXIT_IVA;
}
