#!/usr/bin/env node
// The CLI is TypeScript: tsx's ESM loader compiles it on the fly. Paths are resolved
// from this file, not the working directory, so the command works from anywhere.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../lib/cli/main.ts');
