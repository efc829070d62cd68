// Network-scoped tables (libnetwork networkdb's model): entries (network, table, key) -> value, each
// owned by the node that wrote it and versioned by a Lamport clock. A node holds and gossips only the
// networks it takes part in; deletes leave tombstones that are reaped later; when an owner leaves a
// network, leaves the cluster or is declared dead, every node drops its entries on its own.
import { BroadcastQueue } from './broadcast.js';
import { LIMITS, messageSize, PACKET_OVERHEAD } from './codec.js';
import { retransmitLimit } from './config.js';
import type { Membership, MemberEvent, StateDelegate } from './membership.js';
import type { NetEvent, PushPull, TableEntry, TableEvent } from './messages.js';
import { pickK } from './rng.js';

export type TableChangeKind = 'add' | 'update' | 'delete';

/** An entry as a subscriber sees it change; for a delete, `value` is the value that was removed. */
export interface TableChange extends Omit<TableEntry, 'deleted'> {
  type: TableChangeKind;
}

export interface TableFilter {
  network?: string;
  table?: string;
}

interface Stored extends TableEntry {
  /** When to forget a tombstone; Infinity while live. */
  reapAt: number;
  /** Removed locally because its owner went away (not a delete by the owner); restored if it returns. */
  gone: boolean;
}

export interface TableStats {
  eventsIn: number;
  applied: number;
  stale: number;
  notMember: number;
  ownerGone: number;
  reaped: number;
  subscriberErrors: number;
}

export class Tables implements StateDelegate {
  readonly stats: TableStats = { eventsIn: 0, applied: 0, stale: 0, notMember: 0, ownerGone: 0, reaped: 0, subscriberErrors: 0 };
  private clock = 0;
  private netClock = 0;
  /**
   * Latest network event per node and network (our own included): the event itself when the node is
   * in one network (the common case, a thousand times over in a big cluster), else a short list.
   * Far smaller than a Map per node.
   */
  private readonly nodeNets = new Map<string, NetEvent | NetEvent[]>();
  private readonly netMembers = new Map<string, Set<string>>();
  private readonly netArrays = new Map<string, string[]>();
  private readonly data = new Map<string, Map<string, Stored>>();
  private readonly queues = new Map<string, BroadcastQueue>();
  private subs: { f: TableFilter; fn: (c: TableChange) => void }[] = [];
  private nextReap: number;
  private nextSync: number;

  constructor(private readonly m: Membership) {
    m.delegate = this;
    m.onEvent((e) => this.onMember(e));
    this.nextReap = m.now + this.reapPeriod();
    this.nextSync = m.now + m.config.tableSyncInterval;
  }

  // ---- public API -------------------------------------------------------------------------------

  joinNetwork(network: string): void {
    checkLen(network, LIMITS.name, 'network');
    if (this.data.has(network)) return;
    this.data.set(network, new Map());
    this.queues.set(network, new BroadcastQueue());
    this.announce(network, false);
    // Catch up at once from someone already in the network (networkdb's bulk sync on join).
    const peer = this.randomNetPeer(network);
    if (peer) this.m.pushPullTo(peer, true);
  }

  /**
   * Bulk-syncs a network we are in with one random peer of it (as joinNetwork does). For a node that
   * joined a network before it knew who else was in it (right after start), so it need not wait for
   * the periodic sync. False when no peer of the network is known yet.
   */
  syncNetwork(network: string): boolean {
    if (!this.data.has(network)) return false;
    const peer = this.randomNetPeer(network);
    if (!peer) return false;
    this.m.pushPullTo(peer, true);
    return true;
  }

  leaveNetwork(network: string): void {
    const tbl = this.data.get(network);
    if (!tbl) return;
    this.announce(network, true);
    for (const e of tbl.values()) if (!e.deleted) this.emit('delete', e);
    this.data.delete(network);
    this.queues.delete(network);
  }

  networks(): string[] {
    return [...this.data.keys()];
  }

  /** Nodes that currently take part in `network` (by the latest network events we know). */
  networkNodes(network: string): string[] {
    return this.netArray(network).slice();
  }

