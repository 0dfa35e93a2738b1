/**
 * Vitest setup: a test that fails prints the function processes' output of its run
 * (kept in memory by local/stack/function-output.ts); a passing one prints nothing.
 */
import { afterEach } from 'vitest';
import { recentFunctionOutput } from '../../local/stack/function-output';

afterEach((context) => {
  const lines = recentFunctionOutput();
  if (context.task.result?.state === 'fail' && lines.length > 0)
    console.error(`--- function output (last ${lines.length} lines) ---\n${lines.join('\n')}`);
});
