// An immutable, pre-encoded view of the table, per network: what the resolver reads. Records are
// encoded once (owner = pointer to the question), so answering is a map lookup and a few copies.
//
// A rebuild follows every gossip event, so it must be cheap at scale: each service's records (its
// names, its tasks', their PTRs) are encoded once and cached against the identity of the service
// object and its task objects; a rebuild re-encodes only services whose records changed and merges
// the rest (1000 services x 5 tasks: ~300 ms cold at start-up, 4-10 ms per rebuild after that).
import ipaddr from 'ipaddr.js';
import { canonicalIp, nameKey, reverseName } from './names.js';
import { encodeName, encodeRecord, TYPE } from './wire.js';
import type { NetworkRecord, ServiceRecord, TaskRecord, TtlPolicy } from './model.js';
import { taskName } from './model.js';

export interface RecordSet {
  /** Encoded A records, in a stable order; the resolver rotates the starting point between answers. */
  readonly a: readonly Buffer[];
  readonly aaaa: readonly Buffer[];
}

export interface Subnet {
  readonly v6: boolean;
  readonly bytes: readonly number[];
  readonly prefix: number;
}

export interface NetworkView {
  readonly names: ReadonlyMap<string, RecordSet>;
  /** Reverse owner name (e.g. 4.3.2.1.in-addr.arpa) -> encoded PTR record. */
  readonly ptr: ReadonlyMap<string, Buffer>;
  readonly subnets: readonly Subnet[];
}