  put(network: string, table: string, key: string, value: Uint8Array): void {
    const tbl = this.data.get(network);
    if (!tbl) throw new Error(`not a member of network ${network}`);
    checkLen(table, LIMITS.name, 'table');
    checkLen(key, LIMITS.key, 'key');
    if (value.length > LIMITS.value) throw new RangeError(`value longer than ${LIMITS.value} bytes`);
    const e: TableEntry = { network, table, key, value: value.slice(), owner: this.m.name, version: this.clock + 1, deleted: false };
    // Table events travel piggybacked in single UDP packets; an entry that cannot fit one could
    // only move by push/pull. Endpoint records are ~100-200 bytes, so refuse rather than stall.
    if (messageSize({ t: 'table', ...e }) > this.m.config.packetBudget - PACKET_OVERHEAD) throw new RangeError('table entry too large for one gossip packet');
    this.clock++;
    this.store(e, tbl.get(tk(table, key)), true);
  }

  /** Deletes an entry we own; false when there is none. */
  delete(network: string, table: string, key: string): boolean {
    const cur = this.data.get(network)?.get(tk(table, key));
    if (!cur || cur.deleted || cur.owner !== this.m.name) return false;
    this.store({ ...cur, value: cur.value, version: ++this.clock, deleted: true }, cur, true);
    return true;
  }

  get(network: string, table: string, key: string): TableEntry | undefined {
    const e = this.data.get(network)?.get(tk(table, key));
    return e && !e.deleted ? strip(e) : undefined;
  }

  entries(network: string, table?: string): TableEntry[] {
    const out: TableEntry[] = [];
    for (const e of this.data.get(network)?.values() ?? []) if (!e.deleted && (table === undefined || e.table === table)) out.push(strip(e));
    return out;
  }

  /** Live entries per network (for status displays). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [n, tbl] of this.data) { let c = 0; for (const e of tbl.values()) if (!e.deleted) c++; out[n] = c; }
    return out;
  }

  /** Tombstones currently held (for tests of reaping). */
  tombstones(network: string): number {
    let c = 0;
    for (const e of this.data.get(network)?.values() ?? []) if (e.deleted) c++;
    return c;
  }

  subscribe(filter: TableFilter, fn: (c: TableChange) => void): () => void {
    const s = { f: filter, fn };
    this.subs.push(s);
    return () => { this.subs = this.subs.filter((x) => x !== s); };
  }

  // ---- StateDelegate ----------------------------------------------------------------------------

  localState(peer: string | null, reply: PushPull | null, tableOnly: boolean): { nets: NetEvent[]; entries: TableEntry[] } {
    const nets: NetEvent[] = [];
    // A table-only sync carries just our own network list (the peer needs it to pick entries).
    if (tableOnly) nets.push(...netList(this.nodeNets.get(this.m.name)));
    else for (const per of this.nodeNets.values()) { if (Array.isArray(per)) nets.push(...per); else nets.push(per); }
    // Only networks both sides take part in: tables never leave their network.
    const theirs = new Set<string>();
    if (reply) { for (const ev of reply.nets) if (ev.node === reply.source && !ev.leave) theirs.add(ev.network); }
    else if (peer !== null) { for (const ev of netList(this.nodeNets.get(peer))) if (!ev.leave) theirs.add(ev.network); }
    const entries: TableEntry[] = [];
    for (const [net, tbl] of this.data) {
      if (peer === null && reply === null ? false : !theirs.has(net)) continue;
      for (const e of tbl.values()) if (!e.gone) entries.push(strip(e));
    }
    return { nets, entries };
  }

  mergeRemote(pp: PushPull, now: number): void {
    void now;
    for (const ev of pp.nets) this.applyNet(ev);
    // After a join everything is new to us; re-gossiping it would only flood. After a partition heal
    // the news is real, and gossip spreads it faster than waiting for everyone's push/pull.
    for (const e of pp.entries) this.applyEntry(e, !pp.join);
  }

  handle(msg: NetEvent | TableEvent): void {
    if (msg.t === 'net') {
      if (this.applyNet(msg)) this.m.queue(msg, netKey(msg));
      return;
    }
    const { t: _t, ...e } = msg;
    this.applyEntry(e, true);
  }

