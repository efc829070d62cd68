// The Raft protocol proper: a deterministic state machine driven by tick() and step(). It never does
// I/O: outgoing messages collect in `msgs`, new entries in the log's unstable part, and node.ts turns
// them into Ready batches. Rules follow the Raft paper/thesis and etcd-io/raft's refinements
// (PreVote, CheckQuorum with leader lease, fast log back-off, ReadIndex, leadership transfer).
import { resolveConfig, type Config, type ResolvedConfig } from './config.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult, type VoteResult } from './quorum.js';
import { ReadOnly } from './readindex.js';
import {
  CAMPAIGN_TRANSFER,
  NONE,
  RaftError,
  decodeConfChange,
  msg,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type StateType,
} from './types.js';

type CampaignType = 'preElection' | 'election' | 'transfer';

export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = NONE;
  state: StateType = 'follower';
  lead: NodeId = NONE;
  /** Membership and, on the leader, replication progress of every voter and learner. */
  readonly prs = new Map<NodeId, Progress>();
  /** Outgoing messages since the last Ready. */
  msgs: Message[] = [];
  /** Confirmed linearizable reads since the last Ready. */
  readStates: ReadState[] = [];
  /** Leader: a transfer of leadership to this node is in progress (proposals are refused meanwhile). */
  leadTransferee: NodeId = NONE;
  /** Leader: index of the last proposed conf change; no new one until it is applied (one at a time). */
  pendingConfIndex = 0;

  private votes = new Map<NodeId, boolean>();
  private readOnly = new ReadOnly();
  /** Reads received before this leader committed an entry of its term: its commit index is not yet current. */
  private pendingReads: Message[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  constructor(config: Config) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.log = new RaftLog(this.cfg.storage, this.cfg.maxApplyBytes);
    const { hardState, conf } = this.cfg.storage.initialState();
    this.setConf(conf);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) {
      if (hardState.commit > this.log.lastIndex()) throw new RaftError(`commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`);
      this.log.committed = Math.max(this.log.committed, hardState.commit);
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    // the state machine is restored from the latest snapshot (which only ever holds committed state),
    // which may be newer than the compaction point
    const snapIndex = this.cfg.storage.snapshot().meta.index;
    if (snapIndex > this.log.committed) this.log.committed = snapIndex;
    const applied = Math.max(this.cfg.applied, snapIndex);
    if (applied > this.log.applied) this.log.appliedTo(applied);
    this.becomeFollower(this.term, NONE);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    const voters: NodeId[] = [];
    const learners: NodeId[] = [];
    for (const [id, pr] of this.prs) (pr.isLearner ? learners : voters).push(id);
    return { voters: voters.sort(), learners: learners.sort() };
  }

  voters(): NodeId[] {
    const out: NodeId[] = [];
    for (const [id, pr] of this.prs) if (!pr.isLearner) out.push(id);
    return out;
  }

  /** Only voters in the current config campaign, and not while a snapshot awaits persisting. */
  promotable(): boolean {
    const pr = this.prs.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  private setConf(conf: ConfState): void {
    this.prs.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of conf.voters) this.prs.set(id, new Progress(next, this.cfg.maxInflight, false));
    for (const id of conf.learners) this.prs.set(id, new Progress(next, this.cfg.maxInflight, true));
  }

  // ---- sending ----

  private send(m: Message): void {
    m.from = this.id;
    if (m.type === 'vote' || m.type === 'voteResp' || m.type === 'preVote' || m.type === 'preVoteResp') {
      // campaign messages carry their own term (a pre-vote asks for term+1 without adopting it)
      if (m.term === 0) throw new RaftError(`term must be set for ${m.type}`);
    } else if (m.type !== 'prop' && m.type !== 'readIndex') {
      // forwarded proposals and reads keep term 0: they are not bound to a term
      m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Send entries (or a snapshot) to a follower if its flow control allows; returns whether sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const ents = prevTerm === null ? null : this.log.entries(pr.next, this.cfg.maxSizePerMsg);
    if (prevTerm === null || ents === null) {
      // the entries it needs were compacted: send the snapshot instead
      if (!pr.recentActive) return false;
      const snap = this.log.snapshot();
      pr.becomeSnapshot(snap.meta.index);
      this.send(msg({ type: 'snap', to, snapshot: snap }));
      return true;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(msg({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }));
    pr.sentEntries(ents.length, ents.length ? ents[ents.length - 1]!.index : prevIndex);
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private sendHeartbeat(to: NodeId, context: string): void {
    const pr = this.prs.get(to);
    // never tell a follower to commit past what it is known to hold: its tail may differ from ours
    const commit = Math.min(pr ? pr.match : 0, this.log.committed);
    this.send(msg({ type: 'heartbeat', to, commit, context }));
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingContext();
    for (const id of this.prs.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---- state transitions ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTick + Math.floor(this.cfg.random() * this.cfg.electionTick);
    this.leadTransferee = NONE;
    this.votes.clear();
    const last = this.log.lastIndex();
    for (const [id, old] of this.prs) {
      const pr = new Progress(last + 1, this.cfg.maxInflight, old.isLearner);
      if (id === this.id) pr.match = this.selfMatchIndex();
      this.prs.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnly();
    this.pendingReads = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'follower';
  }

  private becomePreCandidate(): void {
    if (this.state === 'leader') throw new RaftError('leader cannot become pre-candidate');
    // neither term nor vote change: a failed pre-election leaves no trace
    this.votes.clear();
    this.lead = NONE;
    this.state = 'preCandidate';
  }

  private becomeCandidate(): void {
    if (this.state === 'leader') throw new RaftError('leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = 'candidate';
  }

  private becomeLeader(): void {
    if (this.state === 'follower') throw new RaftError('follower cannot become leader');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'leader';
    this.prs.get(this.id)?.becomeReplicate();
    // An empty entry of the new term: committing it commits everything before (§5.4.2) and makes the
    // commit index current for ReadIndex. Conf changes wait until it is applied, so a new leader never
    // changes membership on top of a configuration it has not yet seen committed.
    this.appendEntries([{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }]);
    this.pendingConfIndex = this.log.lastIndex();
  }

  private appendEntries(es: Entry[]): void {
    let li = this.log.lastIndex();
    const stamped = es.map((e) => ({ index: ++li, term: this.term, type: e.type, data: e.data }));
    this.log.append(stamped);
    // The leader counts its own log towards the quorum: at once when the application persists each
    // Ready before stepping anything else, only once durable (ackPersisted) when it writes async.
    this.prs.get(this.id)?.maybeUpdate(this.selfMatchIndex());
    this.maybeCommit();
  }

  /**
   * Persisting off the event loop (etcd's pipeline): the application keeps stepping messages between
   * ready() and advance(), so a follower's ack could otherwise combine with the leader's own, not yet
   * durable, entries into a "quorum" that a leader crash undoes.
   */
  asyncStorageWrites = false;

  /** The last index of the local log that is durable: everything before the unstable tail. */
  durableIndex(): number {
    const u = this.log.unstable;
    return u.snapshot ? 0 : u.offset - 1;
  }

  private selfMatchIndex(): number {
    const last = this.log.lastIndex();
    return this.asyncStorageWrites ? Math.min(last, this.durableIndex()) : last;
  }

  /** After advance() with async writes: the leader's acknowledgement of its own newly durable log. */
  ackPersisted(): void {
    if (this.state !== 'leader') return;
    const pr = this.prs.get(this.id);
    if (pr?.maybeUpdate(this.selfMatchIndex()) && this.maybeCommit()) this.bcastAppend();
  }

  private maybeCommit(): boolean {
    const mci = committedIndex(this.voters(), (id) => this.prs.get(id)?.match ?? 0);
    if (!this.log.maybeCommit(mci, this.term)) return false;
    this.releasePendingReads();
    return true;
  }

  private hup(t: CampaignType): void {
    if (this.state === 'leader' || !this.promotable()) return;
    // Conf changes take effect when applied: campaigning before applying committed ones would use
    // a stale membership.
    const pending = this.log.slice(this.log.applied + 1, this.log.committed + 1);
    if (pending === null || pending.some((e) => e.type === 'conf')) return;
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let term: number;
    let voteType: 'vote' | 'preVote';
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1; // the term we would campaign for
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // single voter: no one to ask
      if (t === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters()) {
      if (id === this.id) continue;
      this.send(msg({ type: voteType, to: id, term, index: lastIndex, logTerm: lastTerm, context: t === 'transfer' ? CAMPAIGN_TRANSFER : '' }));
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.voters(), this.votes);
  }

  // ---- ticks ----

  tick(): void {
    if (this.state === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.cfg.preVote ? 'preElection' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const [id, pr] of this.prs) {
      // a snapshot lost in transit would otherwise park the follower in snapshot state forever
      if (id !== this.id && pr.state === 'snapshot' && ++pr.snapshotTicks >= this.cfg.electionTick) pr.becomeProbe();
    }
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      // a transfer that did not finish within an election timeout is abandoned
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** CheckQuorum: did a quorum of voters talk to us since the last check? Resets the marks. */
  private quorumActive(): boolean {
    const ok = hasQuorum(this.voters(), (id) => id === this.id || (this.prs.get(id)?.recentActive ?? false));
    for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
    return ok;
  }

  // ---- stepping ----

  /** Feed one message; returns false if a proposal (or read/transfer request) was dropped. */
  step(m: Message): boolean {
    if (m.term === 0) {
      // local message or forwarded proposal/read: no term checks
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTick;
        // Leader lease: we heard from a live leader within the minimum election timeout, so this
        // candidate is disruptive (e.g. just rejoined after a partition). Ignore it.
        if (!force && inLease) return true;
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // pre-votes never change our term
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (e.g. healed from a partition, or whose term we bumped by campaigning)
        // learns our term from this and steps down; otherwise it could keep its followers' leases
        // alive and block elections forever.
        this.send(msg({ type: 'appResp', to: m.from }));
      } else if (m.type === 'preVote') {
        // tell the pre-candidate our term so it does not wait for a reply that will never come
        this.send(msg({ type: 'preVoteResp', to: m.from, term: this.term, reject: true }));
      }
      return true;
    }

    switch (m.type) {
      case 'hup':
        this.hup(this.cfg.preVote ? 'preElection' : 'election');
        return true;
      case 'vote':
      case 'preVote': {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === 'preVote' && m.term > this.term);
        const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // respond with the candidate's term: a pre-vote grant must not look stale to it
          this.send(msg({ type: respType, to: m.from, term: m.term }));
          if (m.type === 'vote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(msg({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return true;
      }
    }
    switch (this.state) {
      case 'leader':
        return this.stepLeader(m);
      case 'candidate':
      case 'preCandidate':
        return this.stepCandidate(m);
      case 'follower':
        return this.stepFollower(m);
    }
  }

  private stepLeader(m: Message): boolean {
    switch (m.type) {
      case 'beat':
        this.bcastHeartbeat();
        return true;
      case 'prop':
        return this.propose(m.entries);
      case 'readIndex':
        return this.leaderRead(m);
    }
    const pr = this.prs.get(m.from);
    if (!pr) return true;
    switch (m.type) {
      case 'appResp': {
        pr.recentActive = true;
        if (m.reject) {
          let hint = m.rejectHint;
          // skip all of our entries of a term the follower does not have
          if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return true;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
          if (pr.state === 'probe') pr.becomeReplicate();
          else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
          if (this.maybeCommit()) this.bcastAppend();
          else if (oldPaused) this.sendAppend(m.from);
          while (this.maybeSendAppend(m.from, false)) {
            /* pipeline as much as flow control allows */
          }
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
            this.send(msg({ type: 'timeoutNow', to: m.from }));
          }
        }
        return true;
      }
      case 'heartbeatResp': {
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context === '') return true;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || !hasQuorum(this.voters(), (id) => acks.has(id))) return true;
        for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs.from, rs.index, rs.context);
        return true;
      }
      case 'snapStatus':
        if (pr.state !== 'snapshot') return true;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // wait for the follower's answer (or a heartbeat response) before probing again
        pr.probeSent = true;
        return true;
      case 'unreachable':
        if (pr.state === 'replicate') pr.becomeProbe();
        return true;
      case 'transferLeader': {
        if (pr.isLearner) return false;
        const target = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === target) return true;
          this.leadTransferee = NONE;
        }
        if (target === this.id) return true;
        this.electionElapsed = 0; // the transfer gets one election timeout to finish
        this.leadTransferee = target;
        if (pr.match === this.log.lastIndex()) this.send(msg({ type: 'timeoutNow', to: target }));
        else this.sendAppend(target);
        return true;
      }
    }
    return true;
  }

  private propose(entries: Entry[]): boolean {
    if (entries.length === 0) throw new RaftError('empty proposal');
    // removed from the config while leading, or handing leadership over: refuse
    if (!this.prs.has(this.id) || this.leadTransferee !== NONE) return false;
    let idx = this.log.lastIndex();
    let confIndex = this.pendingConfIndex;
    for (const e of entries) {
      idx++;
      if (e.type !== 'conf') continue;
      if (confIndex > this.log.applied) return false; // one membership change at a time
      if (!this.confChangeAllowed(decodeConfChange(e.data))) return false;
      confIndex = idx;
    }
    this.pendingConfIndex = confIndex;
    this.appendEntries(entries);
    this.bcastAppend();
    return true;
  }

  private confChangeAllowed(cc: ConfChange): boolean {
    const pr = this.prs.get(cc.node);
    if (cc.type === 'addVoter' && pr?.isLearner) {
      // promote a learner only once it has caught up, or the cluster could stall waiting on it
      return pr.match >= this.log.committed;
    }
    if (cc.type === 'remove' && !pr) return false;
    return true;
  }

  private leaderRead(m: Message): boolean {
    if (!this.prs.has(this.id)) return false;
    if (this.log.term(this.log.committed) !== this.term) {
      // until an entry of our term is committed we do not know the true commit index
      this.pendingReads.push(m);
      return true;
    }
    this.serveRead(m);
    return true;
  }

  private serveRead(m: Message): void {
    const voters = this.voters();
    if (voters.length === 1 && voters[0] === this.id) {
      this.answerRead(m.from, this.log.committed, m.context);
      return;
    }
    this.readOnly.add(this.log.committed, m.from, m.context);
    this.readOnly.recvAck(this.id, m.context);
    const ctx = m.context;
    for (const id of this.prs.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  private releasePendingReads(): void {
    if (this.state !== 'leader' || this.pendingReads.length === 0) return;
    if (this.log.term(this.log.committed) !== this.term) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const m of reads) this.serveRead(m);
  }

  private answerRead(from: NodeId, index: number, context: string): void {
    if (from === NONE || from === this.id) this.readStates.push({ index, context });
    else this.send(msg({ type: 'readIndexResp', to: from, index, context }));
  }

  private stepCandidate(m: Message): boolean {
    const myResp = this.state === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'prop':
      case 'readIndex':
      case 'transferLeader':
        return false; // no leader to forward to
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return true;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return true;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return true;
      case 'preVoteResp':
      case 'voteResp': {
        if (m.type !== myResp) return true;
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.state === 'preCandidate') this.campaign('election');
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          // a pre-candidate keeps its term: a lost pre-vote costs nothing
          this.becomeFollower(this.term, NONE);
        }
        return true;
      }
    }
    return true;
  }

  private stepFollower(m: Message): boolean {
    switch (m.type) {
      case 'prop':
      case 'readIndex':
        // forwarded with term 0: the leader handles them whatever its term
        if (this.lead === NONE) return false;
        this.msgs.push({ ...m, from: this.id, to: this.lead, term: 0 });
        return true;
      case 'transferLeader':
        // `from` names the transferee, so keep it
        if (this.lead === NONE) return false;
        this.msgs.push({ ...m, to: this.lead, term: this.term });
        return true;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return true;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return true;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return true;
      case 'timeoutNow':
        // the leader asked us to take over: campaign at once, skipping pre-vote and the leases
        this.hup('transfer');
        return true;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        return true;
    }
    return true;
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(msg({ type: 'appResp', to: m.from, index: this.log.committed }));
      return;
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== null) {
      this.send(msg({ type: 'appResp', to: m.from, index: last }));
      return;
    }
    // Reject with a hint: the last index whose term is <= the leader's term at m.index. The leader
    // then jumps back a whole term at a time instead of one entry per round trip.
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(msg({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(msg({ type: 'heartbeatResp', to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) this.send(msg({ type: 'appResp', to: m.from, index: this.log.lastIndex() }));
    else this.send(msg({ type: 'appResp', to: m.from, index: this.log.committed }));
  }

  /** Install a leader's snapshot; false if it is stale or our log already contains it. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    // The snapshot's config may not list us: the leader's latest snapshot can predate our own conf
    // change (e.g. a learner added after the last compaction). It is still committed state newer than
    // ours, and the only way to catch up (the entries before it are gone), so install it; our conf
    // entry follows in the log and puts us back in the config once applied. Meanwhile we are outside
    // our own config, like any node that has not yet applied its addition: not promotable, so we never
    // campaign. (etcd-io/raft refuses such a snapshot, assuming the application always snapshots the
    // current config; refusing it here left a new learner stuck forever until the leader's application
    // happened to take a newer snapshot, which a quiet cluster never does.)
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // we have the entries: just learn that they are committed
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.setConf(s.meta.conf);
    const pr = this.prs.get(this.id);
    if (pr) pr.match = this.selfMatchIndex();
    return true;
  }

  // ---- membership ----

  /** Apply a committed conf change (called by the application when it applies the entry). */
  applyConfChange(cc: ConfChange): ConfState {
    const next = this.log.lastIndex() + 1;
    const pr = this.prs.get(cc.node);
    switch (cc.type) {
      case 'addVoter':
        if (pr) pr.isLearner = false;
        else this.addProgress(cc.node, next, false);
        break;
      case 'addLearner':
        if (pr) pr.isLearner = true;
        else this.addProgress(cc.node, next, true);
        break;
      case 'remove':
        this.prs.delete(cc.node);
        break;
    }
    if (this.state !== 'leader') return this.confState();
    const self = this.prs.get(this.id);
    if (!self || self.isLearner) {
      // removed or demoted: stop leading; the remaining voters elect a leader among themselves
      this.becomeFollower(this.term, NONE);
      return this.confState();
    }
    if (this.leadTransferee !== NONE && !(this.prs.get(this.leadTransferee)?.isLearner === false)) this.leadTransferee = NONE;
    // the quorum may have shrunk: entries may now be committed
    if (this.maybeCommit()) this.bcastAppend();
    else if (!pr && cc.type !== 'remove') this.sendAppend(cc.node);
    return this.confState();
  }

  private addProgress(id: NodeId, next: number, learner: boolean): void {
    const pr = new Progress(next, this.cfg.maxInflight, learner);
    // a fresh member counts as active, or CheckQuorum could depose the leader before it ever answers
    pr.recentActive = true;
    if (id === this.id) pr.match = this.log.lastIndex();
    this.prs.set(id, pr);
  }

  /** Candidate hook for tests and the application: start an election now. */
  campaignNow(): void {
    this.hup(this.cfg.preVote ? 'preElection' : 'election');
  }

  pendingReadCount(): number {
    return this.readOnly.size() + this.pendingReads.length;
  }
}
