// A manager: the Raft core driven by real time, persisted in the WAL, talking over the 2377
// transport, applying committed entries to the cluster store.
//
// Group commit: every input (tick, message, proposal) only marks the node dirty; one Ready is
// processed per event-loop turn, so all proposals that arrived meanwhile share one write and fsync.
//
// Persisting off the event loop (etcd's pipeline): a Ready's WAL write + fsync runs on libuv's thread
// pool, and at most one Ready is in flight. Meanwhile the event loop goes on accepting requests and
// stepping messages, ticks and proposals into the RawNode (allowed between ready() and advance(); the
// next ready() waits for advance()), so the next Ready batches everything that arrived during the
// fsync. The rules that keep this Raft:
//  - a follower's or candidate's messages (acks, votes) go out only once the Ready they belong to is
//    durable: they promise what it holds. Messages produced while a write is in flight belong to the
//    next Ready and wait for its write.
//  - the leader sends its appends and heartbeats BEFORE its own fsync, so the disks work in parallel;
//    they promise nothing about its disk. But it counts its own log towards the commit quorum only up
//    to what is durable (RawNode.enableAsyncPersistence caps its own match index; ackPersisted() after
//    advance() is the local ack of etcd-io/raft), so an entry is committed only when it is durable on
//    a quorum of disks, the leader's counting only once its fsync is done.
//  - committed entries are applied at once if they are already durable here (they precede this
//    Ready's new entries), the rest (committed by a quorum of others, e.g. a follower told by the same
//    append that carried them) only after this Ready's write: committed entries are durable on a
//    quorum anyway, but a snapshot of the store must never cover entries missing from our own log.
//  - a snapshot from the leader is persisted (synchronously: it is rare) before it is applied.
//  - stop() closes the WAL only after an in-flight write completes (its completion then does nothing
//    else); a process exit meanwhile is a crash, which the WAL's torn-tail recovery handles, and
//    nothing that write promised was sent.
// Two more things keep fsyncs off the commit path (as etcd does):
//  - proposals that arrive in one turn go to Raft as one multi-entry proposal, so the leader sends
//    each follower one append for all of them, not one per proposal.
//  - a hard state whose only change is the commit index is not fsynced on its own (Raft's commit index
//    is volatile; recovery clamps it to the log). It rides with the next write, or is flushed when the
//    node has been idle for HARD_STATE_FLUSH_MS, so --force-new-cluster still sees a recent commit.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { RawNode, type Ready } from '../raft/node.js';
import { Wal } from '../raft/wal.js';
import { bootstrapStorage, type MemoryStorage } from '../raft/storage.js';
import { decodeConfChange, msg, type ConfState, type Entry, type HardState, type Message, type NodeId } from '../raft/types.js';
import { RaftTransport, type Dialer } from '../transport/raft-peers.js';
import type { Cipher } from '../ca/seal.js';
import { Store, type ApplyResult } from '../store/store.js';
import { encodeCommand, type Op } from '../store/commands.js';

export interface ManagerOptions {
  id: NodeId;
  stateDir: string;
  /** This manager's address for Raft traffic (HOST:2377). */
  addr: string;
  tickMs?: number;
  heartbeatMs?: number;
  electionMs?: number;
  /** First start of a new cluster: the founding members (normally just this node). */
  bootstrap?: Record<NodeId, string>;
  /** Known managers when joining (id -> addr). */
  peers?: Record<NodeId, string>;
  /** Entries between snapshots of the store. */
  snapshotEvery?: number;
  /** Seals the WAL and snapshots (the node's data key); plain when absent (tests, benchmarks). */
  cipher?: Cipher;
  /** How Raft connections to peers are made (meshd: mutual TLS). */
  dial?: Dialer;
  log?: (msg: string) => void;
}

export class ManagerError extends Error {
  constructor(
    message: string,
    readonly code: 'no-quorum' | 'not-leader' | 'stopped' | 'rejected' | 'conflict' | 'not-found' | 'exists' | 'invalid',
  ) {
    super(message);
    this.name = 'ManagerError';
  }
}

