#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (npm run build).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/control/cli/meshctl.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('meshctl is not built yet: run `npm ci && npm run build` in the repository first');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
