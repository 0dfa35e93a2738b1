/**
 * The functions as Lambda runs them: each handler bundled by esbuild into one ESM file,
 * with the settings infra/stack.ts gives NodejsFunction (format esm, target node22,
 * main fields module/main, the createRequire banner, the AWS SDK bundled, source maps).
 * A bundle loads in a fraction of the time a TypeScript loader needs per process, and is
 * what the deployed function runs rather than the sources.
 *
 * Cached under `.local/cache/functions-<hash>/`, keyed by every source file under
 * functions/ and lib/, the runner and package-lock.json: a start after no change reuses it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './template';

const ESM_REQUIRE_SHIM = "import { createRequire } from 'module';const require = createRequire(import.meta.url);";
const RUNNER = 'local/stack/function-runner.ts';

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (/\.(ts|mts|js|mjs|json)$/.test(name)) out.push(path);
  }
  return out;
}

function bundleHash(entries: Record<string, string>): string {
  const hash = createHash('sha256');
  const files = [
    ...sourceFiles(join(REPO_ROOT, 'functions')),
    ...sourceFiles(join(REPO_ROOT, 'lib')),
    join(REPO_ROOT, RUNNER),
    join(REPO_ROOT, 'package-lock.json'),
  ].sort();
  hash.update(JSON.stringify(entries));
  for (const file of files) {
    hash.update(relative(REPO_ROOT, file));
    hash.update(readFileSync(file));
  }
  return hash.digest('hex').slice(0, 16);
}

export interface FunctionBundles {
  dir: string;
  /** The runner (local/stack/function-runner.ts) as plain JavaScript. */
  runner: string;
  /** Bundle file by entry name. */
  files: Record<string, string>;
  /** False when an earlier start's bundles were reused. */
  built: boolean;
}

/** Bundles `entries` (name → handler path relative to the repository) unless cached. */
export async function bundleFunctions(entries: Record<string, string>, cacheDir: string): Promise<FunctionBundles> {
  const all = { ...entries, 'function-runner': RUNNER };
  const dir = join(cacheDir, `functions-${bundleHash(all)}`);
  const files = Object.fromEntries(Object.keys(entries).map((name) => [name, join(dir, `${name}.mjs`)]));
  const result = { dir, runner: join(dir, 'function-runner.mjs'), files };
  if (existsSync(join(dir, 'function-runner.mjs'))) return { ...result, built: false };
  const { build } = await import('esbuild');
  const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  await mkdir(tmp, { recursive: true });
  try {
    await build({
      entryPoints: Object.fromEntries(Object.entries(all).map(([name, path]) => [name, join(REPO_ROOT, path)])),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: { js: ESM_REQUIRE_SHIM },
      sourcemap: true,
      sourcesContent: false,
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      logLevel: 'error',
    });
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another process (a parallel test) built the same bundles first: theirs are identical.
      if (!existsSync(join(dir, 'function-runner.mjs'))) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { ...result, built: true };
}
