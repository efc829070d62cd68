import t from 'tap';
import type { MeshConfig } from '../../../mesh/config.js';
import type { TableChange, Tables } from '../../../mesh/tables.js';
import { SimNet } from '../../bench/mesh-simnet.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function joined(n: number, seed = 1, config?: Partial<MeshConfig>): SimNet {
  const sim = new SimNet({ seed, loss: 0, latency: [0.2, 1], roundTrip: true, ...(config ? { config } : {}) });
  for (let i = 0; i < n; i++) {
    sim.add(`m${i}`);
    if (i > 0) sim.join(`m${i}`, `m${sim.rng.int(i)}`);
    sim.runFor(50);
  }
  sim.runFor(2000);
  return sim;
}

const tables = (sim: SimNet, name: string): Tables => {
  const m = sim.members.get(name);
  if (!m) throw new Error(name);
  return m.node.tables;
};

/** Call an API on a member and let the simulator carry what it sent. */
function act(sim: SimNet, name: string, fn: (tb: Tables) => void): void {
  fn(tables(sim, name));
  sim.flush(sim.members.get(name)!);
}

function snapshot(sim: SimNet, name: string, net: string): string {
  return tables(sim, name).entries(net).map((e) => `${e.table}/${e.key}=${dec(e.value)}@${e.owner}`).sort().join(' ');
}

t.test('tables stay inside their network; changes arrive as typed events', async (t) => {
  const sim = joined(4);
  act(sim, 'm0', (tb) => tb.joinNetwork('blue'));
  act(sim, 'm1', (tb) => tb.joinNetwork('blue'));
  act(sim, 'm2', (tb) => tb.joinNetwork('red'));
  sim.runFor(2000);
  t.same(tables(sim, 'm3').networkNodes('blue').sort(), ['m0', 'm1'], 'network membership is known cluster-wide');
  const seen: TableChange[] = [];
  tables(sim, 'm1').subscribe({ network: 'blue', table: 'endpoints' }, (c) => seen.push(c));
  act(sim, 'm0', (tb) => tb.put('blue', 'endpoints', 'task1', enc('10.0.1.2')));
  sim.runFor(1000);
  act(sim, 'm0', (tb) => tb.put('blue', 'endpoints', 'task1', enc('10.0.1.3')));
  act(sim, 'm0', (tb) => tb.put('blue', 'other', 'x', enc('ignored by the filter')));
  sim.runFor(1000);
  act(sim, 'm0', (tb) => { t.ok(tb.delete('blue', 'endpoints', 'task1')); });
  sim.runFor(1000);
  t.same(seen.map((c) => `${c.type} ${c.key} ${dec(c.value)} ${c.owner}`), ['add task1 10.0.1.2 m0', 'update task1 10.0.1.3 m0', 'delete task1 10.0.1.3 m0']);
  t.ok((seen[1]?.version ?? 0) > (seen[0]?.version ?? 0), 'Lamport versions grow');
  t.equal(tables(sim, 'm1').get('blue', 'other', 'x')?.owner, 'm0');
  for (const other of ['m2', 'm3']) {
    t.equal(tables(sim, other).stats.eventsIn, 0, `${other} never received a blue table event`);
    t.same(tables(sim, other).entries('blue'), []);
  }
  t.throws(() => tables(sim, 'm3').put('blue', 'endpoints', 'k', enc('v')), 'writing needs membership');
  t.notOk(tables(sim, 'm1').delete('blue', 'other', 'x'), 'only the owner deletes');
});

t.test('tombstones are reaped after the configured delay', async (t) => {
  const sim = joined(3, 2, { tombstoneReap: 5000 });
  for (const n of ['m0', 'm1', 'm2']) act(sim, n, (tb) => tb.joinNetwork('blue'));
  sim.runFor(1000);
  act(sim, 'm0', (tb) => tb.put('blue', 'ep', 'a', enc('1')));
  sim.runFor(1000);
  act(sim, 'm0', (tb) => tb.delete('blue', 'ep', 'a'));
  sim.runFor(1000);
  t.equal(tables(sim, 'm2').tombstones('blue'), 1, 'tombstone held');
  t.equal(tables(sim, 'm2').get('blue', 'ep', 'a'), undefined);
  sim.runFor(8000);
  for (const n of ['m0', 'm1', 'm2']) t.equal(tables(sim, n).tombstones('blue'), 0, `${n} reaped`);
});

