#!/usr/bin/env node
// The `ferry` command. Runs the compiled JavaScript in dist/ (built by `npm run build`, which
// scripts/setup.sh and `npm pack` run; a release tarball has it built): starting through a
// TypeScript loader instead would add most of a second to every start.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("ferry: dist/ is missing: run 'npm run build' in this checkout (scripts/setup.sh does it too)\n");
  process.exit(1);
}
await import(main.href);
