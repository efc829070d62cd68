// CI-size run of the simulation figures (the bench runs 1,000 members for 10 minutes).
import t from 'tap';
import { cluster, convergence, falsePositives } from '../../bench/mesh-sim.js';
import { SimNet } from '../../bench/mesh-simnet.js';
import type { NetEvent, PushPull } from '../../../mesh/messages.js';

const N = Number(process.env.MESH_SIM_N ?? 200);

t.test(`convergence of a join, a table update and a failure at ${N} members`, async (t) => {
  const r = convergence(N, 1, 0.01);
  t.comment(`join p50 ${r.join.p50.toFixed(0)} ms p99 ${r.join.p99.toFixed(0)} ms; table p50 ${r.table.p50.toFixed(0)} ms p99 ${r.table.p99.toFixed(0)} ms; ` +
    `failure detected ${r.failureDetect.toFixed(0)} ms, known to all p50 ${r.failure.p50.toFixed(0)} p99 ${r.failure.p99.toFixed(0)} ms; ` +
    `${r.bytesPerMemberPerSec.toFixed(0)} B/s and ${r.packetsPerMemberPerSec.toFixed(1)} packets/s per member; wall ${r.wallMs} ms`);
  t.equal(r.join.missing, 0, 'every member learned the join');
  t.equal(r.table.missing, 0, 'every member learned the table update');
  t.equal(r.failure.missing, 0, 'every member learned the failure');
  t.ok(r.join.p99 < 2000, 'join within 2 s (Serf: ~2 s to 99.9% at 1,000)');
  t.ok(r.table.p99 < 2000, 'table update within 2 s');
  // Detection = finding it (about one probe interval) + the suspicion timeout (Lifeguard min..max).
  t.ok(r.failureDetect < 4 * 2.4 * 500 * 6, 'failure detected within the suspicion max');
  t.ok(r.failure.p99 - r.failureDetect < 2000, 'then known to all within 2 s');
  t.ok(r.bytesPerMemberPerSec < 5000, 'steady-state cost stays small');
});

t.test(`no false positives under 10% packet loss (${N} members, 1 simulated minute)`, async (t) => {
  const r = falsePositives(N, 2, 0.1, 60_000);
  t.comment(`${r.falseDeclarations} false declarations, ${r.victims} victims, ${r.suspicions} suspicions, ${r.refutations} refutations, ${r.bytesPerMemberPerSec.toFixed(0)} B/s per member; wall ${r.wallMs} ms`);
  t.equal(r.falseDeclarations, 0);
  t.equal(r.victims, 0);
});

t.test('counting bytes with packetSize() replays a run that encodes and decodes every packet exactly', async (t) => {
  // Same seed, same 40-member cluster, 20 s at 10% loss: one run sizes packets, the other round-trips
  // every packet through the codec; every member's counters must agree.
  const n = 40;
  const sized = cluster(n, 3, 0.1);
  const rt = cluster(n, 3, 0.1, undefined, true);
  sized.runFor(20_000);
  rt.runFor(20_000);
  const sig = (ms: Iterable<{ name: string; bytesOut: number; packetsOut: number; node: { members: { stats: object; incarnation: number } } }>): string =>
    JSON.stringify([...ms].map((m) => [m.name, m.bytesOut, m.packetsOut, m.node.members.incarnation, m.node.members.stats]));
  t.ok(sized.delivered > 0);
  t.equal(sig(rt.members.values()), sig(sized.members.values()));
  t.equal(rt.delivered, sized.delivered);
});
