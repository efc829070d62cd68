// Shared driver for the seeded simulation test files: runs a range of seeds (or only RAFT_SEED) and
// reports each failure with the command line that replays it.
import type { Test } from 'tap';
import { optionsForSeed, runSim } from './sim.js';

export function runSeedRange(t: Test, first: number, count: number): void {
  const only = process.env.RAFT_SEED;
  const seeds: number[] = [];
  if (only !== undefined && only !== '') {
    const s = Number(only);
    // run the seed only in the file whose range holds it (or in the first file for outside seeds)
    if ((s >= first && s < first + count) || (first === 1 && (s < 1 || s > 2000))) seeds.push(s);
  } else for (let s = first; s < first + count; s++) seeds.push(s);
  const t0 = Date.now();
  let failures = 0;
  const totals = { elections: 0, committed: 0, ops: 0, completed: 0, snapshotsSent: 0, crashes: 0, confChanges: 0, reads: 0 };
  for (const seed of seeds) {
    const o = optionsForSeed(seed);
    const r = runSim(o);
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats[k];
    if (!r.ok) {
      failures++;
      t.fail(`seed ${seed} (${JSON.stringify(o)}): ${r.error}\n  replay: RAFT_SEED=${seed} npx tap dist/test/unit/raft/`);
      if (failures >= 5) break;
    }
  }
  t.pass(`${seeds.length} schedules in ${Date.now() - t0} ms: ${JSON.stringify(totals)}`);
}
