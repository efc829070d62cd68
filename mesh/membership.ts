// SWIM membership with Lifeguard, as a deterministic state machine: feed it time (tick) and packets
// (receive); collect what it wants sent with drain(). Randomness comes from the injected Rng.
// Reference: hashicorp/memberlist (state.go), the SWIM paper, and Lifeguard (arXiv:1707.00788).
import { Awareness } from './awareness.js';
import { BroadcastQueue } from './broadcast.js';
import { LIMITS, messageSize, PACKET_OVERHEAD } from './codec.js';
import { type MeshConfig, pushPullScale, retransmitLimit, suspicionTimeouts, withDefaults } from './config.js';
import type { Ack, Addr, Alive, Dead, MemberRecord, MemberStatus, Message, Nack, NetEvent, Outgoing, Ping, PingReq, PushPull, Suspect, TableEntry, TableEvent, Via } from './messages.js';
import { pickK, type Rng, shuffle } from './rng.js';
import { Suspicion } from './suspicion.js';
import { Timers } from './timers.js';

export interface Member {
  name: string;
  addr: Addr;
  inc: number;
  status: MemberStatus;
  meta: Uint8Array;
  /** When the status last changed (local clock). */
  since: number;
}

export type MemberEventKind = 'join' | 'update' | 'suspect' | 'alive' | 'dead' | 'leave';

export interface MemberEvent {
  kind: MemberEventKind;
  member: Readonly<Member>;
  /** Status before the event (undefined for a member we had never seen). */
  prev: MemberStatus | undefined;
  /** For suspect/dead: who accused. Equal to our own name when our own timer fired. */
  from?: string;
  at: number;
}

/** What the table layer plugs into membership (memberlist's Delegate, narrowed). */
export interface StateDelegate {
  /** Extra state for a push/pull to `peer` (null: unknown peer). */
  localState(peer: string | null, reply: PushPull | null, tableOnly: boolean): { nets: NetEvent[]; entries: TableEntry[] };
  mergeRemote(pp: PushPull, now: number): void;
  handle(msg: NetEvent | TableEvent, now: number): void;
  /** Called on every gossip tick and maintenance tick. */
  gossip(now: number): void;
  maintain(now: number): void;
}

interface Probe {
  seq: number;
  target: string;
  acked: boolean;
  nacks: number;
  expectedNacks: number;
  direct: boolean;
}

type AckHandler =
  | { kind: 'probe'; seq: number }
  | { kind: 'relay'; origSeq: number; to: Addr; via: Via; acked: boolean };

export interface MembershipStats {
  probes: number;
  probeFailures: number;
  indirectProbes: number;
  tcpProbes: number;
  suspicionsStarted: number;
  refutations: number;
  /** Members this node declared dead by its own suspicion timeout. */
  declaredDead: number;
  pushPulls: number;
  packetsOut: number;
  messagesIn: number;
  ignored: number;
}

export interface MembershipOptions {
  name: string;
  addr: Addr;
  rng: Rng;
  now: number;
  config?: Partial<MeshConfig>;
  meta?: Uint8Array;
  /** Starting incarnation; a restarted node refutes any higher one it hears about itself. */
  incarnation?: number;
}

const NOTHING: Outgoing[] = [];

export class Membership {
  readonly name: string;
  readonly addr: Addr;
  readonly config: MeshConfig;
  readonly awareness: Awareness;
  readonly broadcasts = new BroadcastQueue();
  readonly stats: MembershipStats = {
    probes: 0, probeFailures: 0, indirectProbes: 0, tcpProbes: 0, suspicionsStarted: 0, refutations: 0,
    declaredDead: 0, pushPulls: 0, packetsOut: 0, messagesIn: 0, ignored: 0,
  };
  delegate: StateDelegate | null = null;

