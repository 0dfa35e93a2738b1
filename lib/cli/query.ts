/** `iva-bridge status | list | wait | result`: read submissions and results from iva-bridge's API. */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CONNECTION_HELP, CONNECTION_OPTIONS, UsageError, cliLine, connect, describeError, failWith } from './connect';
import type { IvaBridgeClient } from '../client/client';
import type { Resolution } from '../client/types';
import { EXIT_IVA, EXIT_OK, EXIT_UNCERTAIN, type CliIo } from './submit';

export const STATUS_HELP = `Usage: iva-bridge status ID... [connection options]

Prints each submission as one JSON line (SubmissionId, Status, TaskID, ImageID/VideoID,
RequestId, Error, Result, ...). Exit 1 if any id is unknown or unreadable.

${CONNECTION_HELP}
`;

export const LIST_HELP = `Usage: iva-bridge list (--task-id ID [--status STATUS] | --status STATUS) [connection options]

Prints every submission of a task, newest first, one JSON line each; --status keeps only
those in that state (pending, submitted, completed, failed, uncertain, overdue, expired).
With --status and no --task-id: that state across every task (e.g. --status uncertain,
the submissions waiting for their owner's verdict: see iva-bridge resolve / resubmit).

${CONNECTION_HELP}
`;

export const WAIT_HELP = `Usage: iva-bridge wait ID... [--timeout SECONDS] [connection options]

Polls each submission until it reaches a final state (completed, failed, uncertain,
expired) and prints it as one JSON line. Exit 0 when all completed, 3 when the others
ended uncertain (IVA may or may not have them), 1 otherwise (or on timeout).

${CONNECTION_HELP}
`;

export const RESULT_HELP = `Usage: iva-bridge result ID [--out FILE] [--result-id RID] [connection options]

Writes the submission's final result (the callback body IVA sent, byte for byte) to FILE,
or to stdout. --result-id fetches one of the bodies "GET /v1/submissions/ID/results" lists.
Exit 1 with "ResultNotReady" while there is no final result yet (see iva-bridge wait).

${CONNECTION_HELP}
`;

