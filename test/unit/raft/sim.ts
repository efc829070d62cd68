// Seeded cluster simulator for the Raft core. Everything (network delays, loss, duplication,
// partitions, crashes, client requests, election timeouts) derives from one seed, so a failing
// schedule replays exactly. Invariants are checked as the schedule runs; the client history is
// checked for linearizability at the end.
import { RawNode, type Ready } from '../../../control/raft/node.js';
import { MemoryStorage, bootstrapStorage } from '../../../control/raft/storage.js';
import { seededRandom } from '../../../control/raft/rand.js';
import { NONE, decodeConfChange, type Entry, type Message, type NodeId, type Snapshot } from '../../../control/raft/types.js';
import { checkHistory, type Op } from './linearizability.js';

export interface SimOptions {
  seed: number;
  nodes: 3 | 5;
  /** Ticks of faulty operation, followed by a fault-free settling phase. */
  ticks: number;
  loss: number;
  dup: number;
  crashes: boolean;
  partitions: boolean;
  membership: boolean;
  /** Deliberately broken variants, to prove the checks can fail. */
  broken?: 'staleReads' | 'amnesia';
}

export interface SimResult {
  ok: boolean;
  error?: string;
  stats: { elections: number; committed: number; ops: number; completed: number; snapshotsSent: number; crashes: number; confChanges: number; reads: number };
}

