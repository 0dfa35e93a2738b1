/**
 * Where the function processes' output goes by default: printed as is (npm start), or,
 * under vitest, kept in memory and printed only for a test that fails
 * (test/support/function-output.ts), so passing tests print no JSON log lines.
 * No imports: the test setup loads it in every test file.
 */
const LIMIT = 400;
const recent: string[] = [];

export function defaultFunctionOutput(line: string, functionName: string): void {
  if (process.env.VITEST) {
    recent.push(`[${functionName}] ${line}`);
    if (recent.length > LIMIT) recent.splice(0, recent.length - LIMIT);
  } else console.log(line);
}

/** The last lines kept under vitest (at most 400), oldest first; `clear` empties the buffer. */
export function recentFunctionOutput(clear = true): string[] {
  return clear ? recent.splice(0) : [...recent];
}
