#!/usr/bin/env node
// The built-in test workload (dataplane/runtime/workload.ts): `workload.js http --port 80` or
// `workload.js udp --port 9000`. Tasks of the netns runtime run it with node, no image needed.
import { existsSync } from 'node:fs';
const entry = new URL('../dist/dataplane/runtime/workload.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('the workload is not built yet: run `npm ci && npm run build` in the repository first');
  process.exit(1);
}
const { workloadMain } = await import(entry.href);
await workloadMain(process.argv.slice(2));