/** Options for a seed: the seed alone decides the fault mix, so RAFT_SEED=n replays it. */
export function optionsForSeed(seed: number, ticks = 250): SimOptions {
  const r = seededRandom(seed ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return {
    seed,
    nodes: r() < 0.5 ? 3 : 5,
    ticks,
    loss: pick([0, 0.02, 0.1, 0.25]),
    dup: pick([0, 0.02, 0.1]),
    crashes: r() < 0.7,
    partitions: r() < 0.7,
    membership: r() < 0.35,
  };
}

const SUB = 4; // sub-steps per tick: message delays are finer than the tick
const TICK_MS = 100;
const enc = new TextEncoder();
const dec = new TextDecoder();

class SimFailure extends Error {}

interface Cmd {
  id: string;
  k: string;
  v: string;
}

interface PendingRead {
  op: MutableOp;
  index: number;
}

interface MutableOp {
  id: string;
  kind: 'put' | 'get';
  key: string;
  value: string;
  call: number;
  ret: number;
  client: number;
  node: NodeId;
  failed: boolean;
}

class SimNode {
  raft: RawNode | null = null;
  kv = new Map<string, string>();
  seenOps = new Set<string>();
  applied = 0;
  incarnation = 0;
  phase: number;
  /** Client writes awaiting application on this node (lost on crash). */
  writes = new Map<string, MutableOp>();
  reads = new Map<string, MutableOp>();
  readyReads: PendingRead[] = [];
  constructor(
    readonly id: NodeId,
    public disk: MemoryStorage,
    phase: number,
  ) {
    this.phase = phase;
  }
}

export function runSim(o: SimOptions): SimResult {
  const rnd = seededRandom(o.seed);
  const chance = (p: number): boolean => rnd() < p;
  const int = (n: number): number => Math.floor(rnd() * n);
  const stats = { elections: 0, committed: 0, ops: 0, completed: 0, snapshotsSent: 0, crashes: 0, confChanges: 0, reads: 0 };

  const founders: NodeId[] = [];
  for (let i = 1; i <= o.nodes; i++) founders.push(`n${i}`);
  const nodes = new Map<NodeId, SimNode>();
  let nextId = o.nodes + 1;
  let now = 0; // sub-step
  let clock = 0; // history event order
  const buckets: Message[][] = [];
  const partitionOf = new Map<NodeId, number>();
  const faultEnd = o.ticks * SUB; // sub-step where the faults stop and settling starts
  let partitionUntil = 0;
  const down = new Map<NodeId, number>(); // crashed node -> restart sub-step

  // ---- global invariant state ----
  const leaderOfTerm = new Map<number, NodeId>();
  const voteOf = new Map<string, NodeId>(); // `${node}:${term}` -> vote
  const entryAt = new Map<string, string>(); // `${index}:${term}` -> content
  const prevTermOf = new Map<string, number>(); // `${index}:${term}` -> term of index-1
  const committed: string[] = []; // index -> `${term}:${content}` (index 0 unused)
  const appliedAnywhere = new Set<string>(); // op ids applied by some node
  // Cluster membership as of the newest applied conf change: what a client's member list would say.
  let membersAt = 0;
  let members = new Set<NodeId>();
  const history: MutableOp[] = [];

  const fail = (what: string): never => {
    throw new SimFailure(`t=${now / SUB} ${what}`);
  };

  const content = (e: Entry): string => e.type + ':' + dec.decode(e.data);

  const start = (n: SimNode): void => {
    n.incarnation++;
    const snap = n.disk.snapshot();
    restoreState(n, snap);
    n.writes.clear();
    n.reads.clear();
    n.readyReads = [];
    n.raft = new RawNode({
      id: n.id,
      storage: n.disk,
      random: seededRandom((o.seed * 7919 + Number(n.id.slice(1)) * 104729 + n.incarnation * 15485863) >>> 0),
      tickMs: TICK_MS,
      heartbeatMs: 100,
      electionMs: 1000,
      maxSizePerMsg: 4096,
      maxInflight: 16,
    });
    process(n);
  };

  const restoreState = (n: SimNode, snap: Snapshot): void => {
    n.kv = new Map();
    n.seenOps = new Set();
    if (snap.data.length) {
      const s = JSON.parse(dec.decode(snap.data)) as { kv: [string, string][]; seen: string[] };
      n.kv = new Map(s.kv);
      n.seenOps = new Set(s.seen);
    }
    n.applied = snap.meta.index;
  };

  const addNode = (id: NodeId, bootstrap: boolean): SimNode => {
    const disk = new MemoryStorage();
    if (bootstrap) bootstrapStorage(disk, founders);
    const n = new SimNode(id, disk, int(SUB));
    nodes.set(id, n);
    start(n);
    return n;
  };

  const sendAll = (msgs: Message[]): void => {
    for (const m of msgs) {
      if (m.type === 'snap') stats.snapshotsSent++;
      let delay = 1 + int(3);
      if (chance(0.05)) delay += int(30); // occasional long delay: reordering
      (buckets[now + delay] ??= []).push(m);
      if (now < faultEnd && chance(o.dup)) (buckets[now + 1 + int(40)] ??= []).push(m);
    }
  };

  const persist = (n: SimNode, rd: Ready): void => {
    const disk = n.disk;
    if (rd.snapshot) disk.applySnapshot(rd.snapshot);
    if (rd.entries.length) {
      disk.append(rd.entries);
      // Log matching: an (index, term) pair names one entry with one predecessor, forever.
      for (const e of rd.entries) {
        const key = `${e.index}:${e.term}`;
        const c = content(e);
        const had = entryAt.get(key);
        if (had === undefined) entryAt.set(key, c);
        else if (had !== c) fail(`log matching: ${n.id} entry ${key} is ${c}, elsewhere ${had}`);
        const prev = disk.term(e.index - 1);
        if (prev === null) continue;
        const hadPrev = prevTermOf.get(key);
        if (hadPrev === undefined) prevTermOf.set(key, prev);
        else if (hadPrev !== prev) fail(`log matching: ${n.id} entry ${key} follows term ${prev}, elsewhere ${hadPrev}`);
      }
    }
    if (rd.hardState) {
      const hs = rd.hardState;
      const old = disk.hardState;
      if (hs.term < old.term) fail(`${n.id} term went back ${old.term} -> ${hs.term}`);
      if (hs.vote !== NONE) {
        const k = `${n.id}:${hs.term}`;
        const v = voteOf.get(k);
        if (v !== undefined && v !== hs.vote) fail(`${n.id} voted twice in term ${hs.term}: ${v} and ${hs.vote}`);
        voteOf.set(k, hs.vote);
      }
      disk.setHardState(hs);
    }
  };

  const applyEntry = (n: SimNode, e: Entry): void => {
    if (e.index !== n.applied + 1) fail(`${n.id} applied ${e.index} after ${n.applied}`);
    n.applied = e.index;
    // State machine safety: every node applies the same entry at each index.
    const c = `${e.term}:${content(e)}`;
    const prev = committed[e.index];
    if (prev === undefined) {
      committed[e.index] = c;
      stats.committed = Math.max(stats.committed, e.index);
    } else if (prev !== c) fail(`state machine safety: ${n.id} applied ${c} at ${e.index}, others ${prev}`);
    if (e.type === 'conf') {
      const cc = decodeConfChange(e.data);
      const cs = n.raft!.applyConfChange(cc);
      if (e.index > membersAt) {
        membersAt = e.index;
        members = new Set([...cs.voters, ...cs.learners]);
      }
      if (cc.type !== 'remove' && !nodes.has(cc.node)) addNode(cc.node, false);
      return;
    }
    if (e.data.length === 0) return;
    const cmd = JSON.parse(dec.decode(e.data)) as Cmd;
    appliedAnywhere.add(cmd.id);
    // client retries/duplicates are deduplicated by op id, as a real state machine would
    if (!n.seenOps.has(cmd.id)) {
      n.seenOps.add(cmd.id);
      n.kv.set(cmd.k, cmd.v);
    }
    const w = n.writes.get(cmd.id);
    if (w) {
      n.writes.delete(cmd.id);
      complete(w, w.value);
    }
  };

  const complete = (op: MutableOp, value: string): void => {
    if (op.ret !== Infinity || op.failed) return;
    op.value = value;
    op.ret = ++clock;
    stats.completed++;
    if (clients[op.client] === op) clients[op.client] = null;
  };

  const serveReads = (n: SimNode): void => {
    if (!n.readyReads.length) return;
    const keep: PendingRead[] = [];
    for (const r of n.readyReads) {
      if (n.applied >= r.index) complete(r.op, n.kv.get(r.op.key) ?? '');
      else keep.push(r);
    }
    n.readyReads = keep;
  };

  const checkLeaderCompleteness = (n: SimNode): void => {
    const log = n.raft!.raft.log;
    const first = log.firstIndex();
    for (let i = first; i < committed.length; i++) {
      const c = committed[i];
      if (c === undefined) continue;
      const t = log.term(i);
      if (t === null) continue;
      if (String(t) !== c.slice(0, c.indexOf(':'))) fail(`leader completeness: leader ${n.id} term ${n.raft!.raft.term} has term ${t} at committed ${i} (${c})`);
    }
  };

  const process = (n: SimNode): void => {
    const rn = n.raft;
    if (!rn) return;
    while (rn.hasReady()) {
      const rd = rn.ready();
      persist(n, rd);
      sendAll(rd.messages);
      if (rd.softState?.state === 'leader') {
        const term = rn.raft.term;
        const had = leaderOfTerm.get(term);
        if (had !== undefined && had !== n.id) fail(`election safety: ${had} and ${n.id} both lead term ${term}`);
        leaderOfTerm.set(term, n.id);
        stats.elections++;
        checkLeaderCompleteness(n);
      }
      if (rd.snapshot) restoreState(n, rd.snapshot);
      for (const e of rd.committedEntries) applyEntry(n, e);
      for (const rs of rd.readStates) {
        const op = n.reads.get(rs.context);
        if (!op) continue;
        n.reads.delete(rs.context);
        n.readyReads.push({ op, index: rs.index });
      }
      serveReads(n);
      rn.advance(rd);
      maybeCompact(n);
    }
  };

  const maybeCompact = (n: SimNode): void => {
    const disk = n.disk;
    if (n.applied - disk.firstIndex() < 24) return;
    const data = enc.encode(JSON.stringify({ kv: [...n.kv], seen: [...n.seenOps] }));
    disk.createSnapshot(n.applied, n.raft!.raft.confState(), data);
    disk.compact(n.applied - 4);
  };

  const reachable = (a: NodeId, b: NodeId): boolean => (partitionOf.get(a) ?? 0) === (partitionOf.get(b) ?? 0);

  const deliver = (m: Message): void => {
    const n = nodes.get(m.to);
    if (!n || !n.raft) return;
    if (!reachable(m.from, m.to)) return;
    // Loss stops when the faults do: liveness is checked after healing. (Under steady loss a leader
    // is only elected with some probability per election timeout, lower still with 4 voters, which
    // need 2 of 3 peers per round trip; a fixed deadline then fails now and then by chance alone.)
    if (now < faultEnd && chance(o.loss)) return;
    n.raft.step(m);
    process(n);
  };

  const crash = (n: SimNode): void => {
    n.raft = null;
    stats.crashes++;
    // in-flight requests stay in the history without a response (writes may still commit)
    for (let c = 0; c < CLIENTS; c++) if (clients[c]?.node === n.id) clients[c] = null;
    if (o.broken === 'amnesia') {
      // BROKEN on purpose: the disk forgets the vote and everything after the snapshot.
      const hs = n.disk.hardState;
      const snap = n.disk.snapshot();
      const d = new MemoryStorage();
      if (snap.meta.index > 0) d.applySnapshot(snap);
      else if (founders.includes(n.id)) bootstrapStorage(d, founders);
      d.setHardState({ term: hs.term, vote: NONE, commit: Math.max(snap.meta.index, d.hardState.commit) });
      n.disk = d;
    }
  };

  // ---- clients ----
  const CLIENTS = 3;
  const KEYS = ['a', 'b', 'c'];
  const clients: (MutableOp | null)[] = new Array<MutableOp | null>(CLIENTS).fill(null);
  const clientDeadline: number[] = new Array<number>(CLIENTS).fill(0);
  let opSeq = 0;

  const clientStep = (c: number): void => {
    const cur = clients[c];
    if (cur && now < clientDeadline[c]!) return;
    // give up on a request (it stays in the history with no response)
    clients[c] = null;
    if (!chance(0.3)) return;
    // Clients talk to current members only, as a real client's member list would have it. A removed
    // node keeps running here (it may never learn of its removal, and must not disrupt the cluster),
    // but it no longer receives the log: a request it forwards can commit yet never complete there.
    const live = [...nodes.values()].filter((n) => n.raft && members.has(n.id));
    if (!live.length) return;
    const n = live[int(live.length)]!;
    const id = `c${c}-${++opSeq}`;
    const kind = chance(0.5) ? 'put' : 'get';
    const op: MutableOp = { id, kind, key: KEYS[int(KEYS.length)]!, value: kind === 'put' ? id : '', call: ++clock, ret: Infinity, client: c, node: n.id, failed: false };
    stats.ops++;
    history.push(op);
    clients[c] = op;
    clientDeadline[c] = now + 40 * SUB;
    const rn = n.raft!;
    if (kind === 'put') {
      n.writes.set(id, op);
      const ok = rn.propose(enc.encode(JSON.stringify({ id, k: op.key, v: op.value } satisfies Cmd)));
      if (!ok) {
        n.writes.delete(id);
        op.failed = true; // dropped locally: never entered any log
        clients[c] = null;
      }
    } else if (o.broken === 'staleReads') {
      // BROKEN on purpose: serve from local state without ReadIndex.
      complete(op, n.kv.get(op.key) ?? '');
    } else {
      stats.reads++;
      n.reads.set(id, op);
      if (!rn.readIndex(id)) {
        n.reads.delete(id);
        op.failed = true;
        clients[c] = null;
      }
    }
    process(n);
  };

  // ---- membership driver ----
  const leader = (): SimNode | undefined => {
    let best: SimNode | undefined;
    for (const n of nodes.values()) if (n.raft?.isLeader() && (!best || n.raft.raft.term > best.raft!.raft.term)) best = n;
    return best;
  };

  const membershipStep = (): void => {
    const l = leader();
    if (!l) return;
    const rn = l.raft!;
    const conf = rn.raft.confState();
    let ok = false;
    if (conf.learners.length) ok = rn.proposeConfChange({ type: 'addVoter', node: conf.learners[0]! });
    else if (conf.voters.length < 5 && chance(0.6)) {
      const id = `n${nextId}`;
      ok = rn.proposeConfChange({ type: 'addLearner', node: id });
      if (ok) nextId++;
    } else if (conf.voters.length > 3) ok = rn.proposeConfChange({ type: 'remove', node: conf.voters[int(conf.voters.length)]! });
    if (ok) stats.confChanges++;
    process(l);
  };

  // ---- main loop ----
  try {
    for (const id of founders) addNode(id, true);
    const end = faultEnd + 150 * SUB;
    let completedBeforeEnd = -1;
    let commitBeforeEnd = 0;
    for (now = 0; now < end; now++) {
      const faulty = now < faultEnd;
      if (!faulty && now === faultEnd) {
        // settle: heal everything and restart every crashed node
        partitionOf.clear();
        for (const id of down.keys()) down.set(id, now);
      }
      for (const [id, at] of down) {
        if (now >= at) {
          down.delete(id);
          const n = nodes.get(id);
          if (n) start(n);
        }
      }
      for (const n of nodes.values()) {
        if (n.raft && (now + n.phase) % SUB === 0) {
          n.raft.tick();
          process(n);
        }
      }
      if (faulty && now % SUB === 0) {
        if (o.partitions) {
          if (partitionOf.size && now >= partitionUntil) partitionOf.clear();
          else if (!partitionOf.size && chance(0.02)) {
            const ids = [...nodes.keys()];
            if (chance(0.5)) {
              // isolate the leader (or a random node)
              const l = leader();
              partitionOf.set(l && chance(0.7) ? l.id : ids[int(ids.length)]!, 1);
            } else for (const id of ids) partitionOf.set(id, int(2));
            partitionUntil = now + (10 + int(60)) * SUB;
          }
        }
        if (o.crashes && chance(0.01)) {
          const live = [...nodes.values()].filter((n) => n.raft);
          if (live.length) {
            const n = live[int(live.length)]!;
            crash(n);
            down.set(n.id, now + (5 + int(50)) * SUB);
          }
        }
        if (o.membership && chance(0.03)) membershipStep();
        if (chance(0.01)) {
          const l = leader();
          const others = l ? l.raft!.raft.voters().filter((v) => v !== l.id) : [];
          if (l && others.length) {
            l.raft!.transferLeadership(others[int(others.length)]!);
            process(l);
          }
        }
      }
      if (now % SUB === 0) for (let c = 0; c < CLIENTS; c++) clientStep(c);
      const due = buckets[now];
      if (due) {
        buckets[now] = [];
        // random delivery order within a sub-step
        for (let i = due.length - 1; i > 0; i--) {
          const j = int(i + 1);
          [due[i], due[j]] = [due[j]!, due[i]!];
        }
        for (const m of due) deliver(m);
        delete buckets[now];
      }
      if (now === end - 100 * SUB) {
        completedBeforeEnd = stats.completed;
        commitBeforeEnd = leader()?.raft!.raft.log.committed ?? 0;
      }
    }
    // Liveness after healing: a leader exists and client requests complete again
    const l = leader();
    if (!l) fail('no leader after settling');
    if (stats.completed === completedBeforeEnd) fail('no client request completed in the last 100 ticks of settling');
    // ... and every member, learners included, catches up (e.g. one that joined after the last compaction)
    for (const id of l!.raft!.raft.prs.keys()) {
      const m = nodes.get(id);
      if (!m || m.applied < commitBeforeEnd) fail(`member ${id} applied ${m?.applied ?? 0}, behind the commit index ${commitBeforeEnd} of 100 ticks before`);
    }
    const ops: Op[] = history
      .filter((h) => !h.failed)
      .filter((h) => h.ret !== Infinity || (h.kind === 'put' && appliedAnywhere.has(h.id)))
      .map((h) => ({ id: h.id, kind: h.kind, key: h.key, value: h.value, call: h.call, ret: h.ret }));
    const lin = checkHistory(ops);
    if (!lin.ok) fail(`history not linearizable on key ${lin.key}`);
    return { ok: true, stats };
  } catch (e) {
    if (e instanceof SimFailure) return { ok: false, error: e.message, stats };
    return { ok: false, error: `t=${now / SUB} exception: ${e instanceof Error ? e.stack ?? e.message : String(e)}`, stats };
  }
}