t.test('entries of a member that dies, leaves the cluster or leaves the network are removed everywhere', async (t) => {
  const sim = joined(5);
  for (const n of ['m0', 'm1', 'm2', 'm3', 'm4']) act(sim, n, (tb) => tb.joinNetwork('blue'));
  sim.runFor(1000);
  for (const n of ['m1', 'm2', 'm3']) act(sim, n, (tb) => tb.put('blue', 'ep', n, enc(`ip-of-${n}`)));
  sim.runFor(2000);
  t.equal(snapshot(sim, 'm0', 'blue'), 'ep/m1=ip-of-m1@m1 ep/m2=ip-of-m2@m2 ep/m3=ip-of-m3@m3');
  const deletes: string[] = [];
  tables(sim, 'm0').subscribe({}, (c) => { if (c.type === 'delete') deletes.push(c.key); });
  sim.kill('m1');
  act(sim, 'm2', (tb) => tb.leaveNetwork('blue'));
  const m3 = sim.members.get('m3')!;
  m3.node.members.leave();
  sim.flush(m3);
  sim.runFor(500);
  sim.kill('m3');
  sim.runFor(15_000);
  for (const n of ['m0', 'm4']) t.equal(snapshot(sim, n, 'blue'), '', `${n}: nothing left`);
  t.same(deletes.sort(), ['m1', 'm2', 'm3']);
});

t.test('concurrent writes to one key converge to the same winner everywhere', async (t) => {
  const sim = joined(4, 9);
  for (const n of ['m0', 'm1', 'm2', 'm3']) act(sim, n, (tb) => tb.joinNetwork('blue'));
  sim.runFor(1000);
  act(sim, 'm1', (tb) => tb.put('blue', 'ep', 'shared', enc('from m1')));
  act(sim, 'm2', (tb) => tb.put('blue', 'ep', 'shared', enc('from m2')));
  sim.runFor(3000);
  const views = ['m0', 'm1', 'm2', 'm3'].map((n) => snapshot(sim, n, 'blue'));
  t.equal(new Set(views).size, 1, `all agree: ${views[0]}`);
});

t.test('after a partition heals, membership and tables converge again (push/pull catch-up)', async (t) => {
  const sim = joined(6, 4, { reconnectInterval: 2000, tableSyncInterval: 5000 });
  const all = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
  for (const n of all) act(sim, n, (tb) => tb.joinNetwork('blue'));
  sim.runFor(1000);
  for (const n of all) act(sim, n, (tb) => tb.put('blue', 'ep', n, enc(`v1-${n}`)));
  sim.runFor(2000);
  const left = new Set(['m0', 'm1', 'm2']);
  sim.partition((a, b) => left.has(a) !== left.has(b));
  sim.runFor(30_000);
  t.equal(sim.members.get('m0')!.node.members.member('m4')?.status, 'dead', 'the halves gave up on each other');
  t.equal(snapshot(sim, 'm0', 'blue'), 'ep/m0=v1-m0@m0 ep/m1=v1-m1@m1 ep/m2=v1-m2@m2', 'and dropped the other half\'s entries');
  // Changes on both sides while split.
  act(sim, 'm0', (tb) => tb.put('blue', 'ep', 'm0', enc('v2-m0')));
  act(sim, 'm3', (tb) => tb.delete('blue', 'ep', 'm3'));
  act(sim, 'm4', (tb) => tb.put('blue', 'ep', 'm4-extra', enc('new-in-split')));
  sim.runFor(3000);
  sim.partition(null);
  const expected = 'ep/m0=v2-m0 ep/m1=v1-m1 ep/m2=v1-m2 ep/m4=v1-m4 ep/m4-extra=new-in-split@m4 ep/m5=v1-m5'
    .split(' ').map((s) => (s.includes('@') ? s : `${s}@${s.slice(3, 5)}`)).sort().join(' ');
  const converged = (): boolean => all.every((n) => snapshot(sim, n, 'blue') === expected);
  const t0 = sim.now;
  sim.runFor(60_000, converged);
  for (const n of all) {
    t.equal(snapshot(sim, n, 'blue'), expected, `${n} converged`);
    t.equal(sim.members.get(n)!.node.members.allMembers().filter((m) => m.status === 'alive').length, 6, `${n} sees all alive`);
  }
  t.comment(`healed in ${((sim.now - t0) / 1000).toFixed(1)} s of simulated time`);
});

t.test('an entry too large for one gossip packet is refused up front', async (t) => {
  const sim = joined(1);
  act(sim, 'm0', (tb) => tb.joinNetwork('blue'));
  t.throws(() => tables(sim, 'm0').put('blue', 'ep', 'big', new Uint8Array(2000)), /too large/);
  t.doesNotThrow(() => tables(sim, 'm0').put('blue', 'ep', 'ok', new Uint8Array(1000)));
});
