/**
 * How `iva-bridge send` reports: progress bars (cli-progress) per file in flight and one
 * overall on a terminal; plain lines when stdout is not a terminal; with `--json` one JSON
 * line per file on stdout and nothing else there.
 */
import type { CliIo } from './submit';

export interface FileOutcome {
  file: string;
  ok: boolean;
  submissionId?: string;
  route?: 'direct' | 'upload' | 'multipart';
  kind?: string;
  dataId?: string;
  /** Final status when waited for, else `sent`. */
  status: string;
  /** Where the result was saved. */
  result?: string;
  error?: { code: string; message: string; requestId?: string; status?: number };
}

export interface SendReporter {
  skipped(file: string, reason: string): void;
  started(file: string, size: number): void;
  progress(file: string, sent: number): void;
  retrying(file: string, reason: string): void;
  sent(file: string, submissionId: string, route: string): void;
  waiting(file: string, status: string): void;
  done(outcome: FileOutcome): void;
  finish(summary: string): void;
}

export type Stream = CliIo['stdout'] & { isTTY?: boolean; columns?: number };

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

function describeOutcome(o: FileOutcome): string {
  if (!o.ok && o.error) {
    const rid = o.error.requestId ? ` (RequestId ${o.error.requestId})` : '';
    const id = o.submissionId ? ` [${o.submissionId}]` : '';
    return `${o.file}: ${o.status} ${o.error.code}: ${o.error.message}${rid}${id}`;
  }
  return `${o.file}: ${o.status} ${o.submissionId ?? ''}${o.route ? ` (${o.route})` : ''}${o.result ? ` → ${o.result}` : ''}`;
}

export function plainReporter(io: CliIo): SendReporter {
  return {
    skipped: (file, reason) => io.stderr.write(`iva-bridge send: skipped ${file}: ${oneLine(reason)}\n`),
    started: () => undefined,
    progress: () => undefined,
    retrying: () => undefined,
    sent: (file, id, route) => io.stdout.write(`sent ${file} → ${id} (${route})\n`),
    waiting: () => undefined,
    done: (o) => {
      if (o.ok) io.stdout.write(`${oneLine(describeOutcome(o))}\n`);
      else io.stderr.write(`iva-bridge send: ${oneLine(describeOutcome(o))}\n`);
    },
    finish: (summary) => io.stdout.write(`${summary}\n`),
  };
}

export function jsonReporter(io: CliIo): SendReporter {
  return {
    skipped: (file, reason) =>
      io.stdout.write(
        `${JSON.stringify({ file, ok: false, status: 'skipped', error: { code: 'Skipped', message: reason } })}\n`,
      ),
    started: () => undefined,
    progress: () => undefined,
    retrying: () => undefined,
    sent: () => undefined,
    waiting: () => undefined,
    done: (o) => io.stdout.write(`${JSON.stringify(o)}\n`),
    finish: (summary) => io.stderr.write(`${summary}\n`),
  };
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Bars for the files in flight and one for all bytes; finished files become log lines above. */
export async function ttyReporter(io: CliIo, totalBytes: number, totalFiles: number): Promise<SendReporter> {
  const { MultiBar, Presets } = (await import('cli-progress')).default;
  const stream = io.stdout as unknown as NodeJS.WritableStream;
  const multi = new MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      autopadding: true,
      format: ' {bar} {percentage}% | {name} | {status}',
      barsize: 24,
      etaBuffer: 50,
      forceRedraw: false,
    },
    Presets.shades_classic,
  );
  const overall = multi.create(Math.max(totalBytes, 1), 0, {
    name: `all ${totalFiles} files`.padEnd(28).slice(0, 28),
    status: `0/${totalFiles} done, ${humanBytes(0)}/${humanBytes(totalBytes)}`,
  });
  const bars = new Map<string, { bar: ReturnType<typeof multi.create>; sent: number; size: number }>();
  let bytesDone = 0;
  let filesDone = 0;
  const label = (file: string) => {
    const base = file.length > 28 ? `…${file.slice(-27)}` : file;
    return base.padEnd(28);
  };
  const updateOverall = () => {
    let inFlight = 0;
    for (const b of bars.values()) inFlight += b.sent;
    overall.update(Math.min(bytesDone + inFlight, Math.max(totalBytes, 1)), {
      status: `${filesDone}/${totalFiles} done, ${humanBytes(bytesDone + inFlight)}/${humanBytes(totalBytes)}`,
    });
  };
  return {
    skipped: (file, reason) => multi.log(`skipped ${file}: ${oneLine(reason)}\n`),
    started: (file, size) => {
      bars.set(file, {
        bar: multi.create(Math.max(size, 1), 0, { name: label(file), status: 'sending' }),
        sent: 0,
        size,
      });
    },
    progress: (file, sent) => {
      const b = bars.get(file);
      if (!b) return;
      b.sent = sent;
      b.bar.update(sent);
      updateOverall();
    },
    retrying: (file, reason) => bars.get(file)?.bar.update({ status: `retrying (${oneLine(reason).slice(0, 30)})` }),
    sent: (file) => {
      const b = bars.get(file);
      if (!b) return;
      b.bar.update(b.size, { status: 'sent' });
    },
    waiting: (file, status) => bars.get(file)?.bar.update({ status }),
    done: (o) => {
      const b = bars.get(o.file);
      if (b) {
        multi.remove(b.bar);
        bars.delete(o.file);
        bytesDone += b.size;
      }
      filesDone += 1;
      multi.log(`${o.ok ? '✓' : '✗'} ${oneLine(describeOutcome(o))}\n`);
      updateOverall();
    },
    finish: (summary) => {
      updateOverall();
      multi.stop();
      io.stdout.write(`${summary}\n`);
    },
  };
}
