// The application-facing handle: feed ticks, messages and requests in; take Ready batches out.
//
// Handling a Ready, in this order:
//   1. persist `snapshot` (if any), append `entries`, save `hardState` - one fsync for all of it;
//   2. send `messages` (only now: a vote or an ack must never precede the state it promises);
//   3. apply `snapshot` then `committedEntries` to the state machine (call applyConfChange for conf
//      entries), and serve `readStates` once the applied index reaches them;
//   4. call advance(rd).
import type { Config } from './config.js';
import { Raft } from './raft.js';
import {
  encodeConfChange,
  hardStateEqual,
  isLocalMsg,
  isResponseMsg,
  msg,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SoftState,
  type StateType,
} from './types.js';

export interface Ready {
  /** Leader or role changed (volatile, not persisted). */
  readonly softState?: SoftState;
  /** Changed hard state, to persist. */
  readonly hardState?: HardState;
  /** Entries to append to stable storage (may overwrite a conflicting suffix). */
  readonly entries: Entry[];
  /** Snapshot to persist and apply. */
  readonly snapshot?: Snapshot;
  /** Committed entries to apply, in order. */
  readonly committedEntries: Entry[];
  /** Messages to send after persisting. */
  readonly messages: Message[];
  readonly readStates: ReadState[];
  /** Whether the write must be fsynced (entries or term/vote changed). */
  readonly mustSync: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lead: NodeId;
  readonly state: StateType;
  readonly conf: ConfState;
  /** Leader only: each member's replicated index. */
  readonly progress: ReadonlyMap<NodeId, number>;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoft = { lead: this.raft.lead, state: this.raft.state };
    this.prevHard = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.campaignNow();
  }

  /** Propose application data; false if dropped (no leader known, transfer in progress, ...). */
  propose(data: Uint8Array): boolean {
    return this.raft.step(msg({ type: 'prop', from: this.raft.id, entries: [{ index: 0, term: 0, type: 'normal', data }] }));
  }

  /** Propose a membership change; false if dropped (another change is pending, learner not caught up, ...). */
  proposeConfChange(cc: ConfChange): boolean {
    return this.raft.step(msg({ type: 'prop', from: this.raft.id, entries: [{ index: 0, term: 0, type: 'conf', data: encodeConfChange(cc) }] }));
  }

  /** Apply a committed conf change; returns the new membership (persist it with the next snapshot). */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Ask for a linearizable read; a ReadState with this context comes back in a later Ready. */
  readIndex(context: string): boolean {
    return this.raft.step(msg({ type: 'readIndex', context }));
  }

  transferLeadership(to: NodeId): boolean {
    return this.raft.step(msg({ type: 'transferLeader', from: to, term: 0 }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(msg({ type: 'snapStatus', from: id, reject: !ok }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(msg({ type: 'unreachable', from: id }));
  }

  /** A message from the network. Local-only types and responses from non-members are ignored. */
  step(m: Message): void {
    if (isLocalMsg(m.type) || m.type === 'prop' && m.entries.length === 0) return;
    if (isResponseMsg(m.type) && !this.raft.prs.has(m.from)) return;
    this.raft.step(m);
  }

  hasReady(): boolean {
    const r = this.raft;
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.state) return true;
    if (!hardStateEqual(r.hardState(), this.prevHard)) return true;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.unstable.entries.length > 0 ||
      r.log.unstable.snapshot !== undefined ||
      r.log.hasNextCommittedEnts()
    );
  }

  /** Collect everything pending. Call advance() with it once handled, before the next ready(). */
  ready(): Ready {
    const r = this.raft;
    const soft: SoftState = { lead: r.lead, state: r.state };
    const hard = r.hardState();
    const snap = r.log.unstable.snapshot;
    const entries = r.log.unstable.entries.slice();
    const hardChanged = !hardStateEqual(hard, this.prevHard);
    const rd: Ready = {
      ...(soft.lead !== this.prevSoft.lead || soft.state !== this.prevSoft.state ? { softState: soft } : {}),
      ...(hardChanged ? { hardState: hard } : {}),
      ...(snap ? { snapshot: snap } : {}),
      entries,
      committedEntries: r.log.nextCommittedEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
    };
    r.msgs = [];
    r.readStates = [];
    this.prevSoft = soft;
    return rd;
  }

  advance(rd: Ready): void {
    const log = this.raft.log;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.meta.index);
      if (rd.snapshot.meta.index > log.applied) log.applied = rd.snapshot.meta.index;
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last) log.stableTo(last.index, last.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) log.appliedTo(lastApplied.index);
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, number>();
    if (r.state === 'leader') for (const [id, pr] of r.prs) progress.set(id, pr.match);
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      state: r.state,
      conf: r.confState(),
      progress,
    };
  }

  isLeader(): boolean {
    return this.raft.state === 'leader' && this.raft.lead !== NONE;
  }

  // ---- asynchronous persistence (see the comment above the class) ----

  /** Switch to the rules for persisting asynchronously (the leader counts only its durable log). */
  /**
   * The application persists Readies off the event loop and keeps stepping between ready() and
   * advance(): the leader then counts its own entries towards a quorum only once they are durable.
   */
  enableAsyncPersistence(): void {
    this.raft.asyncStorageWrites = true;
  }

  /** Index of the last entry of the local log known to be durable: everything before the unstable tail. */
  durableIndex(): number {
    return this.raft.durableIndex();
  }

  /**
   * After advance() in asynchronous mode: the leader counts its newly durable log towards the commit
   * quorum (etcd-io/raft's local append response), which may commit entries followers already hold.
   */
  ackPersisted(): void {
    this.raft.ackPersisted();
  }

}
