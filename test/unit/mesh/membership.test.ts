import t from 'tap';
import { BroadcastQueue } from '../../../mesh/broadcast.js';
import { DEFAULT_CONFIG, pushPullScale, retransmitLimit, suspicionTimeouts, withDefaults, type MeshConfig } from '../../../mesh/config.js';
import type { MemberEvent } from '../../../mesh/membership.js';
import { messageSize } from '../../../mesh/codec.js';
import type { Message } from '../../../mesh/messages.js';
import { Sfc32 } from '../../../mesh/rng.js';
import { Suspicion } from '../../../mesh/suspicion.js';
import { type TimerHandle, Timers } from '../../../mesh/timers.js';
import { SimNet } from '../../bench/mesh-simnet.js';

/** n members that join one by one, each through a random earlier member (the real join path). */
function joined(n: number, seed = 1, config?: Partial<MeshConfig>, loss = 0): SimNet {
  const sim = new SimNet({ seed, loss, latency: [0.2, 1], roundTrip: true, ...(config ? { config } : {}) });
  for (let i = 0; i < n; i++) {
    sim.add(`m${i}`);
    if (i > 0) sim.join(`m${i}`, `m${sim.rng.int(i)}`);
    sim.runFor(50);
  }
  return sim;
}

function record(sim: SimNet): MemberEvent[] & { of: (observer: string) => MemberEvent[] } {
  const all: (MemberEvent & { observer: string })[] = [];
  for (const m of sim.members.values()) m.node.members.onEvent((e) => all.push({ ...e, observer: m.name }));
  return Object.assign(all, { of: (o: string) => all.filter((e) => e.observer === o) });
}

function statusAt(sim: SimNet, observer: string, target: string): string | undefined {
  return sim.members.get(observer)?.node.members.member(target)?.status;
}

t.test('rules: suspicion timeout scales with log(n) and shrinks with confirmations', async (t) => {
  const c = withDefaults();
  t.same(suspicionTimeouts(c, 1), { min: 4 * 500, max: 6 * 4 * 500 });
  t.same(suspicionTimeouts(c, 1000), { min: 4 * 3 * 500, max: 6 * 4 * 3 * 500 });
  const s = new Suspicion(0, 'a', 2, 1000, 6000);
  t.equal(s.deadline, 6000, 'no confirmation: max');
  t.notOk(s.confirm('a'), 'the accuser does not confirm itself');
  t.ok(s.confirm('b'));
  t.equal(s.deadline, Math.floor(6000 - (Math.log(2) / Math.log(3)) * 5000));
  t.notOk(s.confirm('b'), 'same confirmer twice');
  t.ok(s.confirm('c'));
  t.equal(s.deadline, 1000, 'k confirmations: min');
  t.notOk(s.confirm('d'), 'beyond k nothing changes');
  t.equal(new Suspicion(100, 'a', 0, 1000, 6000).deadline, 1100, 'k=0 (tiny cluster): min at once');
});

t.test('rules: retransmit limit, push/pull scale, broadcast queue order and invalidation', async (t) => {
  t.equal(retransmitLimit(4, 1), 4 * 1);
  t.equal(retransmitLimit(4, 1000), 4 * 4);
  t.equal(retransmitLimit(4, 999), 4 * 3);
  t.equal(pushPullScale(20_000, 32), 20_000);
  t.equal(pushPullScale(20_000, 1000), 20_000 * 6);
  const q = new BroadcastQueue();
  q.enqueue('m:a', { t: 'suspect', node: 'a', inc: 1, from: 'x' });
  q.enqueue('m:b', { t: 'suspect', node: 'b', inc: 1, from: 'x' });
  q.enqueue('m:a', { t: 'dead', node: 'a', inc: 1, from: 'x' });
  t.equal(q.length, 2, 'newer news about a replaces older');
  const first = q.take(1000, 1, 3);
  t.same(first.map((m) => m.t), ['dead'], 'newest first');
  const second = q.take(1000, 1, 3);
  t.same(second.map((m) => m.t), ['suspect'], 'then the least sent');
  for (let i = 0; i < 5; i++) q.take(1000, 10, 3);
  t.equal(q.length, 0, 'dropped after the limit');
  t.same(q.take(10, 10, 3), []);
});