interface Waiter {
  resolve: (r: ApplyResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface SnapshotData {
  store: string; // Store.encodeSnapshot as text
  members: Record<NodeId, string>;
}

const DEFAULT_TIMEOUT_MS = 5000;
/** How long a commit-only hard state may wait for a write to ride with before it is written alone. */
const HARD_STATE_FLUSH_MS = 10;
/** At most this many proposals (or bytes) go into one multi-entry proposal. */
const MAX_BATCH_ENTRIES = 512;
const MAX_BATCH_BYTES = 1 << 20;

export class Manager {
  readonly store = new Store();
  readonly transport: RaftTransport;
  private node!: RawNode;
  private storage!: MemoryStorage;
  private wal!: Wal;
  private members: Record<NodeId, string> = {};
  private conf: ConfState = { voters: [], learners: [] };
  private tickTimer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private stopped = false;
  /** The Ready whose WAL write is in flight (at most one). */
  private inflight: Ready | undefined;
  private waiters = new Map<string, Waiter>();
  private reads = new Map<string, { index: number | undefined; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private lastContact = new Map<NodeId, number>();
  private readonly snapshotEvery: number;
  private readonly log: (msg: string) => void;
  /** Leader changes observed (for `node ls` and tests). */
  leaderChanges = 0;
  fsyncs = 0;

  constructor(private readonly o: ManagerOptions) {
    this.snapshotEvery = o.snapshotEvery ?? 10_000;
    this.log = o.log ?? (() => undefined);
    this.transport = new RaftTransport(
      {
        onMessage: (m) => this.onMessage(m),
        onUnreachable: (peer) => {
          if (!this.stopped) this.node.reportUnreachable(peer);
        },
      },
      o.dial,
    );
  }

  get id(): NodeId {
    return this.o.id;
  }

  private get membersFile(): string {
    return path.join(this.o.stateDir, 'raft', 'members.json');
  }

  start(): void {
    const dir = path.join(this.o.stateDir, 'raft');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { wal, recovered } = Wal.open(dir, this.o.cipher);
    if (recovered.truncatedAt !== undefined) this.log(`raft: cut a torn WAL tail at byte ${recovered.truncatedAt}`);
    this.wal = wal;
    this.storage = recovered.storage;
    try {
      this.members = JSON.parse(fs.readFileSync(this.membersFile, 'utf8')) as Record<NodeId, string>;
    } catch {
      this.members = {};
    }
    const fresh = this.storage.lastIndex() === 0 && this.storage.snapshot().meta.index === 0;
    if (fresh && this.o.bootstrap) {
      bootstrapStorage(this.storage, Object.keys(this.o.bootstrap).sort());
      this.wal.save({ hardState: this.storage.hardState, entries: this.storage.allEntries() });
      this.members = { ...this.o.bootstrap };
    }
    Object.assign(this.members, this.o.peers ?? {}, { [this.o.id]: this.o.addr });
    this.saveMembers();
    const snap = this.storage.snapshot();
    if (snap.meta.index > 0) this.restoreSnapshot(snap.data);
    this.conf = snap.meta.conf;
    this.node = new RawNode({
      id: this.o.id,
      storage: this.storage,
      random: Math.random,
      tickMs: this.o.tickMs ?? 100,
      heartbeatMs: this.o.heartbeatMs ?? 100,
      electionMs: this.o.electionMs ?? 1000,
      applied: snap.meta.index,
    });
    this.node.enableAsyncPersistence();
    for (const [id, addr] of Object.entries(this.members)) if (id !== this.o.id) this.transport.setPeer(id, addr);
    this.tickTimer = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, this.o.tickMs ?? 100);
    // A one-member cluster elects itself at once instead of waiting out an election timeout.
    if (fresh && this.o.bootstrap && Object.keys(this.o.bootstrap).length === 1) this.node.campaign();
    this.schedule();
  }

  private saveMembers(): void {
    const tmp = `${this.membersFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.members), { mode: 0o600 });
    fs.renameSync(tmp, this.membersFile);
  }

  private restoreSnapshot(data: Uint8Array): void {
    const s = JSON.parse(Buffer.from(data).toString('utf8')) as SnapshotData;
    this.store.restore(Buffer.from(s.store, 'utf8'));
    this.members = { ...this.members, ...s.members };
    this.saveMembers();
    for (const [id, addr] of Object.entries(this.members)) if (id !== this.o.id) this.transport.setPeer(id, addr);
  }

  private onMessage(m: Message): void {
    if (this.stopped || m.to !== this.o.id) return;
    this.lastContact.set(m.from, Date.now());
    this.node.step(m);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.processReady();
    });
  }

  private processReady(): void {
    // Proposals go into Raft even while a write is in flight: the leader appends them now, and the
    // next Ready carries them all.
    this.flushProposals();
    while (!this.stopped && !this.inflight && !this.wal.busy() && this.node.hasReady()) {
      if (!this.handleReady(this.node.ready())) break; // its write is in flight
    }
  }

  /** Handles one Ready; returns false if its write is still in flight (writeDone finishes it). */
  private handleReady(rd: Ready): boolean {
    if (rd.softState) {
      if (rd.softState.lead !== this.leaderSeen) {
        this.leaderSeen = rd.softState.lead;
        this.leaderChanges++;
        this.log(`raft: leader is ${rd.softState.lead || '(none)'} (this node: ${rd.softState.state})`);
      }
      this.role = rd.softState.state;
    }
    // 0. a leader's appends and heartbeats promise nothing about its own disk: send them first, so
    //    followers write while we do
    let later = rd.messages;
    if (rd.messages.length && this.node.isLeader()) {
      const early = rd.messages.filter((m) => m.type === 'app' || m.type === 'heartbeat');
      if (early.length) {
        later = rd.messages.filter((m) => m.type !== 'app' && m.type !== 'heartbeat');
        this.send(early);
      }
    }
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.context);
      if (r) r.index = rs.index;
    }
    // 1. persist: snapshot, entries and hard state in one write + fsync
    if (rd.snapshot) {
      // rare (a follower far behind): synchronously, and before anything is applied
      const hardState = rd.hardState ?? this.pendingHard;
      this.wal.save({ entries: rd.entries, ...(hardState ? { hardState } : {}), snapshot: rd.snapshot });
      this.pendingHard = undefined;
      this.fsyncs++;
    } else if (rd.mustSync) {
      const hardState = rd.hardState ?? this.pendingHard;
      this.pendingHard = undefined;
      // committed entries before this Ready's new ones are durable here already: apply them while
      // the disk works (on the leader these are what the followers acknowledged meanwhile)
      const firstNew = rd.entries.length ? rd.entries[0]!.index : Infinity;
      let applied = 0;
      while (applied < rd.committedEntries.length && rd.committedEntries[applied]!.index < firstNew) this.applyEntry(rd.committedEntries[applied++]!);
      if (applied) this.serveReads();
      this.inflight = rd;
      this.wal.saveAsync({ entries: rd.entries, ...(hardState ? { hardState } : {}) }, (err) => this.writeDone(rd, later, applied, err));
      return false;
    } else if (rd.hardState) {
      this.deferHardState(rd.hardState);
    }
    this.finishReady(rd, later, 0);
    return true;
  }

  /** The Ready in flight is durable (or its write failed). */
  private writeDone(rd: Ready, later: Message[], applied: number, err: Error | null): void {
    this.inflight = undefined;
    if (this.stopped) return; // stop() closed the WAL behind this write; nothing it promised was sent
    if (err) this.walFailed(err);
    this.fsyncs++;
    this.finishReady(rd, later, applied);
    // the next Ready at once: everything stepped during the write goes into it
    this.walIdle();
  }

  /** Everything after persisting: storage, the remaining messages, applying, advance(). */
  private finishReady(rd: Ready, later: Message[], applied: number): void {
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    // 2. send the rest, only now that what they promise is on disk
    if (later.length) this.send(later);
    // 3. apply
    if (rd.snapshot) {
      this.restoreSnapshot(rd.snapshot.data);
      this.conf = rd.snapshot.meta.conf;
    }
    for (let i = applied; i < rd.committedEntries.length; i++) this.applyEntry(rd.committedEntries[i]!);
    this.serveReads();
    this.maybeSnapshot();
    this.node.advance(rd);
    // the leader's own log now counts towards the quorum (see the top of this file)
    this.node.ackPersisted();
  }

  private leaderSeen: NodeId = '';
  private role = 'follower';
  /** A commit-only hard state not yet in the WAL (see the top of this file). */
  private pendingHard: HardState | undefined;
  private hardTimer: NodeJS.Timeout | undefined;

  private deferHardState(h: HardState): void {
    this.pendingHard = h;
    if (this.hardTimer) return;
    this.hardTimer = setTimeout(() => {
      this.hardTimer = undefined;
      this.flushHardState();
    }, HARD_STATE_FLUSH_MS);
  }

  /**
   * Writes a pending commit-only hard state off the event loop, like a Ready (the next Ready waits for
   * it: one write at a time). `sync` for stop(), where nothing may be left behind.
   */
  private flushHardState(sync = false): void {
    // while a write is in flight the file is its own; its completion re-arms the timer
    if (!this.pendingHard || this.stopped || this.wal.busy()) return;
    const hardState = this.pendingHard;
    this.pendingHard = undefined;
    if (sync) {
      this.wal.save({ entries: [], hardState });
      this.fsyncs++;
      return;
    }
    this.wal.saveAsync({ entries: [], hardState }, (err) => {
      if (this.stopped) return;
      if (err) this.walFailed(err);
      this.fsyncs++;
      this.walIdle();
    });
  }

  /** The WAL is free again: re-arm a deferred hard state, and handle what waited for the file. */
  private walIdle(): void {
    if (this.pendingHard && !this.hardTimer) this.deferHardState(this.pendingHard);
    this.processReady();
  }

  private walFailed(err: Error): never {
    // The log's tail is unknown: going on could acknowledge entries that are not on disk. As etcd
    // does, give up; a restart recovers from what the WAL holds.
    this.log(`raft: WAL write failed: ${err.message}`);
    throw new Error(`raft: WAL write failed: ${err.message}`);
  }

  private send(msgs: Message[]): void {
    this.transport.send(msgs);
    for (const m of msgs) if (m.type === 'snap') this.node.reportSnapshot(m.to, true);
  }

  private applyEntry(e: Entry): void {
    if (e.type === 'conf') {
      const cc = decodeConfChange(e.data);
      this.conf = this.node.applyConfChange(cc);
      if (cc.type === 'remove') {
        delete this.members[cc.node];
        if (cc.node !== this.o.id) this.transport.removePeer(cc.node);
      } else if (cc.context) {
        this.members[cc.node] = cc.context;
        if (cc.node !== this.o.id) this.transport.setPeer(cc.node, cc.context);
      }
      this.saveMembers();
      this.store.appliedIndex = e.index;
      this.log(`raft: membership ${cc.type} ${cc.node}: voters ${this.conf.voters.join(',')} learners ${this.conf.learners.join(',') || '-'}`);
      return;
    }
    const r = this.store.applyEntry(e.index, e.data);
    if (r.requestId) {
      const w = this.waiters.get(r.requestId);
      if (w) {
        clearTimeout(w.timer);
        this.waiters.delete(r.requestId);
        w.resolve(r);
      }
    }
  }

  private serveReads(): void {
    for (const [ctx, r] of this.reads) {
      if (r.index !== undefined && this.store.appliedIndex >= r.index) {
        clearTimeout(r.timer);
        this.reads.delete(ctx);
        r.resolve();
      }
    }
  }

  private maybeSnapshot(): void {
    const applied = this.store.appliedIndex;
    if (applied - this.storage.snapshot().meta.index < this.snapshotEvery) return;
    const data: SnapshotData = { store: Buffer.from(this.store.encodeSnapshot()).toString('utf8'), members: this.members };
    const snap = this.storage.createSnapshot(applied, this.conf, Buffer.from(JSON.stringify(data), 'utf8'));
    this.wal.saveSnapshot(snap);
    // Keep a tail of entries so slightly lagging followers catch up without a snapshot.
    const keep = Math.min(1000, Math.floor(this.snapshotEvery / 2));
    this.storage.compact(Math.max(this.storage.firstIndex(), applied - keep));
    this.wal.rewrite(this.storage);
    this.log(`raft: snapshot at ${applied}, log compacted`);
  }

  // ---- API for the daemon -----------------------------------------------------------------------

  status(): { id: NodeId; leader: NodeId; role: string; term: number; commit: number; applied: number; voters: NodeId[]; learners: NodeId[]; members: Record<NodeId, string>; reachable: Record<NodeId, boolean> } {
    const s = this.node.status();
    const now = Date.now();
    const reachable: Record<NodeId, boolean> = {};
    const election = this.o.electionMs ?? 1000;
    for (const id of [...s.conf.voters, ...s.conf.learners]) {
      reachable[id] = id === this.o.id || now - (this.lastContact.get(id) ?? 0) < 2 * election;
    }
    return { id: s.id, leader: s.lead, role: s.state, term: s.term, commit: s.commit, applied: this.store.appliedIndex, voters: [...s.conf.voters], learners: [...s.conf.learners], members: { ...this.members }, reachable };
  }

  leader(): NodeId {
    return this.node.status().lead;
  }

  isLeader(): boolean {
    return this.node.isLeader();
  }

  quorumMessage(what: string, failed: string, timeoutMs: number): string {
    const s = this.status();
    const up = s.voters.filter((v) => s.reachable[v]).length;
    const need = Math.floor(s.voters.length / 2) + 1;
    const leader = s.leader ? `leader ${s.leader}` : 'no leader';
    return `${what} ${failed} within ${timeoutMs} ms (${leader}; ${up} of ${s.voters.length} managers reachable, ${need} needed). ` +
      (up < need ? `The cluster has lost quorum: bring managers back, or run \`meshctl swarm init --force-new-cluster\` on a surviving manager.` : 'Retry shortly: an election may be under way.');
  }

  /** Proposes a transaction; resolves when it is applied here, rejects on failure or timeout. */
  propose(ops: Op[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ApplyResult> {
    if (this.stopped) return Promise.reject(new ManagerError('manager is stopped', 'stopped'));
    const requestId = crypto.randomUUID();
    const data = encodeCommand({ requestId, at: new Date().toISOString(), ops });
    return new Promise<ApplyResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        reject(new ManagerError(this.quorumMessage('the change', 'was not committed', timeoutMs), 'no-quorum'));
      }, timeoutMs);
      this.waiters.set(requestId, { resolve, reject, timer });
      // Queued for this turn's batch; if Raft does not take it (no leader yet) it is retried alone
      // until the timeout, an election may be near.
      this.proposals.push({ requestId, data });
      this.schedule();
    }).then((r) => {
      if (!r.ok) throw new ManagerError(r.error, r.code);
      return r;
    });
  }

  private proposals: { requestId: string; data: Uint8Array }[] = [];

  /** Hands this turn's proposals to Raft, as few multi-entry proposals as the limits allow. */
  private flushProposals(): void {
    while (this.proposals.length && !this.stopped) {
      let n = 0;
      let bytes = 0;
      while (n < this.proposals.length && n < MAX_BATCH_ENTRIES && (n === 0 || bytes + this.proposals[n]!.data.length <= MAX_BATCH_BYTES)) bytes += this.proposals[n++]!.data.length;
      const batch = this.proposals.splice(0, n).filter((p) => this.waiters.has(p.requestId));
      if (!batch.length) continue;
      const ok = this.node.raft.step(msg({ type: 'prop', from: this.o.id, entries: batch.map((p) => ({ index: 0, term: 0, type: 'normal' as const, data: p.data })) }));
      if (!ok) for (const p of batch) this.retryProposal(p.requestId, p.data);
    }
  }

  private retryProposal(requestId: string, data: Uint8Array): void {
    const tryPropose = (): void => {
      if (!this.waiters.has(requestId) || this.stopped) return;
      if (!this.node.propose(data)) setTimeout(tryPropose, this.o.tickMs ?? 100).unref();
      else this.schedule();
    };
    setTimeout(tryPropose, this.o.tickMs ?? 100).unref();
  }

  /** Resolves once this manager's store reflects every write committed before the call. */
  linearizableRead(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    if (this.stopped) return Promise.reject(new ManagerError('manager is stopped', 'stopped'));
    const ctx = crypto.randomUUID();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(ctx);
        reject(new ManagerError(this.quorumMessage('a consistent read', 'could not be confirmed by a quorum', timeoutMs), 'no-quorum'));
      }, timeoutMs);
      this.reads.set(ctx, { index: undefined, resolve, reject, timer });
      const tryRead = (): void => {
        if (!this.reads.has(ctx) || this.stopped) return;
        if (!this.node.readIndex(ctx) || !this.leader()) setTimeout(tryRead, this.o.tickMs ?? 100).unref();
        this.schedule();
      };
      tryRead();
    });
  }

  /** Adds a manager as a learner; the Raft leader promotes it to voter once it has caught up. */
  async addManager(id: NodeId, addr: string, timeoutMs = 10_000): Promise<void> {
    this.transport.setPeer(id, addr);
    await this.confChange({ type: 'addLearner', node: id, context: addr }, timeoutMs);
    const deadline = Date.now() + timeoutMs;
    while (!this.status().voters.includes(id)) {
      if (Date.now() > deadline) throw new ManagerError(`manager ${id} did not catch up within ${timeoutMs} ms`, 'no-quorum');
      if (this.isLeader()) this.node.proposeConfChange({ type: 'addVoter', node: id, context: addr });
      this.schedule();
      await new Promise((r) => setTimeout(r, this.o.tickMs ?? 100));
    }
  }

  async removeManager(id: NodeId, timeoutMs = 10_000): Promise<void> {
    await this.confChange({ type: 'remove', node: id }, timeoutMs);
  }

  private async confChange(cc: { type: 'addLearner' | 'addVoter' | 'remove'; node: NodeId; context?: string }, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const done = (): boolean => {
      const s = this.status();
      if (cc.type === 'remove') return !s.voters.includes(cc.node) && !s.learners.includes(cc.node);
      if (cc.type === 'addLearner') return s.learners.includes(cc.node) || s.voters.includes(cc.node);
      return s.voters.includes(cc.node);
    };
    while (!done()) {
      if (Date.now() > deadline) throw new ManagerError(this.quorumMessage(`membership change (${cc.type} ${cc.node})`, 'was not committed', timeoutMs), 'no-quorum');
      this.node.proposeConfChange(cc);
      this.schedule();
      await new Promise((r) => setTimeout(r, this.o.tickMs ?? 100));
    }
  }

  transferLeadership(to: NodeId): boolean {
    const ok = this.node.transferLeadership(to);
    this.schedule();
    return ok;
  }

  stop(): void {
    if (this.stopped) return;
    this.flushHardState(true); // unless a write is in flight (then it holds no newer hard state)
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.hardTimer) clearTimeout(this.hardTimer);
    this.transport.close();
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(new ManagerError('manager stopped', 'stopped'));
    }
    for (const r of this.reads.values()) {
      clearTimeout(r.timer);
      r.reject(new ManagerError('manager stopped', 'stopped'));
    }
    this.waiters.clear();
    this.reads.clear();
    // waits for a write in flight (if any) before closing the file: no write after close
    this.wal.close();
  }
}
