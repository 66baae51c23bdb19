#!/usr/bin/env node
// The `sorsa` command's entry, checked in so that `npm ci` links it (npm links a package's bin only
// when the file exists at install time, and dist/ is built afterwards). It loads the built command
// line, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('sorsa: the command line is not built yet (no packages/sorsa/dist/cli/main.js): run `npm run build` at the repository root first');
  process.exit(1);
}
await import(main.href);