/** The queue as first written (a sorted array rebuilt on every take), to check the faster one against. */
class ReferenceQueue {
  items: { key: string; msg: Message; size: number; transmits: number }[] = [];
  enqueue(key: string, msg: Message): void {
    this.items = this.items.filter((it) => it.key !== key);
    this.items.unshift({ key, msg, size: messageSize(msg), transmits: 0 });
  }
  take(budget: number, maxMsgs: number, limit: number): Message[] {
    const out: Message[] = [], kept: typeof this.items = [], taken: typeof this.items = [];
    for (const it of this.items) {
      if (out.length < maxMsgs && it.size <= budget) {
        budget -= it.size; out.push(it.msg); it.transmits++;
        if (it.transmits < limit) taken.push(it);
      } else kept.push(it);
    }
    const merged: typeof this.items = [];
    let i = 0, j = 0;
    while (i < kept.length || j < taken.length) {
      const a = kept[i], b = taken[j];
      if (b === undefined || (a !== undefined && a.transmits <= b.transmits)) { merged.push(a!); i++; } else { merged.push(b); j++; }
    }
    this.items = merged;
    return out;
  }
  prune(limit: number): void { this.items = this.items.filter((it) => it.transmits < limit); }
}

t.test('broadcast queue: same choices as the reference queue over random operations', async (t) => {
  const rng = new Sfc32(11);
  for (let run = 0; run < 200; run++) {
    const q = new BroadcastQueue(), ref = new ReferenceQueue();
    for (let op = 0; op < 200; op++) {
      const r = rng.next();
      if (r < 0.5) {
        const node = `n${rng.int(12)}`;
        const msg: Message = rng.next() < 0.5 ? { t: 'suspect', node, inc: op, from: 'x'.repeat(rng.int(40)) } : { t: 'alive', node, inc: op, addr: { host: node, port: 1 }, meta: new Uint8Array(rng.int(30)) };
        q.enqueue(`m:${node}`, msg); ref.enqueue(`m:${node}`, msg);
      } else if (r < 0.95) {
        const budget = 20 + rng.int(200), max = 1 + rng.int(5), limit = 1 + rng.int(6);
        const a = q.take(budget, max, limit), b = ref.take(budget, max, limit);
        if (a.length !== b.length || a.some((m, i) => m !== b[i])) { t.fail(`run ${run} op ${op}: take differs`); return; }
      } else {
        const limit = 1 + rng.int(4);
        q.prune(limit); ref.prune(limit);
      }
      if (q.length !== ref.items.length) { t.fail(`run ${run} op ${op}: length ${q.length} != ${ref.items.length}`); return; }
    }
  }
  t.pass('200 runs of 200 operations agree');
});

t.test('timers: run in time order (ties by creation), cancel removes', async (t) => {
  const rng = new Sfc32(5);
  const timers = new Timers();
  const ref: { at: number; id: number; live: boolean }[] = [];
  const handles: TimerHandle[] = [];
  const fired: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const at = rng.int(500);
    const id = i;
    handles.push(timers.at(at, () => fired.push(id)));
    ref.push({ at, id, live: true });
    if (rng.next() < 0.3) { const k = rng.int(handles.length); timers.cancel(handles[k]!); ref[k]!.live = false; }
  }
  timers.cancel(handles[0]!); ref[0]!.live = false; // twice is harmless
  t.equal(timers.size, ref.filter((r) => r.live).length, 'cancelled timers leave the heap');
  timers.run(250);
  timers.run(1000);
  const want = ref.filter((r) => r.live).sort((a, b) => a.at - b.at || a.id - b.id).map((r) => r.id);
  t.same(fired, want);
  t.equal(timers.next(), Infinity);
});

t.test('join through any member: everyone learns everyone', async (t) => {
  const sim = joined(8);
  sim.runFor(3000);
  for (const a of sim.members.values()) {
    const alive = a.node.members.allMembers().filter((m) => m.status === 'alive').length;
    t.equal(alive, 8, `${a.name} sees 8 alive`);
  }
});

t.test('a crashed member is declared dead by all within the budget; no one else is', async (t) => {
  const sim = joined(6);
  sim.runFor(3000);
  const ev = record(sim);
  const t0 = sim.now;
  sim.kill('m3');
  const c = DEFAULT_CONFIG;
  const { max } = suspicionTimeouts(c, 6);
  // Budget: a probe round finds it (≤ n intervals in the worst case, usually one), then suspicion.
  const budget = 6 * c.probeInterval + max + 1000;
  sim.runFor(budget, () => sim.live().every((m) => m.name === 'm3' || statusAt(sim, m.name, 'm3') === 'dead'));
  const took = sim.now - t0;
  for (const m of sim.live()) if (m.name !== 'm3') t.equal(statusAt(sim, m.name, 'm3'), 'dead', `${m.name} marks m3 dead`);
  t.ok(took <= budget, `all knew in ${took.toFixed(0)} ms (budget ${budget} ms)`);
  t.same(ev.filter((e) => e.kind === 'dead' && e.member.name !== 'm3'), [], 'no other death');
});

