// `npm run bench [-- NAME...]`: runs the benchmarks and prints named figures; where a peer runs on
// this machine it runs in the same process run and the ratio is printed.
import { formatFigure, ratioInOurFavour, type Figure } from './figures.js';
import { netlinkBench } from './netlink-bench.js';
import { raftVsEtcdBench } from './raft-vs-etcd.js';
import { schedulerBench } from './scheduler-bench.js';
import { meshSimBench } from './mesh-sim.js';
import { meshFuzzBench } from './mesh-fuzz.js';
import { servicesBench } from './services-bench.js';
import { allocatorBench } from './allocator-bench.js';
import { dnsPerfBench } from './dns-perf.js';
import { overlayBench } from './overlay-bench.js';
import { ingressBench } from './ingress-bench.js';
import { lbBench } from './lb-bench.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Benches written as scripts print their own figures; run them as they are.
function script(file: string, ...args: string[]): () => Promise<Figure[]> {
  return async () => {
    const r = spawnSync(process.execPath, [fileURLToPath(new URL(file, import.meta.url)), ...args], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${file} exited with ${r.status}`);
    return [];
  };
}

const benches: Record<string, () => Promise<Figure[]>> = {
  netlink: netlinkBench,
  raft: raftVsEtcdBench,
  'raft-sim': script('./raft-sim.js', '1', '10000'),
  mesh: meshSimBench,
  'mesh-fuzz': meshFuzzBench,
  dns: script('./dns-resolver.js'),
  'dns-fuzz': script('./dns-fuzz.js'),
  'dns-perf': dnsPerfBench,
  scheduler: schedulerBench,
  services: servicesBench,
  allocator: allocatorBench,
  overlay: overlayBench,
  ingress: ingressBench,
  lb: lbBench,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const json = process.argv.includes('--format=json') || process.argv.includes('--json');
for (const w of wanted) if (!(w in benches)) {
  console.error(`unknown bench "${w}" (have: ${Object.keys(benches).join(', ')})`);
  process.exit(2);
}
if (process.getuid?.() !== 0) console.error('note: kernel benchmarks need root');
const all: Figure[] = [];
for (const [name, run] of Object.entries(benches)) {
  if (wanted.length && !wanted.includes(name)) continue;
  if (!json) console.log(`== ${name}`);
  const figures = await run();
  all.push(...figures);
  if (!json) for (const f of figures) console.log(formatFigure(f));
}
if (json) console.log(JSON.stringify(all.map((f) => ({ ...f, ratio: ratioInOurFavour(f) })), null, 2));
