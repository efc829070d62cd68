// Run many more seeded Raft schedules than CI does: node dist/test/bench/raft-sim.js [first] [count]
import { optionsForSeed, runSim } from '../unit/raft/sim.js';

const first = Number(process.argv[2] ?? 2001);
const count = Number(process.argv[3] ?? 10_000);
const t0 = Date.now();
let bad = 0;
for (let s = first; s < first + count; s++) {
  const r = runSim(optionsForSeed(s));
  if (!r.ok) {
    bad++;
    console.log(`seed ${s} FAILED: ${r.error}`);
  }
}
console.log(`${count} schedules from seed ${first}: ${bad} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(bad ? 1 : 0);