t.test('indirect probes keep a member alive when the direct path is cut', async (t) => {
  const sim = joined(5);
  sim.runFor(2000);
  const ev = record(sim);
  sim.partition((a, b) => (a === 'm0' && b === 'm1') || (a === 'm1' && b === 'm0'));
  sim.runFor(30_000);
  const m0 = sim.members.get('m0')?.node.members;
  t.ok((m0?.stats.indirectProbes ?? 0) > 0, 'm0 went indirect');
  t.same(ev.filter((e) => e.kind === 'dead'), [], 'nobody declared dead');
  t.equal(statusAt(sim, 'm0', 'm1'), 'alive');
});

t.test('TCP fallback probe keeps two members together when UDP between them is blocked', async (t) => {
  for (const tcpFallback of [true, false]) {
    const sim = joined(2, 3, { tcpFallback });
    sim.runFor(2000);
    const ev = record(sim);
    sim.partition(() => true, true);
    sim.runFor(20_000);
    const deaths = ev.filter((e) => e.kind === 'dead').length;
    if (tcpFallback) t.equal(deaths, 0, 'with TCP fallback: no death');
    else t.ok(deaths > 0, 'without it: they declare each other dead');
  }
});

t.test('refutation: an accused member bumps its incarnation and everyone sees it alive', async (t) => {
  const sim = joined(4);
  sim.runFor(2000);
  const m2 = sim.members.get('m2');
  if (!m2) throw new Error('missing');
  const inc0 = m2.node.members.incarnation;
  sim.members.get('m0')?.node.receive(sim.now, [{ t: 'suspect', node: 'm2', inc: inc0, from: 'm1' }], 'udp');
  sim.flush(sim.members.get('m0')!);
  t.equal(statusAt(sim, 'm0', 'm2'), 'suspect');
  sim.runFor(400, () => m2.node.members.incarnation > inc0);
  t.equal(m2.node.members.incarnation, inc0 + 1, 'incarnation bumped');
  t.equal(m2.node.members.awareness.health, 1, 'Lifeguard: being accused lowers own health');
  sim.runFor(3000);
  for (const m of sim.members.values()) t.equal(statusAt(sim, m.name, 'm2'), 'alive', `${m.name} sees m2 alive`);
  // Even a "dead" verdict is refuted by the living.
  sim.members.get('m1')?.node.receive(sim.now, [{ t: 'dead', node: 'm2', inc: inc0 + 1, from: 'm1' }], 'udp');
  sim.flush(sim.members.get('m1')!);
  sim.runFor(3000);
  t.equal(m2.node.members.incarnation, inc0 + 2);
  t.equal(statusAt(sim, 'm1', 'm2'), 'alive', 'revived by refutation');
  // Stale news (older incarnation) changes nothing.
  sim.members.get('m3')?.node.receive(sim.now, [{ t: 'suspect', node: 'm2', inc: inc0, from: 'm1' }], 'udp');
  t.equal(statusAt(sim, 'm3', 'm2'), 'alive');
});

t.test('Lifeguard: a member that hears nothing doubts itself and probes less', async (t) => {
  const sim = joined(6, 5, { suspicionMult: 20 });
  sim.runFor(2000);
  const slow = sim.members.get('m5')!.node.members, ok = sim.members.get('m0')!.node.members;
  const p0 = { slow: slow.stats.probes, ok: ok.stats.probes };
  sim.partition((_a, b) => b === 'm5'); // m5 hears nothing at all (UDP and TCP)
  sim.runFor(20_000);
  t.ok(slow.awareness.health >= 3, `health score ${slow.awareness.health}`);
  t.equal(ok.awareness.health, 0, 'healthy members stay at 0');
  const probesSlow = slow.stats.probes - p0.slow, probesOk = ok.stats.probes - p0.ok;
  t.ok(probesSlow * 2 < probesOk, `slow probed ${probesSlow} times, healthy ${probesOk}`);
});

t.test('graceful leave: others see "left", quickly, and nobody is declared dead', async (t) => {
  const sim = joined(5);
  sim.runFor(2000);
  const ev = record(sim);
  const m4 = sim.members.get('m4')!;
  m4.node.members.leave();
  sim.flush(m4);
  sim.runFor(1000);
  sim.kill('m4');
  sim.runFor(1000);
  for (const m of sim.live()) t.equal(statusAt(sim, m.name, 'm4'), 'left', `${m.name}`);
  t.same(ev.filter((e) => e.kind === 'dead'), []);
});

t.test('deterministic: the same seed replays the same history', async (t) => {
  const trace = (seed: number): string => {
    const sim = joined(6, seed, undefined, 0.1);
    const ev = record(sim);
    sim.kill('m2');
    sim.runFor(15_000);
    return ev.map((e) => `${e.at.toFixed(3)} ${e.kind} ${e.member.name} ${e.member.inc}`).join('\n');
  };
  const a = trace(11), b = trace(11), c = trace(12);
  t.ok(a.length > 0);
  t.equal(a, b);
  t.not(a, c);
});