  readonly rng: Rng;
  private readonly self: Member;
  private readonly members = new Map<string, Member>();
  /** Same members as an array, for O(1) random picks. */
  private list: Member[] = [];
  private probeOrder: string[] = [];
  private probeIdx = 0;
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly acks = new Map<number, AckHandler>();
  private probe: Probe | null = null;
  private seq = 0;
  private readonly timers = new Timers();
  private outbox: Outgoing[] = [];
  private listeners: ((e: MemberEvent) => void)[] = [];
  private leaving = false;
  private liveCount = 1;
  // Periodic ticks, bound once (they are re-armed many times a second).
  private readonly probeTickFn = (t: number): void => this.probeTick(t);
  private readonly gossipTickFn = (t: number): void => this.gossipTick(t);
  private readonly pushPullTickFn = (t: number): void => this.pushPullTick(t);
  private readonly reconnectTickFn = (t: number): void => this.reconnectTick(t);
  private readonly maintainTickFn = (t: number): void => this.maintainTick(t);
  now: number;

  constructor(o: MembershipOptions) {
    this.name = o.name;
    this.addr = o.addr;
    this.rng = o.rng;
    this.now = o.now;
    this.config = withDefaults(o.config);
    this.awareness = new Awareness(this.config.awarenessMax);
    this.self = { name: o.name, addr: o.addr, inc: o.incarnation ?? 0, status: 'alive', meta: o.meta ?? new Uint8Array(0), since: o.now };
    this.addMember(this.self);
    this.broadcasts.enqueue(`m:${this.name}`, this.aliveMsg());
    // Stagger the periodic work so that members started together do not probe in lockstep.
    const c = this.config;
    this.timers.at(o.now + this.rng.int(c.probeInterval), this.probeTickFn);
    this.timers.at(o.now + this.rng.int(c.gossipInterval), this.gossipTickFn);
    this.timers.at(o.now + c.pushPullInterval / 2 + this.rng.int(c.pushPullInterval), this.pushPullTickFn);
    this.timers.at(o.now + c.reconnectInterval + this.rng.int(c.reconnectInterval), this.reconnectTickFn);
    this.timers.at(o.now + 1000, this.maintainTickFn);
  }

  // ---- public surface -------------------------------------------------------------------------

  onEvent(fn: (e: MemberEvent) => void): () => void {
    this.listeners.push(fn);
    return () => { this.listeners = this.listeners.filter((f) => f !== fn); };
  }

  get incarnation(): number {
    return this.self.inc;
  }

  get isLeaving(): boolean {
    return this.leaving;
  }

  member(name: string): Readonly<Member> | undefined {
    return this.members.get(name);
  }

  allMembers(): Readonly<Member>[] {
    return this.list.slice();
  }

  /** Alive and suspect members, ourselves included: the "n" of the log(n) scalings. */
  get numLive(): number {
    return this.liveCount;
  }

  isLive(name: string): boolean {
    const m = this.members.get(name);
    return m !== undefined && (m.status === 'alive' || m.status === 'suspect');
  }

  nextWake(): number {
    return this.timers.next();
  }

  tick(now: number): void {
    this.now = Math.max(this.now, now);
    this.timers.run(this.now);
  }

  /** What to send, oldest first. Nothing to send is a shared empty array: do not mutate it. */
  drain(): Outgoing[] {
    const o = this.outbox;
    if (o.length === 0) return NOTHING;
    this.outbox = [];
    return o;
  }

  /** Join through any of `seeds`: a push/pull over TCP; whoever answers hands us the whole cluster. */
  join(seeds: readonly Addr[]): void {
    for (const s of seeds) this.sendPushPull(s, true, null);
  }

