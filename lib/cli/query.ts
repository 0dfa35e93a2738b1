/** `iva-bridge status | list | wait | result`: read submissions and results from iva-bridge's API. */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CONNECTION_HELP, CONNECTION_OPTIONS, UsageError, cliLine, connect, describeError, failWith } from './connect';
import { EXIT_IVA, EXIT_OK, EXIT_UNCERTAIN, type CliIo } from './submit';

export const STATUS_HELP = `Usage: iva-bridge status ID... [connection options]

Prints each submission as one JSON line (SubmissionId, Status, TaskID, ImageID/VideoID,
RequestId, Error, Result, ...). Exit 1 if any id is unknown or unreadable.

${CONNECTION_HELP}
`;

export const LIST_HELP = `Usage: iva-bridge list --task-id ID [--status STATUS] [connection options]

Prints every submission of a task, newest first, one JSON line each; --status keeps only
those in that state (pending, submitted, completed, failed, uncertain).

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
    if (!taskId) throw new UsageError('--task-id is required');
    const client = await connect(values, io);
    for await (const s of client.iterateTaskSubmissions(taskId)) {
      if (values.status === undefined || s.Status === values.status) io.stdout.write(`${JSON.stringify(s)}\n`);
    }
    return EXIT_OK;
  } catch (error) {
    return failWith('list', io, error);
  }
}

export async function runWait(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(args, { timeout: { type: 'string' } }, true);
    if (values.help) {
      io.stdout.write(WAIT_HELP);
      return EXIT_OK;
    }
    if (positionals.length === 0) throw new UsageError('name at least one submission ID');
    let timeoutMs: number | undefined;
    if (values.timeout !== undefined) {
      const seconds = Number(values.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0)
        throw new UsageError('--timeout must be a positive number of seconds');
      timeoutMs = seconds * 1000;
    }
    const client = await connect(values, io);
    const codes = await Promise.all(
      positionals.map(async (id) => {
        try {
          const final = await client.waitFor(id, timeoutMs !== undefined ? { timeoutMs } : {});
          io.stdout.write(`${JSON.stringify(final)}\n`);
          if (final.Status === 'completed') return EXIT_OK;
          if (final.Status === 'uncertain') {
            io.stderr.write(cliLine(`iva-bridge wait: ${id}: ended uncertain: IVA may or may not have it; resolve it`));
            return EXIT_UNCERTAIN;
          }
          io.stderr.write(
            cliLine(
              `iva-bridge wait: ${id}: ended ${final.Status}${final.Error ? ` ${final.Error.Code}: ${final.Error.Message}` : ''}`,
            ),
          );
          return EXIT_IVA;
        } catch (error) {
          io.stderr.write(cliLine(`iva-bridge wait: ${id}: ${describeError(error)}`));
          return EXIT_IVA;
        }
      }),
    );
    if (codes.every((c) => c === EXIT_OK)) return EXIT_OK;
    return codes.every((c) => c === EXIT_OK || c === EXIT_UNCERTAIN) ? EXIT_UNCERTAIN : EXIT_IVA;
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
