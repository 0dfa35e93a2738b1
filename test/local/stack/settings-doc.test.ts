/**
 * Every environment variable scripts/local-stack.ts (npm start) reads is in the README's
 * settings table, so a newcomer can find each one.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

describe('npm start settings', () => {
  it('names every variable the script reads in the README', async () => {
    const script = await readFile(new URL('../../../scripts/local-stack.ts', import.meta.url), 'utf8');
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(
      readme.indexOf('## On one machine: `npm start`'),
      readme.indexOf('## Deploying to AWS'),
    );
    const read = new Set<string>();
    for (const m of script.matchAll(/env(?:\.|\[')([A-Z][A-Z0-9_]+)|port\('([A-Z0-9_]+)'|positive\('([A-Z0-9_]+)'/g))
      read.add((m[1] ?? m[2] ?? m[3])!);
    const { ENV } = await import('../../../lib/config');
    const { SWEEP_ENV } = await import('../../../lib/sweep/settings');
    for (const m of script.matchAll(/\bENV\.(\w+)/g)) read.add(ENV[m[1] as keyof typeof ENV]);
    for (const m of script.matchAll(/\bSWEEP_ENV\.(\w+)/g)) read.add(SWEEP_ENV[m[1] as keyof typeof SWEEP_ENV]);
    // Set by the script for its own process (the SDK's Node-version notice), not a setting.
    read.delete('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED');
    const names = [...read];
    expect(names.length).toBeGreaterThan(15);
    for (const name of names) expect(section, name).toContain(name);
  });
});
