// An immutable, pre-encoded view of the table, per network: what the resolver reads. Records are
// encoded once per table change (owner = pointer to the question), so answering is a map lookup and
// a few buffer copies.
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
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({ version: 0, networks: new Map<string, NetworkView>() });

// Which kind of name wins when two kinds collide on one network; equals merge their addresses.
const enum Rank {
  Service = 0,
  TasksOf = 1,
  Task = 2,
  ServiceAlias = 3,
  TaskAlias = 4,
}

interface Pending {
  rank: Rank;
  ttl: number;
  addrs: Map<string, boolean>; // canonical ip -> v6
}

class ViewBuilder {
  readonly names = new Map<string, Pending>();
  readonly ptr = new Map<string, Buffer>();
  subnets: Subnet[] = [];

  add(name: string, rank: Rank, ttl: number, addrs: readonly string[]): void {
    const key = nameKey(name);
    if (!key) return;
    let p = this.names.get(key);
    if (p && p.rank < rank) return;
    if (!p || p.rank > rank) {
      p = { rank, ttl, addrs: new Map() };
      this.names.set(key, p);
    }
    p.ttl = Math.min(p.ttl, ttl);
    for (const ip of addrs) {
      const c = canonicalIp(ip);
      p.addrs.set(c.ip, c.v6);
    }
  }

  addPtr(ip: string, target: string, ttl: number): void {
    const owner = reverseName(canonicalIp(ip).ip);
    if (this.ptr.has(owner)) return; // first (deterministic order) wins
    this.ptr.set(owner, encodeRecord(TYPE.PTR, ttl, encodeName(target)));
  }

  build(): NetworkView {
    const names = new Map<string, RecordSet>();
    for (const [key, p] of this.names) {
      const a: Buffer[] = [];
      const aaaa: Buffer[] = [];
      for (const [ip, v6] of p.addrs) {
        const rdata = Uint8Array.from(ipaddr.parse(ip).toByteArray());
        (v6 ? aaaa : a).push(encodeRecord(v6 ? TYPE.AAAA : TYPE.A, p.ttl, rdata));
      }
      names.set(key, { a, aaaa });
    }
    return { names, ptr: this.ptr, subnets: this.subnets };
  }
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
  const views = new Map<string, ViewBuilder>();
  const view = (id: string): ViewBuilder => {
    let v = views.get(id);
    if (!v) views.set(id, (v = new ViewBuilder()));
    return v;
  };
  for (const n of networks) view(n.id).subnets = n.subnets.map(parseSubnet);

  const svcs = [...services].sort(byId);
  const svcById = new Map(svcs.map((s) => [s.id, s]));
  const tasksBySvc = new Map<string, TaskRecord[]>();
  for (const t of [...tasks].sort((x, y) => byId(x, y))) {
    if (!svcById.has(t.serviceId)) continue; // gossip can deliver a task before its service: wait for it
    const list = tasksBySvc.get(t.serviceId) ?? [];
    list.push(t);
    tasksBySvc.set(t.serviceId, list);
  }

  for (const s of svcs) {
    const ts = (tasksBySvc.get(s.id) ?? []).sort((x, y) => String(x.slot).localeCompare(String(y.slot), 'en', { numeric: true }) || byId(x, y));
    const nets = new Set<string>([...s.networks.map((a) => a.network), ...ts.flatMap((t) => t.networks.map((a) => a.network))]);
    for (const net of nets) {
      const v = view(net);
      const att = s.networks.find((a) => a.network === net);
      const taskIps = ts.flatMap((t) => t.networks.filter((a) => a.network === net).flatMap((a) => a.addresses));
      const vipMode = s.mode === 'vip';
      const serviceIps = vipMode ? (att?.vips ?? []) : taskIps;
      const serviceTtl = vipMode ? ttl.vip : ttl.task;
      if (att) {
        v.add(s.name, Rank.Service, serviceTtl, serviceIps);
        for (const alias of att.aliases) v.add(alias, Rank.ServiceAlias, serviceTtl, serviceIps);
        if (vipMode) for (const vip of att.vips) v.addPtr(vip, s.name, ttl.vip);
      }
      v.add(`tasks.${s.name}`, Rank.TasksOf, ttl.task, taskIps);
      for (const t of ts) {
        for (const a of t.networks.filter((x) => x.network === net)) {
          const name = taskName(s.name, t);
          v.add(name, Rank.Task, ttl.task, a.addresses);
          for (const alias of a.aliases) v.add(alias, Rank.TaskAlias, ttl.task, a.addresses);
          for (const ip of a.addresses) v.addPtr(ip, name, ttl.task);
        }
      }
    }
  }
  const out = new Map<string, NetworkView>();
  for (const [id, v] of views) out.set(id, v.build());
  return Object.freeze({ version, networks: out });
}