  gossip(): void {
    for (const [net, q] of this.queues) {
      if (q.length === 0) continue;
      const nodes = this.netArray(net);
      const limit = retransmitLimit(this.m.config.retransmitMult, nodes.length);
      const targets = pickK(this.m.rng, nodes, this.m.config.gossipNodes, (n) => n !== this.m.name && this.m.isLive(n));
      for (const name of targets) {
        const msgs = q.take(this.m.config.packetBudget - 64, LIMITS.msgs, limit);
        if (msgs.length === 0) break;
        const to = this.m.member(name);
        if (to) this.m.send(to.addr, msgs, 'udp');
      }
    }
  }

  maintain(now: number): void {
    if (now >= this.nextSync) {
      this.nextSync = now + this.m.config.tableSyncInterval;
      for (const net of this.data.keys()) {
        const peer = this.randomNetPeer(net);
        if (peer) this.m.pushPullTo(peer, true);
      }
    }
    if (now < this.nextReap) return;
    this.nextReap = now + this.reapPeriod();
    for (const tbl of this.data.values()) {
      for (const [k, e] of tbl) if (e.deleted && e.reapAt <= now) { tbl.delete(k); this.stats.reaped++; }
    }
    for (const node of this.nodeNets.keys()) if (node !== this.m.name && !this.m.member(node)) this.forgetNode(node);
  }

  // ---- rules ------------------------------------------------------------------------------------

  private announce(network: string, leave: boolean): void {
    const ev: NetEvent = { t: 'net', node: this.m.name, network, ltime: ++this.netClock, leave };
    this.setNet(ev);
    this.m.queue(ev, netKey(ev));
  }

  /** True when the event was news. */
  private applyNet(ev: NetEvent): boolean {
    if (ev.node === this.m.name) {
      // A previous life of ours announced something newer: out-bid it with the truth.
      if (ev.ltime >= this.netClock) {
        this.netClock = ev.ltime;
        const mine = this.data.has(ev.network);
        if (mine === ev.leave) this.announce(ev.network, !mine);
      }
      return false;
    }
    const cur = findNet(this.nodeNets.get(ev.node), ev.network);
    if (cur && cur.ltime >= ev.ltime) return false;
    this.setNet(ev);
    if (ev.leave) this.dropOwner(ev.node, ev.network, false);
    return true;
  }

  private setNet(ev: NetEvent): void {
    const per = this.nodeNets.get(ev.node);
    if (!per) this.nodeNets.set(ev.node, ev);
    else if (!Array.isArray(per)) this.nodeNets.set(ev.node, per.network === ev.network ? ev : [per, ev]);
    else {
      const i = per.findIndex((x) => x.network === ev.network);
      if (i >= 0) per[i] = ev; else per.push(ev);
    }
    let set = this.netMembers.get(ev.network);
    if (!set) { set = new Set(); this.netMembers.set(ev.network, set); }
    const had = set.has(ev.node);
    if (ev.leave) set.delete(ev.node); else set.add(ev.node);
    if (had === ev.leave) this.netArrays.delete(ev.network);
  }

  private forgetNode(node: string): void {
    for (const { network } of netList(this.nodeNets.get(node))) {
      this.netMembers.get(network)?.delete(node);
      this.netArrays.delete(network);
    }
    this.nodeNets.delete(node);
  }

  private applyEntry(e: TableEntry, rebroadcast: boolean): void {
    this.stats.eventsIn++;
    const tbl = this.data.get(e.network);
    if (!tbl) { this.stats.notMember++; return; }
    if (e.version > this.clock) this.clock = e.version;
    const cur = tbl.get(tk(e.table, e.key));
    if (e.owner === this.m.name) {
      // Our own entry from a previous life that we no longer hold: delete it with a newer version.
      if (!e.deleted && (!cur || cur.version < e.version)) {
        this.store({ ...e, version: ++this.clock, deleted: true }, cur, true);
      } else this.stats.stale++;
      return;
    }
    if (!this.m.isLive(e.owner)) { this.stats.ownerGone++; return; }
    if (cur && !(e.version > cur.version || (e.version === cur.version && e.owner > cur.owner))) { this.stats.stale++; return; }
    this.store(e, cur, rebroadcast);
  }