function parse<O extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(
  args: string[],
  options: O,
  positionals: boolean,
) {
  try {
    return parseArgs({
      args,
      options: { ...CONNECTION_OPTIONS, ...options },
      strict: true,
      allowPositionals: positionals,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export async function runStatus(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(args, {}, true);
    if (values.help) {
      io.stdout.write(STATUS_HELP);
      return EXIT_OK;
    }
    if (positionals.length === 0) throw new UsageError('name at least one submission ID');
    const client = await connect(values, io);
    let code = EXIT_OK;
    for (const id of positionals) {
      try {
        io.stdout.write(`${JSON.stringify(await client.getSubmission(id))}\n`);
      } catch (error) {
        io.stderr.write(cliLine(`iva-bridge status: ${id}: ${describeError(error)}`));
        code = EXIT_IVA;
      }
    }
    return code;
  } catch (error) {
    return failWith('status', io, error);
  }
}

export async function runList(args: string[], io: CliIo): Promise<number> {
  try {
    const { values } = parse(args, { 'task-id': { type: 'string' }, status: { type: 'string' } }, false);
    if (values.help) {
      io.stdout.write(LIST_HELP);
      return EXIT_OK;
    }
    const taskId = values['task-id'];
    if (!taskId && !values.status) throw new UsageError('give --task-id, --status, or both');
    const client = await connect(values, io);
    const items = taskId ? client.iterateTaskSubmissions(taskId) : client.iterateSubmissions(values.status as string);
    for await (const s of items) {
      if (values.status === undefined || s.Status === values.status) io.stdout.write(`${JSON.stringify(s)}\n`);
    }
    return EXIT_OK;
  } catch (error) {
    return failWith('list', io, error);
  }
}

/** `--timeout SECONDS` in ms; a usage error unless it is a positive number. */
function timeoutOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--timeout must be a positive number of seconds');
  return seconds * 1000;
}

/** Follows one submission to its final state, prints it, and says what it ended as (exit code). */
async function waitAndReport(
  client: IvaBridgeClient,
  id: string,
  timeoutMs: number | undefined,
  io: CliIo,
  command: string,
): Promise<number> {
  const final = await client.waitFor(id, timeoutMs !== undefined ? { timeoutMs } : {});
  io.stdout.write(`${JSON.stringify(final)}\n`);
  if (final.Status === 'completed') return EXIT_OK;
  if (final.Status === 'uncertain') {
    io.stderr.write(cliLine(`iva-bridge ${command}: ${id}: ended uncertain: IVA may or may not have it; resolve it`));
    return EXIT_UNCERTAIN;
  }
  io.stderr.write(
    cliLine(
      `iva-bridge ${command}: ${id}: ended ${final.Status}${final.Error ? ` ${final.Error.Code}: ${final.Error.Message}` : ''}`,
    ),
  );
  return EXIT_IVA;
}

/** 0 when every one completed, 3 when the others ended uncertain, 1 otherwise. */
function worstExit(codes: readonly number[]): number {
  if (codes.every((c) => c === EXIT_OK)) return EXIT_OK;
  return codes.every((c) => c === EXIT_OK || c === EXIT_UNCERTAIN) ? EXIT_UNCERTAIN : EXIT_IVA;
}

export async function runWait(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(args, { timeout: { type: 'string' } }, true);
    if (values.help) {
      io.stdout.write(WAIT_HELP);
      return EXIT_OK;
    }
    if (positionals.length === 0) throw new UsageError('name at least one submission ID');
    const timeoutMs = timeoutOf(values.timeout);
    const client = await connect(values, io);
    const codes = await Promise.all(
      positionals.map(async (id) => {
        try {
          return await waitAndReport(client, id, timeoutMs, io, 'wait');
        } catch (error) {
          io.stderr.write(cliLine(`iva-bridge wait: ${id}: ${describeError(error)}`));
          return EXIT_IVA;
        }
      }),
    );
    return worstExit(codes);
  } catch (error) {
    return failWith('wait', io, error);
  }
}

export async function runResult(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(args, { out: { type: 'string' }, 'result-id': { type: 'string' } }, true);
    if (values.help) {
      io.stdout.write(RESULT_HELP);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError('name exactly one submission ID');
    const client = await connect(values, io);
    const result = await client.getResult(positionals[0] as string, {
      ...(values['result-id'] ? { resultId: values['result-id'] } : {}),
    });
    if (values.out) {
      await writeFile(values.out, result.bytes);
      io.stderr.write(`iva-bridge result: ${result.bytes.length} bytes (${result.contentType}) → ${values.out}\n`);
    } else io.stdout.write(result.bytes);
    return EXIT_OK;
  } catch (error) {
    return failWith('result', io, error);
  }
}

export const RESOLVE_HELP = `Usage: iva-bridge resolve ID --as submitted|failed [--image-id X | --video-id X | --data-id X]
                         [--request-id R] [--note TEXT] [connection options]

Records the owner's verdict on an uncertain submission (IVA's answer was lost, so
iva-bridge cannot know whether IVA has it). --as submitted: IVA has it (its id, if
given, links its result callback); --as failed: IVA does not, and it is not sent again.
Prints the submission as one JSON line. Exit 1 if it is not uncertain (SubmissionNotUncertain).

${CONNECTION_HELP}
`;

export const RESUBMIT_HELP = `Usage: iva-bridge resubmit ID... [--note TEXT] [--wait] [--timeout SECONDS] [connection options]

Sends uncertain uploads (S3 objects, or files sent through POST /v1/uploads) to IVA again,
when you know IVA does not have them: each is queued to object-created and comes back
pending, under the same submission id. --wait follows each to its final state. A direct
submission cannot be resubmitted (its bytes are not kept: ResubmitNeedsFile); resolve it
--as failed and send the file again. Exit codes as iva-bridge wait with --wait, else 0/1.

${CONNECTION_HELP}
`;

export async function runResolve(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(
      args,
      {
        as: { type: 'string' },
        'image-id': { type: 'string' },
        'video-id': { type: 'string' },
        'data-id': { type: 'string' },
        'request-id': { type: 'string' },
        note: { type: 'string' },
      },
      true,
    );
    if (values.help) {
      io.stdout.write(RESOLVE_HELP);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError('name exactly one submission ID');
    const ids = (['image-id', 'video-id', 'data-id'] as const).filter((name) => values[name] !== undefined);
    if (ids.length > 1) throw new UsageError('give at most one of --image-id, --video-id, --data-id');
    const note = values.note !== undefined ? { Note: values.note } : {};
    let resolution: Resolution;
    if (values.as === 'failed') {
      if (ids.length > 0 || values['request-id'] !== undefined)
        throw new UsageError('--image-id, --video-id, --data-id and --request-id go with --as submitted');
      resolution = { Status: 'failed', ...note };
    } else if (values.as === 'submitted') {
      resolution = {
        Status: 'submitted',
        ...(values['image-id'] !== undefined ? { ImageID: values['image-id'] } : {}),
        ...(values['video-id'] !== undefined ? { VideoID: values['video-id'] } : {}),
        ...(values['data-id'] !== undefined ? { DataID: values['data-id'] } : {}),
        ...(values['request-id'] !== undefined ? { RequestId: values['request-id'] } : {}),
        ...note,
      };
    } else throw new UsageError('--as must be submitted (IVA has it) or failed (IVA does not)');
    const client = await connect(values, io);
    const id = positionals[0] as string;
    try {
      io.stdout.write(`${JSON.stringify(await client.resolve(id, resolution))}\n`);
      return EXIT_OK;
    } catch (error) {
      io.stderr.write(cliLine(`iva-bridge resolve: ${id}: ${describeError(error)}`));
      return EXIT_IVA;
    }
  } catch (error) {
    return failWith('resolve', io, error);
  }
}

export async function runResubmit(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(
      args,
      { note: { type: 'string' }, wait: { type: 'boolean' }, timeout: { type: 'string' } },
      true,
    );
    if (values.help) {
      io.stdout.write(RESUBMIT_HELP);
      return EXIT_OK;
    }
    if (positionals.length === 0) throw new UsageError('name at least one submission ID');
    const timeoutMs = timeoutOf(values.timeout);
    const client = await connect(values, io);
    const codes = await Promise.all(
      positionals.map(async (id) => {
        try {
          const queued = await client.resubmit(id, values.note !== undefined ? { note: values.note } : {});
          if (!values.wait) {
            io.stdout.write(`${JSON.stringify(queued)}\n`);
            return EXIT_OK;
          }
          return await waitAndReport(client, id, timeoutMs, io, 'resubmit');
        } catch (error) {
          io.stderr.write(cliLine(`iva-bridge resubmit: ${id}: ${describeError(error)}`));
          return EXIT_IVA;
        }
      }),
    );
    return worstExit(codes);
  } catch (error) {
    return failWith('resubmit', io, error);
  }
}
