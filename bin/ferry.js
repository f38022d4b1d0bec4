#!/usr/bin/env node
// The `ferry` command. Runs the compiled JavaScript in dist/ (built by `npm run build`, which
// `npm ci` runs through the prepare script): starting through a TypeScript loader instead
// would add most of a second to every start.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("ferry: dist/ is missing: run 'npm run build' (npm ci does it too)\n");
  process.exit(1);
}
await import(main.href);
