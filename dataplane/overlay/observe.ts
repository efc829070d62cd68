// What the kernel holds, in the model's shape (./model): every sandbox namespace with our prefix,
// and the interfaces of the task namespaces we were told about. Reads only (dumps): no writes.
import { C, Rtnl, listNetns, netnsExists, type Link } from '../netlink/index.js';
import type { LinkState, NodeState, NsState } from './model.js';
import { vxlanProxyFlags } from './vxlan.js';

export interface Observed {
  state: NodeState;
  /** the raw links per namespace, by name (the applier resolves names to ifindexes from these) */
  links: Map<string, Link[]>;
}

export const sandboxPrefix = (prefix: string): string => `${prefix}-ov-`;

export interface ObserveOptions {
  prefix: string;
  host: Rtnl;
  /** task namespaces whose interfaces we manage (from the desired state) */
  taskNetns: string[];
  open(netns: string): Rtnl;
}

export function observe(o: ObserveOptions): Observed {
  const state: NodeState = { netns: {}, hostLinks: [] };
  const links = new Map<string, Link[]>();
  // Only vxlan devices with our prefix: other prefixed host objects (egress bridge...) are not ours here.
  state.hostLinks = o.host.links().filter((l) => l.kind === 'vxlan' && l.name.startsWith(`${o.prefix}-`)).map((l) => l.name);

  const sandboxes = listNetns().filter((n) => n.startsWith(sandboxPrefix(o.prefix)) && netnsExists(n));
  for (const ns of sandboxes) state.netns[ns] = readNs(o.open(ns), true, links);
  for (const ns of o.taskNetns) if (!state.netns[ns] && netnsExists(ns)) state.netns[ns] = readNs(o.open(ns), false, links);

  // Pair veth ends across namespaces: an end's peerIndex is an ifindex in another namespace, and
  // ifindexes repeat between namespaces, so a pair counts only when both ends name each other.
  const ends = [...links.entries()].flatMap(([ns, ls]) => ls.filter((l) => l.kind === 'veth' && l.peerIndex !== undefined).map((l) => ({ ns, l })));
  for (const a of ends) {
    if (!state.netns[a.ns]?.owned) continue;
    const matches = ends.filter((b) => b.ns !== a.ns && b.l.index === a.l.peerIndex && b.l.peerIndex === a.l.index);
    // Ambiguous (same index pair in two namespaces): left unpaired, so the diff rebuilds the pair.
    const b = matches.length === 1 ? matches[0] : undefined;
    if (!b) continue;
    const la = state.netns[a.ns]?.links[a.l.name];
    const lb = state.netns[b.ns]?.links[b.l.name];
    if (la && lb) {
      la.peer = `${b.ns}/${b.l.name}`;
      lb.peer = `${a.ns}/${a.l.name}`;
    }
  }
  return { state, links };
}

function readNs(r: Rtnl, owned: boolean, out: Map<string, Link[]>): NsState {
  const ls = r.links().filter((l) => l.name !== 'lo');
  out.set(r.netns ?? '', ls);
  const byIndex = new Map(ls.map((l) => [l.index, l.name]));
  const addrs = r.addresses().filter((a) => a.family === C.AF_INET);
  const proxy = ls.some((l) => l.kind === 'vxlan') ? vxlanProxyFlags(r) : new Map<number, boolean>();
  const st: NsState = { owned, links: {}, fdb: {}, neigh: {} };
  for (const l of ls) {
    const s: LinkState = {
      kind: l.kind ?? 'unknown',
      mtu: l.mtu,
      up: l.up,
      addrs: addrs.filter((a) => a.index === l.index).map((a) => `${a.address}/${a.prefixLen}`).sort(),
    };
    if (l.mac) s.mac = l.mac;
    const master = l.master === undefined ? undefined : byIndex.get(l.master);
    if (master) s.master = master;
    if (l.vxlan) s.vxlan = { vni: l.vxlan.vni, port: l.vxlan.port, local: l.vxlan.local ?? '', learning: l.vxlan.learning, proxy: proxy.get(l.index) ?? false };
    st.links[l.name] = s;
  }
  if (owned) {
    const vx = ls.find((l) => l.kind === 'vxlan');
    if (vx) {
      // Ours are the permanent entries with a remote VTEP on the vxlan device itself; the bridge's
      // own (learned, or its ports' local MACs) are not.
      for (const e of r.fdb(vx.index)) if (e.self && e.permanent && e.dst && e.mac !== '00:00:00:00:00:00') st.fdb[e.mac] = e.dst;
      for (const n of r.neighbors(C.AF_INET, vx.index)) if (n.permanent && n.mac) st.neigh[n.ip] = n.mac;
    }
  }
  return st;
}
