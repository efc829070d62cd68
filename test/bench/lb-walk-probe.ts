// Probe, not part of `npm run bench`: what a one-backend change costs the kernel by where the
// frontend's backend map sits in the table's list of sets. The kernel finds a set named in a
// request by walking that list from its start (nft_set_lookup), so at 10,000 frontends the cost of
// an element-only change grows with the map's position; every commit also walks every chain of
// the namespace (nf_tables_commit, step 2). Changes as the lb bench makes them (plan against the
// backend's model, then apply), the commit time grouped by quarter of the list.
//   node dist/test/bench/lb-walk-probe.js [frontends=10000] [seconds=20]
import os from 'node:os';
import { createNetns, deleteNetns } from '../../dataplane/netlink/index.js';
import { openBackend, plan, type LbState } from '../../dataplane/lb/index.js';
import { bigState } from './lb-bench.js';
import { percentile } from './figures.js';

const n = Number(process.argv[2] ?? 10000);
const seconds = Number(process.argv[3] ?? 20);
const NS = `mtwalk${process.pid % 100000}`;
deleteNetns(NS);
createNetns(NS);
try {
  const s = bigState(n, 10);
  const be = openBackend('nftables', NS);
  await be.apply(plan(s, await be.observe()));
  // Maps are created in plan()'s order (by key, as strings): that is their place in the list.
  const place = new Map(Object.keys(s.frontends).sort().map((k, i) => [k, i]));
  const keys = Object.keys(s.frontends);
  const byQuarter: number[][] = [[], [], [], []];
  const all: number[] = [];
  let cur: LbState = s;
  const t0 = Date.now();
  for (let i = 1; Date.now() - t0 < seconds * 1000; i++) {
    const key = keys[(i * 7919) % keys.length]!;
    const f = structuredClone(cur.frontends[key]!);
    f.backends['10.250.0.1'] = f.backends['10.250.0.1'] === undefined ? 1 : 3 - f.backends['10.250.0.1']!;
    cur = { frontends: { ...cur.frontends, [key]: f } };
    const r = await be.apply(plan(cur, be.known()!));
    byQuarter[Math.floor((place.get(key)! / n) * 4)]!.push(r.commitMs ?? 0);
    all.push(r.commitMs ?? 0);
  }
  be.close();
  const q = (xs: number[]): string => `p50 ${percentile(xs, 50).toFixed(2)} p99 ${percentile(xs, 99).toFixed(2)}`;
  console.log(`${all.length} changes at ${n.toLocaleString('en')} x 10, load average ${os.loadavg()[0]!.toFixed(1)}: kernel transaction ${q(all)} ms`);
  byQuarter.forEach((xs, i) => console.log(`  maps in quarter ${i + 1} of the set list: ${q(xs)} ms (${xs.length} changes)`));
} finally {
  deleteNetns(NS);
}
