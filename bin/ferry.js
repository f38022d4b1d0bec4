#!/usr/bin/env node
// The `ferry` command: loads the TypeScript CLI through tsx so that no build step is needed.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
