/**
 * Vitest setup: a passing test prints nothing, a failing one shows what it needs.
 * - The function processes' output of its run (kept in memory by
 *   local/stack/function-output.ts).
 * - The JSON lines Powertools' logger writes in this process (handler tests call the
 *   handlers in-process): held back per test, printed only when it fails. Other output
 *   (a test's own summary line) passes through.
 */
import { afterEach, beforeEach } from 'vitest';
import { recentFunctionOutput } from '../../local/stack/function-output';

const held: string[] = [];

function holdLogLines(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : undefined;
    if (text?.startsWith('{"level":')) {
      held.push(text.trimEnd());
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

holdLogLines(process.stdout);
holdLogLines(process.stderr);

beforeEach(() => {
  held.length = 0;
});

afterEach((context) => {
  const failed = context.task.result?.state === 'fail';
  const lines = recentFunctionOutput();
  if (failed && lines.length > 0)
    console.error(`--- function output (last ${lines.length} lines) ---\n${lines.join('\n')}`);
  if (failed && held.length > 0) console.error(`--- log lines of this test (${held.length}) ---\n${held.join('\n')}`);
  held.length = 0;
});