  /** Graceful leave: announce it (dead from ourselves); the shell should keep running ~a few gossip rounds. */
  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    const prev = this.self.status;
    this.setStatus(this.self, 'left');
    this.queue({ t: 'dead', node: this.name, inc: this.self.inc, from: this.name });
    this.emit({ kind: 'leave', member: this.self, prev, from: this.name, at: this.now });
  }

  receive(now: number, msgs: readonly Message[], via: Via): void {
    this.now = Math.max(this.now, now);
    this.timers.run(this.now);
    for (const m of msgs) {
      this.stats.messagesIn++;
      switch (m.t) {
        case 'ping': this.onPing(m, via); break;
        case 'ping-req': this.onPingReq(m); break;
        case 'ack': this.onAck(m); break;
        case 'nack': this.onNack(m); break;
        case 'alive': this.onAlive(m); break;
        case 'suspect': this.onSuspect(m); break;
        case 'dead': this.onDead(m); break;
        case 'push-pull': this.onPushPull(m); break;
        case 'net': case 'table': this.delegate?.handle(m, this.now); break;
      }
    }
  }

  /** Queue a cluster-wide broadcast (also used by the table layer for network membership events). */
  queue(msg: Message, key?: string): void {
    const k = key ?? ('node' in msg ? `m:${msg.node}` : `x:${this.rng.next()}`);
    this.broadcasts.enqueue(k, msg);
  }

  /** Send with piggybacked broadcasts on UDP (memberlist does the same on pings and acks). */
  send(to: Addr, msgs: Message[], via: Via): void {
    this.stats.packetsOut++;
    if (via === 'udp' && msgs.length < LIMITS.msgs) {
      let used = PACKET_OVERHEAD;
      for (const m of msgs) used += messageSize(m);
      const extra = this.broadcasts.take(this.config.packetBudget - used, LIMITS.msgs - msgs.length, this.retransmits());
      if (extra.length) msgs = msgs.concat(extra);
    }
    this.outbox.push({ to, via, msgs });
  }

  retransmits(): number {
    return retransmitLimit(this.config.retransmitMult, this.liveCount);
  }

  /** Random live members other than us (and other than `except`), for fan-out. */
  randomLive(k: number, except?: string): Member[] {
    return pickK(this.rng, this.list, k, (m) => m !== this.self && m.name !== except && (m.status === 'alive' || m.status === 'suspect'));
  }

  /** Push/pull with one member; tableOnly leaves the member list out (a per-network table sync). */
  pushPullTo(name: string, tableOnly = false): void {
    const m = this.members.get(name);
    if (m && m !== this.self) this.sendPushPull(m.addr, false, null, tableOnly);
  }

  timer(at: number, fn: (now: number) => void): void {
    this.timers.at(at, fn);
  }

  // ---- probing ----------------------------------------------------------------------------------

  private probeTick(now: number): void {
    const interval = this.awareness.scale(this.config.probeInterval);
    if (!this.leaving) this.probeOnce(now, interval);
    // Scheduled after the probe so that its end-of-probe check runs before the next probe starts.
    this.timers.at(now + interval, this.probeTickFn);
  }

  private probeOnce(now: number, interval: number): void {
    const target = this.nextProbeTarget();
    if (!target) return;
    const seq = this.nextSeq();
    const probe: Probe = { seq, target: target.name, acked: false, nacks: 0, expectedNacks: 0, direct: true };
    this.probe = probe;
    this.stats.probes++;
    this.acks.set(seq, { kind: 'probe', seq });
    const msgs: Message[] = [this.pingMsg(seq, target.name)];
    // Probing a suspect: tell it, so it can refute at once (memberlist does this too).
    if (target.status === 'suspect') msgs.push({ t: 'suspect', node: target.name, inc: target.inc, from: this.name });
    this.send(target.addr, msgs, 'udp');
    // The ack wait is not scaled by health (waiting longer does not help UDP through); the
    // whole probe period is, which gives the indirect and TCP paths more time.
    if (this.config.probeTimeout < interval) this.timers.at(now + this.config.probeTimeout, () => this.probeIndirect(probe));
    this.timers.at(now + interval, () => this.probeEnd(probe));
  }

  private nextProbeTarget(): Member | undefined {
    for (let tries = 0; tries <= this.probeOrder.length + 1; tries++) {
      if (this.probeIdx >= this.probeOrder.length) {
        this.probeOrder = shuffle(this.rng, this.list.filter((m) => m !== this.self && m.status !== 'dead' && m.status !== 'left').map((m) => m.name));
        this.probeIdx = 0;
        if (this.probeOrder.length === 0) return undefined;
      }
      const m = this.members.get(this.probeOrder[this.probeIdx++] as string);
      if (m && m !== this.self && (m.status === 'alive' || m.status === 'suspect')) return m;
    }
    return undefined;
  }

  private probeIndirect(p: Probe): void {
    if (p.acked || this.probe !== p) return;
    const target = this.members.get(p.target);
    if (!target || target.status === 'dead' || target.status === 'left') return;
    p.direct = false;
    const relays = this.randomLive(this.config.indirectChecks, target.name);
    p.expectedNacks = relays.length;
    for (const r of relays) {
      this.stats.indirectProbes++;
      const req: PingReq = { t: 'ping-req', seq: p.seq, target: target.name, targetAddr: target.addr, nack: true, source: this.name, sourceAddr: this.addr };
      this.send(r.addr, [req], 'udp');
    }
    if (this.config.tcpFallback) {
      this.stats.tcpProbes++;
      this.send(target.addr, [this.pingMsg(p.seq, target.name)], 'tcp');
    }
  }

  private probeEnd(p: Probe): void {
    this.acks.delete(p.seq);
    if (this.probe === p) this.probe = null;
    if (p.acked) return;
    const target = this.members.get(p.target);
    if (!target || target.status === 'dead' || target.status === 'left' || this.leaving) return;
    this.stats.probeFailures++;
    // Lifeguard: relays that did not even nack point at us, not at the target.
    if (p.expectedNacks > 0) this.awareness.apply(Math.max(0, p.expectedNacks - p.nacks));
    else this.awareness.apply(1);
    this.onSuspect({ t: 'suspect', node: target.name, inc: target.inc, from: this.name });
  }

  private onPing(m: Ping, via: Via): void {
    // A ping for another name means our address was reused; staying silent lets the prober fail.
    if (m.target !== '' && m.target !== this.name) { this.stats.ignored++; return; }
    this.send(m.sourceAddr, [{ t: 'ack', seq: m.seq }], via);
  }

  private onPingReq(m: PingReq): void {
    if (this.leaving) return;
    const seq = this.nextSeq();
    const h: AckHandler = { kind: 'relay', origSeq: m.seq, to: m.sourceAddr, via: 'udp', acked: false };
    this.acks.set(seq, h);
    this.send(m.targetAddr, [this.pingMsg(seq, m.target)], 'udp');
    if (m.nack) {
      this.timers.at(this.now + this.config.probeTimeout, () => {
        if (!h.acked) this.send(m.sourceAddr, [{ t: 'nack', seq: m.seq }], 'udp');
      });
    }
    this.timers.at(this.now + this.config.probeInterval, () => this.acks.delete(seq));
  }

  private onAck(m: Ack): void {
    const h = this.acks.get(m.seq);
    if (!h) return;
    if (h.kind === 'relay') {
      if (h.acked) return;
      h.acked = true;
      this.send(h.to, [{ t: 'ack', seq: h.origSeq }], h.via);
      return;
    }
    const p = this.probe;
    if (!p || p.seq !== m.seq || p.acked) return;
    p.acked = true;
    this.awareness.apply(-1);
  }

  private onNack(m: Nack): void {
    const p = this.probe;
    if (p && p.seq === m.seq) p.nacks++;
  }

  // ---- state changes ----------------------------------------------------------------------------

  private onAlive(m: Alive): void {
    if (m.node === this.name) {
      // Someone claims a newer us (a previous life of this name): out-bid it.
      if (m.inc > this.self.inc && !this.leaving) this.refute(m.inc);
      return;
    }
    const st = this.members.get(m.node);
    if (!st) {
      const fresh: Member = { name: m.node, addr: m.addr, inc: m.inc, status: 'alive', meta: m.meta, since: this.now };
      this.addMember(fresh);
      this.queue(m);
      this.emit({ kind: 'join', member: fresh, prev: undefined, at: this.now });
      return;
    }
    if (m.inc <= st.inc) return;
    const prev = st.status;
    this.endSuspicion(st.name);
    st.inc = m.inc;
    st.addr = m.addr;
    st.meta = m.meta;
    this.setStatus(st, 'alive');
    this.queue(m);
    this.emit({ kind: prev === 'alive' ? 'update' : prev === 'suspect' ? 'alive' : 'join', member: st, prev, at: this.now });
  }

  private onSuspect(m: Suspect): void {
    const st = this.members.get(m.node);
    if (!st || m.inc < st.inc) return;
    if (st === this.self) {
      if (!this.leaving) this.refute(m.inc);
      return;
    }
    if (st.status === 'suspect') {
      const s = this.suspicions.get(st.name);
      if (s && s.confirm(m.from)) {
        this.queue(m);
        this.armSuspicion(st.name, s);
      }
      return;
    }
    if (st.status !== 'alive') return;
    st.inc = m.inc;
    this.setStatus(st, 'suspect');
    this.stats.suspicionsStarted++;
    this.queue(m);
    const n = this.liveCount;
    // Expect suspicionMult-2 independent confirmations, unless the cluster is too small to give them.
    let k = this.config.suspicionMult - 2;
    if (n - 2 < k) k = 0;
    const { min, max } = suspicionTimeouts(this.config, n);
    const s = new Suspicion(this.now, m.from, k, min, max);
    this.suspicions.set(st.name, s);
    this.armSuspicion(st.name, s);
    this.emit({ kind: 'suspect', member: st, prev: 'alive', from: m.from, at: this.now });
  }

  /** (Re)arms the suspicion's timer at its deadline, dropping the previous one. */
  private armSuspicion(name: string, s: Suspicion): void {
    if (s.timer) this.timers.cancel(s.timer);
    s.timer = this.timers.at(s.deadline, () => this.suspicionFired(name, s));
  }

  /** The suspicion ended (refuted, confirmed dead, left): forget it and its timer. */
  private endSuspicion(name: string): void {
    const s = this.suspicions.get(name);
    if (!s) return;
    this.suspicions.delete(name);
    if (s.timer) this.timers.cancel(s.timer);
  }

  private suspicionFired(name: string, s: Suspicion): void {
    if (this.suspicions.get(name) !== s || this.now < s.deadline) return;
    this.suspicions.delete(name);
    const st = this.members.get(name);
    if (!st || st.status !== 'suspect') return;
    this.stats.declaredDead++;
    this.onDead({ t: 'dead', node: name, inc: st.inc, from: this.name });
  }

  private onDead(m: Dead): void {
    const st = this.members.get(m.node);
    if (!st || m.inc < st.inc || st.status === 'dead' || st.status === 'left') return;
    if (st === this.self) {
      if (!this.leaving) this.refute(m.inc);
      return;
    }
    const prev = st.status;
    this.endSuspicion(st.name);
    st.inc = m.inc;
    const left = m.from === m.node;
    this.setStatus(st, left ? 'left' : 'dead');
    this.queue(m);
    this.emit({ kind: left ? 'leave' : 'dead', member: st, prev, from: m.from, at: this.now });
  }

  /** Lifeguard: being accused is a hint that we are the slow one, so health worsens too. */
  private refute(accusedInc: number): void {
    this.self.inc = Math.min(0xffffffff, Math.max(this.self.inc, accusedInc) + 1);
    this.stats.refutations++;
    this.awareness.apply(1);
    this.queue(this.aliveMsg());
  }

  // ---- gossip and push/pull ---------------------------------------------------------------------

  private gossipTick(now: number): void {
    this.timers.at(now + this.config.gossipInterval, this.gossipTickFn);
    const limit = this.retransmits();
    if (this.broadcasts.length > 0) {
      // Recently dead members still get gossip so that a falsely accused node hears it and refutes.
      const targets = pickK(this.rng, this.list, this.config.gossipNodes, (m) => m !== this.self && (m.status === 'alive' || m.status === 'suspect' || now - m.since < this.config.gossipToTheDead));
      for (const m of targets) {
        const msgs = this.broadcasts.take(this.config.packetBudget - PACKET_OVERHEAD, LIMITS.msgs, limit);
        if (msgs.length === 0) break;
        this.stats.packetsOut++;
        this.outbox.push({ to: m.addr, via: 'udp', msgs });
      }
    }
    this.delegate?.gossip(now);
  }

  private pushPullTick(now: number): void {
    this.timers.at(now + pushPullScale(this.config.pushPullInterval, this.liveCount), this.pushPullTickFn);
    if (this.leaving) return;
    const [peer] = pickK(this.rng, this.list, 1, (m) => m !== this.self && m.status === 'alive');
    if (peer) this.sendPushPull(peer.addr, false, null);
  }

  /** serf-style reconnect: occasionally push/pull with a dead member, so split halves find each other. */
  private reconnectTick(now: number): void {
    this.timers.at(now + this.config.reconnectInterval, this.reconnectTickFn);
    if (this.leaving) return;
    if (this.list.length === this.liveCount) return; // nobody dead or left: skip the scan
    const dead = this.list.filter((m) => m.status === 'dead');
    if (dead.length === 0 || this.rng.next() > dead.length / this.liveCount) return;
    const m = dead[this.rng.int(dead.length)] as Member;
    this.sendPushPull(m.addr, false, null);
  }

  private maintainTick(now: number): void {
    this.timers.at(now + 1000, this.maintainTickFn);
    this.broadcasts.prune(this.retransmits());
    const c = this.config;
    // list.length - liveCount members are dead or left; the common case has none to scan for.
    const drop = this.list.length === this.liveCount ? [] : this.list.filter((m) => m !== this.self && ((m.status === 'left' && now - m.since > c.gossipToTheDead) || (m.status === 'dead' && now - m.since > c.deadReclaim)));
    if (drop.length) {
      for (const m of drop) this.members.delete(m.name);
      this.list = this.list.filter((m) => this.members.get(m.name) === m);
    }
    this.delegate?.maintain(now);
  }

  private sendPushPull(to: Addr, join: boolean, reply: PushPull | null, tableOnly = false): void {
    this.stats.pushPulls++;
    const members: MemberRecord[] = tableOnly ? [] : this.list.map((m) => ({ name: m.name, addr: m.addr, inc: m.inc, status: m.status, meta: m.meta }));
    const peer = reply ? reply.source : this.nameAt(to);
    const extra = this.delegate?.localState(peer, reply, tableOnly) ?? { nets: [], entries: [] };
    const pp: PushPull = { t: 'push-pull', join, reply: reply !== null, source: this.name, sourceAddr: this.addr, members, nets: extra.nets, entries: extra.entries };
    this.send(to, [pp], 'tcp');
  }

  private nameAt(a: Addr): string | null {
    for (const m of this.list) if (m.addr.port === a.port && m.addr.host === a.host) return m.name;
    return null;
  }

  private onPushPull(pp: PushPull): void {
    if (pp.source === this.name) return;
    // memberlist's mergeRemoteState: a remote "dead" only makes us suspect, a "left" is final.
    for (const r of pp.members) {
      switch (r.status) {
        case 'alive': this.onAlive({ t: 'alive', node: r.name, inc: r.inc, addr: r.addr, meta: r.meta }); break;
        case 'suspect': case 'dead': this.onSuspect({ t: 'suspect', node: r.name, inc: r.inc, from: pp.source }); break;
        case 'left': this.onDead({ t: 'dead', node: r.name, inc: r.inc, from: r.name }); break;
      }
    }
    this.delegate?.mergeRemote(pp, this.now);
    // A request without members (every real one lists at least its sender) is a table-only sync.
    if (!pp.reply && !this.leaving) this.sendPushPull(pp.sourceAddr, pp.join, pp, pp.members.length === 0);
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private pingMsg(seq: number, target: string): Ping {
    return { t: 'ping', seq, target, source: this.name, sourceAddr: this.addr };
  }

  private aliveMsg(): Alive {
    return { t: 'alive', node: this.name, inc: this.self.inc, addr: this.addr, meta: this.self.meta };
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private addMember(m: Member): void {
    this.members.set(m.name, m);
    this.list.push(m);
    if (m !== this.self) {
      this.liveCount++;
      // Random position in the probe order, so new members are not all probed last (memberlist).
      this.probeOrder.splice(this.probeIdx + this.rng.int(this.probeOrder.length - this.probeIdx + 1), 0, m.name);
    }
  }

  private setStatus(m: Member, s: MemberStatus): void {
    const wasLive = m.status === 'alive' || m.status === 'suspect';
    const isLive = s === 'alive' || s === 'suspect';
    if (wasLive && !isLive) this.liveCount--;
    if (!wasLive && isLive) this.liveCount++;
    if (m.status !== s) m.since = this.now;
    m.status = s;
  }

  private emit(e: MemberEvent): void {
    for (const f of this.listeners) f(e);
  }
}
