/**
 * The Node.js the functions run on locally: the deployed runtime is nodejs22.x, so the
 * local stack runs each function process on Node 22 when it can find one (a difference
 * between Node 20 and 22 then shows up here first), else on the Node running the stack.
 *
 * Looked up once and remembered in `.local/cache/node22.json`: this process's Node when it
 * is 22; `IVA_BRIDGE_FUNCTION_NODE` (a path); a node@22 from npx's cache; else
 * `npx -p node@22` (downloads it once from the npm registry, about 10 s).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const FUNCTION_NODE_MAJOR = 22;

export interface FunctionNode {
  path: string;
  version: string;
  /** Why this one (printed once by npm start). */
  note: string;
  /** False when the functions run on another major than the deployed runtime's. */
  matchesRuntime: boolean;
}

function versionOf(path: string): string | undefined {
  try {
    const out = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return out.status === 0 ? out.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

const isMajor = (version: string | undefined): boolean => version?.startsWith(`v${FUNCTION_NODE_MAJOR}.`) === true;

function fromNpxCache(): string | undefined {
  const root = join(process.env.npm_config_cache || join(homedir(), '.npm'), '_npx');
  let dirs: string[];
  try {
    dirs = readdirSync(root);
  } catch {
    return undefined;
  }
  for (const dir of dirs) {
    const candidate = join(root, dir, 'node_modules/node/bin/node');
    if (existsSync(candidate) && isMajor(versionOf(candidate))) return candidate;
  }
  return undefined;
}

function fromNpx(): string | undefined {
  try {
    const out = execFileSync('npx', ['-y', '-p', `node@${FUNCTION_NODE_MAJOR}`, '-c', 'command -v node'], {
      encoding: 'utf8',
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return out && isMajor(versionOf(out)) ? out : undefined;
  } catch {
    return undefined;
  }
}

let resolved: FunctionNode | undefined;

function remember(node: FunctionNode): FunctionNode {
  resolved = node;
  return node;
}

export async function functionNode(cacheDir: string): Promise<FunctionNode> {
  if (resolved) return resolved;
  const here = (note: string): FunctionNode => ({
    path: process.execPath,
    version: process.version,
    note,
    matchesRuntime: isMajor(process.version),
  });
  if (isMajor(process.version)) return remember(here(`Node ${process.version} (this process), as nodejs22.x`));
  const override = process.env.IVA_BRIDGE_FUNCTION_NODE;
  if (override) {
    const version = versionOf(override);
    if (!version) throw new Error(`IVA_BRIDGE_FUNCTION_NODE=${override} does not run`);
    return remember({
      path: override,
      version,
      note: `Node ${version} (IVA_BRIDGE_FUNCTION_NODE)`,
      matchesRuntime: isMajor(version),
    });
  }
  const cacheFile = join(cacheDir, 'node22.json');
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { path?: string };
    const version = cached.path ? versionOf(cached.path) : undefined;
    if (cached.path && isMajor(version))
      return remember({
        path: cached.path,
        version: version!,
        note: `Node ${version} (npx node@22)`,
        matchesRuntime: true,
      });
  } catch {
    // not cached yet
  }
  const found = fromNpxCache() ?? (process.env.IVA_BRIDGE_NO_NPX ? undefined : fromNpx());
  if (found) {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(cacheFile, `${JSON.stringify({ path: found })}\n`);
    const version = versionOf(found)!;
    return remember({ path: found, version, note: `Node ${version} (npx node@22)`, matchesRuntime: true });
  }
  return remember(
    here(
      `Node ${process.version} (this process): no Node ${FUNCTION_NODE_MAJOR} found (npx -p node@${FUNCTION_NODE_MAJOR} failed), so the functions do NOT run on the deployed runtime's Node`,
    ),
  );
}
