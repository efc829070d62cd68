#!/usr/bin/env node
// Entry point: the compiled daemon lives in dist/ (npm run build).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/control/daemon/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('meshd is not built yet: run `npm ci && npm run build` in the repository first');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv).catch((e) => {
  console.error(`meshd: ${e.message}`);
  process.exit(1);
});