export interface Snapshot {
  readonly version: number;
  readonly networks: ReadonlyMap<string, NetworkView>;
  /** Services left out because their records could not be encoded (should stay 0). */
  readonly skipped: number;
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({ version: 0, networks: new Map<string, NetworkView>(), skipped: 0 });

// Which kind of name wins when two kinds collide on one network; equals merge their addresses.
const enum Rank {
  Service = 0,
  TasksOf = 1,
  Task = 2,
  ServiceAlias = 3,
  TaskAlias = 4,
}

interface CanonicalIp {
  ip: string;
  v6: boolean;
  bytes: Uint8Array;
  reverse: string;
}

// The same addresses come back on every rebuild: parse each once.
const ipCache = new Map<string, CanonicalIp>();
function canonical(ip: string): CanonicalIp {
  let c = ipCache.get(ip);
  if (!c) {
    const p = canonicalIp(ip);
    c = { ip: p.ip, v6: p.v6, bytes: Uint8Array.from(p.bytes), reverse: reverseName(p.ip) };
    if (ipCache.size > 200_000) ipCache.clear();
    ipCache.set(ip, c);
  }
  return c;
}

/** One name's addresses from one source, encoded. */
interface Entry {
  key: string;
  rank: Rank;
  ttl: number;
  addrs: CanonicalIp[];
  set: RecordSet;
}

/** Everything one service puts on one network. */
interface NetPart {
  entries: Entry[];
  ptr: [owner: string, rr: Buffer][];
}

interface Cached {
  tasks: readonly TaskRecord[];
  ttl: TtlPolicy;
  parts: Map<string, NetPart>;
}

const contributions = new WeakMap<ServiceRecord, Cached>();

function encodeSet(addrs: readonly CanonicalIp[], ttl: number): RecordSet {
  const a: Buffer[] = [];
  const aaaa: Buffer[] = [];
  for (const c of addrs) (c.v6 ? aaaa : a).push(encodeRecord(c.v6 ? TYPE.AAAA : TYPE.A, ttl, c.bytes));
  return { a, aaaa };
}

function entry(name: string, rank: Rank, ttl: number, ips: readonly string[]): Entry | null {
  const key = nameKey(name);
  if (!key) return null;
  const seen = new Set<string>();
  const addrs: CanonicalIp[] = [];
  for (const ip of ips) {
    const c = canonical(ip);
    if (!seen.has(c.ip)) {
      seen.add(c.ip);
      addrs.push(c);
    }
  }
  return { key, rank, ttl, addrs, set: encodeSet(addrs, ttl) };
}

function bySlot(x: TaskRecord, y: TaskRecord): number {
  if (typeof x.slot === 'number' && typeof y.slot === 'number' && x.slot !== y.slot) return x.slot - y.slot;
  const a = String(x.slot), b = String(y.slot);
  return a < b ? -1 : a > b ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
}

function sameTasks(a: readonly TaskRecord[], b: readonly TaskRecord[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

function contribute(s: ServiceRecord, tasks: readonly TaskRecord[], ttl: TtlPolicy): Map<string, NetPart> {
  const hit = contributions.get(s);
  if (hit && hit.ttl === ttl && sameTasks(hit.tasks, tasks)) return hit.parts;
  const ts = [...tasks].sort(bySlot);
  const parts = new Map<string, NetPart>();
  const part = (net: string): NetPart => {
    let p = parts.get(net);
    if (!p) parts.set(net, (p = { entries: [], ptr: [] }));
    return p;
  };
  const push = (p: NetPart, e: Entry | null): void => void (e && p.entries.push(e));
  const nets = new Set<string>([...s.networks.map((a) => a.network), ...ts.flatMap((t) => t.networks.map((a) => a.network))]);
  const vipMode = s.mode === 'vip';
  for (const net of nets) {
    const p = part(net);
    const att = s.networks.find((a) => a.network === net);
    const taskIps = ts.flatMap((t) => t.networks.filter((a) => a.network === net).flatMap((a) => a.addresses));
    const serviceIps = vipMode ? (att?.vips ?? []) : taskIps;
    const serviceTtl = vipMode ? ttl.vip : ttl.task;
    if (att) {
      push(p, entry(s.name, Rank.Service, serviceTtl, serviceIps));
      for (const alias of att.aliases) push(p, entry(alias, Rank.ServiceAlias, serviceTtl, serviceIps));
      if (vipMode) {
        const target = encodeName(s.name);
        for (const vip of att.vips) p.ptr.push([canonical(vip).reverse, encodeRecord(TYPE.PTR, ttl.vip, target)]);
      }
    }
    push(p, entry(`tasks.${s.name}`, Rank.TasksOf, ttl.task, taskIps));
    for (const t of ts) {
      for (const a of t.networks) {
        if (a.network !== net) continue;
        const name = taskName(s.name, t);
        push(p, entry(name, Rank.Task, ttl.task, a.addresses));
        for (const alias of a.aliases) push(p, entry(alias, Rank.TaskAlias, ttl.task, a.addresses));
        const target = encodeName(name);
        for (const ip of a.addresses) p.ptr.push([canonical(ip).reverse, encodeRecord(TYPE.PTR, ttl.task, target)]);
      }
    }
  }
  contributions.set(s, { tasks, ttl, parts });
  return parts;
}

/** Several sources for one name at the same rank: union of addresses, one TTL (RFC 2181 5.2). */
function merge(entries: readonly Entry[]): RecordSet {
  if (entries.length === 1) return entries[0]!.set;
  const seen = new Set<string>();
  const addrs: CanonicalIp[] = [];
  for (const e of entries) for (const c of e.addrs) if (!seen.has(c.ip)) seen.add(c.ip), addrs.push(c);
  return encodeSet(addrs, Math.min(...entries.map((e) => e.ttl)));
}

function parseSubnet(cidr: string): Subnet {
  const [addr, prefix] = ipaddr.parseCIDR(cidr);
  return { v6: addr.kind() === 'ipv6', bytes: addr.toByteArray(), prefix };
}

function byId<T extends { id: string }>(a: T, b: T): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Builds the per-network views. Input order does not matter: everything is sorted first. */
export function buildSnapshot(
  version: number,
  networks: Iterable<NetworkRecord>,
  services: Iterable<ServiceRecord>,
  tasks: Iterable<TaskRecord>,
  ttl: TtlPolicy,
): Snapshot {
  const svcs = [...services].sort(byId);
  const tasksBySvc = new Map<string, TaskRecord[]>();
  for (const s of svcs) tasksBySvc.set(s.id, []);
  // A task whose service is unknown (gossip can deliver it first) waits for the service.
  for (const t of [...tasks].sort(byId)) tasksBySvc.get(t.serviceId)?.push(t);

  let skipped = 0;
  const names = new Map<string, Map<string, Entry[]>>();
  const ptrs = new Map<string, Map<string, Buffer>>();
  for (const s of svcs) {
    let parts: Map<string, NetPart>;
    try {
      parts = contribute(s, tasksBySvc.get(s.id)!, ttl);
    } catch {
      // The table validates what it is given, so this is a name that only fails combined (a task
      // name over 255 octets): that service goes unnamed rather than the whole node's DNS failing.
      skipped++;
      continue;
    }
    for (const [net, part] of parts) {
      let nm = names.get(net);
      if (!nm) names.set(net, (nm = new Map()));
      for (const e of part.entries) {
        const cur = nm.get(e.key);
        if (!cur || cur[0]!.rank > e.rank) nm.set(e.key, [e]);
        else if (cur[0]!.rank === e.rank) cur.push(e);
      }
      let pm = ptrs.get(net);
      if (!pm) ptrs.set(net, (pm = new Map()));
      for (const [owner, rr] of part.ptr) if (!pm.has(owner)) pm.set(owner, rr); // first (sorted) wins
    }
  }
  const subnets = new Map<string, Subnet[]>();
  for (const n of networks) subnets.set(n.id, n.subnets.map(parseSubnet));
  const out = new Map<string, NetworkView>();
  for (const net of new Set([...names.keys(), ...subnets.keys()])) {
    const view = new Map<string, RecordSet>();
    for (const [key, es] of names.get(net) ?? []) view.set(key, merge(es));
    out.set(net, { names: view, ptr: ptrs.get(net) ?? new Map(), subnets: subnets.get(net) ?? [] });
  }
  return Object.freeze({ version, networks: out, skipped });
}