  private store(e: TableEntry, cur: Stored | undefined, rebroadcast: boolean): void {
    const tbl = this.data.get(e.network);
    if (!tbl) return;
    this.stats.applied++;
    const s: Stored = { ...e, gone: false, reapAt: e.deleted ? this.m.now + this.m.config.tombstoneReap : Infinity };
    // A tombstone keeps the deleted value only locally (for the delete event); the wire sends none.
    tbl.set(tk(e.table, e.key), s);
    if (e.deleted) { if (cur && !cur.deleted) this.emit('delete', { ...s, value: cur.value }); }
    else this.emit(cur && !cur.deleted ? 'update' : 'add', s);
    if (rebroadcast) this.queues.get(e.network)?.enqueue(`${e.table}\u0000${e.key}`, { t: 'table', ...strip(s) });
  }

  /** Owner left `network` (or the cluster, network undefined): drop its entries here. */
  private dropOwner(owner: string, network: string | undefined, restorable: boolean): void {
    const reapAt = this.m.now + this.m.config.tombstoneReap;
    for (const [net, tbl] of this.data) {
      if (network !== undefined && net !== network) continue;
      for (const [k, e] of tbl) {
        if (e.owner !== owner || e.deleted) continue;
        const s: Stored = { ...e, deleted: true, gone: restorable, reapAt };
        tbl.set(k, s);
        this.emit('delete', e);
      }
    }
  }

  private onMember(ev: MemberEvent): void {
    const name = ev.member.name;
    if (name === this.m.name) return;
    if (ev.kind === 'dead') this.dropOwner(name, undefined, true);
    else if (ev.kind === 'leave') this.dropOwner(name, undefined, false);
    else if (ev.kind === 'join' && ev.prev === 'dead') {
      // Falsely declared dead (or a healed partition): bring its entries back; anything it changed
      // meanwhile arrives with newer versions by gossip or push/pull.
      for (const tbl of this.data.values()) {
        for (const [k, e] of tbl) {
          if (e.owner !== name || !e.gone) continue;
          const s: Stored = { ...e, deleted: false, gone: false, reapAt: Infinity };
          tbl.set(k, s);
          this.emit('add', s);
        }
      }
    }
  }

  private emit(type: TableChangeKind, e: TableEntry): void {
    if (this.subs.length === 0) return;
    const c: TableChange = { type, network: e.network, table: e.table, key: e.key, value: e.value, owner: e.owner, version: e.version };
    for (const s of this.subs) {
      if ((s.f.network !== undefined && s.f.network !== e.network) || (s.f.table !== undefined && s.f.table !== e.table)) continue;
      try { s.fn(c); } catch { this.stats.subscriberErrors++; }
    }
  }

  private netArray(network: string): string[] {
    let a = this.netArrays.get(network);
    if (!a) { a = [...(this.netMembers.get(network) ?? [])]; this.netArrays.set(network, a); }
    return a;
  }

  private randomNetPeer(network: string): string | undefined {
    return pickK(this.m.rng, this.netArray(network), 1, (n) => n !== this.m.name && this.m.isLive(n))[0];
  }

  private reapPeriod(): number {
    return Math.max(1000, Math.min(this.m.config.tombstoneReap / 4, 10_000));
  }
}

function findNet(per: NetEvent | readonly NetEvent[] | undefined, network: string): NetEvent | undefined {
  if (per === undefined) return undefined;
  if (!Array.isArray(per)) return (per as NetEvent).network === network ? (per as NetEvent) : undefined;
  for (const ev of per as readonly NetEvent[]) if (ev.network === network) return ev;
  return undefined;
}

function netList(per: NetEvent | readonly NetEvent[] | undefined): readonly NetEvent[] {
  return per === undefined ? [] : Array.isArray(per) ? per : [per as NetEvent];
}

function tk(table: string, key: string): string {
  return `${table}\u0000${key}`;
}

function netKey(ev: NetEvent): string {
  return `n:${ev.node}\u0000${ev.network}`;
}

function strip(e: Stored): TableEntry {
  return { network: e.network, table: e.table, key: e.key, value: e.deleted ? new Uint8Array(0) : e.value, owner: e.owner, version: e.version, deleted: e.deleted };
}

function checkLen(s: string, max: number, what: string): void {
  if (Buffer.byteLength(s) > max) throw new RangeError(`${what} longer than ${max} bytes`);
}
