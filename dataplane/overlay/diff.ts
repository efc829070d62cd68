// diff(actual, desired) -> steps: what to do to the kernel, by name, in the order it must happen.
// Pure. simulate(state, steps) is the model of what each step does to the kernel; the unit tests
// check simulate(actual, diff(actual, desired)) == desired and diff(x, x) == [].
import type { LinkState, NodeState, NsState, VxlanParams } from './model.js';

export type Step =
  | { op: 'del-host-link'; name: string }
  | { op: 'del-netns'; netns: string }
  | { op: 'add-netns'; netns: string }
  | { op: 'del-link'; netns: string; name: string }
  | { op: 'add-bridge'; netns: string; name: string; mtu: number }
  | { op: 'add-vxlan'; netns: string; name: string; mtu: number; vxlan: VxlanParams }
  | { op: 'add-veth'; netns: string; name: string; mtu: number; peerNetns: string; peerName: string; peerMac?: string }
  | { op: 'set-link'; netns: string; name: string; mtu?: number; up?: boolean; master?: string }
  | { op: 'add-addr' | 'del-addr'; netns: string; name: string; cidr: string }
  | { op: 'add-fdb' | 'del-fdb'; netns: string; dev: string; mac: string; dst: string }
  | { op: 'add-neigh' | 'del-neigh'; netns: string; dev: string; ip: string; mac: string };

export const splitRef = (ref: string): [string, string] => {
  const i = ref.lastIndexOf('/');
  return [ref.slice(0, i), ref.slice(i + 1)];
};

const emptyNs = (owned: boolean): NsState => ({ owned, links: {}, fdb: {}, neigh: {} });

const sameVxlan = (a?: VxlanParams, b?: VxlanParams): boolean =>
  a === b || (!!a && !!b && a.vni === b.vni && a.port === b.port && a.local === b.local && a.learning === b.learning && a.proxy === b.proxy);

/** State of a link right after we create it: down, no master, no addresses. */
function created(d: LinkState): LinkState {
  const l: LinkState = { kind: d.kind, mtu: d.mtu, up: false, addrs: [] };
  if (d.mac !== undefined) l.mac = d.mac;
  if (d.vxlan) l.vxlan = { ...d.vxlan };
  if (d.peer !== undefined) l.peer = d.peer;
  return l;
}

/** Can `a` be adopted as `d` (fixable by set-link/addresses), or must it be replaced? */
function compatible(a: LinkState, d: LinkState): boolean {
  if (a.kind !== d.kind || a.peer !== d.peer) return false;
  if (d.mac !== undefined && a.mac !== d.mac) return false; // setLink cannot change a MAC
  return d.kind !== 'vxlan' || sameVxlan(a.vxlan, d.vxlan); // VNI, port, local, learning are fixed at creation
}

export function diff(actual: NodeState, desired: NodeState): Step[] {
  const steps: Step[] = [];
  for (const name of actual.hostLinks) steps.push({ op: 'del-host-link', name });

  // Stale sandboxes go first: their vxlan devices would clash with new ones on the same VNI.
  for (const [ns, a] of Object.entries(actual.netns)) if (a.owned && !desired.netns[ns]?.owned) steps.push({ op: 'del-netns', netns: ns });
  for (const [ns, d] of Object.entries(desired.netns)) if (d.owned && !actual.netns[ns]) steps.push({ op: 'add-netns', netns: ns });

  // Links to remove: stale (sandboxes only: in a task namespace only the interfaces we manage are
  // ours) or not adoptable. Removing one end of a veth removes the other: "gone" tracks both.
  const gone = new Set<string>();
  const removed = (ns: string, name: string): void => {
    gone.add(`${ns}/${name}`);
    const p = actual.netns[ns]?.links[name]?.peer;
    if (p) gone.add(p);
  };
  const keepable = (ns: string, name: string, a: LinkState): boolean => {
    const d = desired.netns[ns]?.links[name];
    if (!d || !compatible(a, d)) return false;
    // A veth is only as good as its other end: both must be right, or the pair is rebuilt.
    if (d.kind === 'veth' && d.peer) {
      const [pns, pname] = splitRef(d.peer);
      const pa = actual.netns[pns]?.links[pname];
      const pd = desired.netns[pns]?.links[pname];
      if (!pa || !pd || !compatible(pa, pd)) return false;
    }
    return true;
  };
  // A deleted sandbox takes the task ends of its veths with it.
  for (const [ns, a] of Object.entries(actual.netns)) if (a.owned && !desired.netns[ns]?.owned) for (const name of Object.keys(a.links)) removed(ns, name);
  const delLinks: Step[] = [];
  for (const [ns, a] of Object.entries(actual.netns)) {
    const d = desired.netns[ns];
    if (a.owned && !d?.owned) continue; // the whole namespace goes
    for (const [name, l] of Object.entries(a.links)) {
      if (gone.has(`${ns}/${name}`)) continue;
      if (!a.owned && !d?.links[name]) continue;
      if (keepable(ns, name, l)) continue;
      delLinks.push({ op: 'del-link', netns: ns, name });
      removed(ns, name);
    }
  }
  steps.push(...delLinks);

  // Effective state after deletions and creations; later steps are diffs against it.
  const eff = (ns: string, name: string): LinkState | undefined => {
    if (gone.has(`${ns}/${name}`)) return undefined;
    if (actual.netns[ns]?.owned && !desired.netns[ns]?.owned) return undefined;
    return actual.netns[ns]?.links[name];
  };
  const now = new Map<string, LinkState>();
  const creates: Step[] = [];
  for (const [ns, d] of Object.entries(desired.netns)) {
    for (const [name, l] of Object.entries(d.links)) {
      const e = eff(ns, name);
      if (e) { now.set(`${ns}/${name}`, e); continue; }
      if (l.kind === 'bridge') creates.push({ op: 'add-bridge', netns: ns, name, mtu: l.mtu });
      else if (l.kind === 'vxlan' && l.vxlan) creates.push({ op: 'add-vxlan', netns: ns, name, mtu: l.mtu, vxlan: { ...l.vxlan } });
      else if (l.kind === 'veth' && l.peer && d.owned) {
        // Created from the sandbox side, the task end appearing directly in the task namespace
        // with its final name and MAC: no temporary name to leak if we die half-way.
        const [peerNetns, peerName] = splitRef(l.peer);
        const pd = desired.netns[peerNetns]?.links[peerName];
        const s: Step = { op: 'add-veth', netns: ns, name, mtu: l.mtu, peerNetns, peerName };
        if (pd?.mac) s.peerMac = pd.mac;
        creates.push(s);
        now.set(`${ns}/${name}`, created(l));
        if (pd) now.set(l.peer, created(pd));
        continue;
      } else continue; // task ends are made by their sandbox's add-veth
      now.set(`${ns}/${name}`, created(l));
    }
  }
  // Bridges before their ports.
  const rank = (s: Step): number => (s.op === 'add-bridge' ? 0 : s.op === 'add-vxlan' ? 1 : 2);
  steps.push(...creates.sort((a, b) => rank(a) - rank(b)));

  const sets: Step[] = [];
  const addrs: Step[] = [];
  for (const [ns, d] of Object.entries(desired.netns)) {
    for (const [name, l] of Object.entries(d.links)) {
      const e = now.get(`${ns}/${name}`);
      if (!e) continue;
      const s: Extract<Step, { op: 'set-link' }> = { op: 'set-link', netns: ns, name };
      if (e.mtu !== l.mtu) s.mtu = l.mtu;
      if ((e.master ?? '') !== (l.master ?? '') && l.master) s.master = l.master;
      if (e.up !== l.up) s.up = l.up;
      if (s.mtu !== undefined || s.master !== undefined || s.up !== undefined) sets.push(s);
      for (const c of l.addrs) if (!e.addrs.includes(c)) addrs.push({ op: 'add-addr', netns: ns, name, cidr: c });
      for (const c of e.addrs) if (!l.addrs.includes(c)) addrs.push({ op: 'del-addr', netns: ns, name, cidr: c });
    }
  }
  steps.push(...sets, ...addrs);

  // FDB and neighbours, per sandbox, against the vxlan device (fresh when it was just created).
  for (const [ns, d] of Object.entries(desired.netns)) {
    if (!d.owned) continue;
    const dev = Object.entries(d.links).find(([, l]) => l.kind === 'vxlan')?.[0];
    if (!dev) continue;
    const keep = !!eff(ns, dev);
    const a = keep ? actual.netns[ns] : undefined;
    const afdb = a?.fdb ?? {};
    const aneigh = a?.neigh ?? {};
    for (const [mac, dst] of Object.entries(afdb)) if (d.fdb[mac] === undefined) steps.push({ op: 'del-fdb', netns: ns, dev, mac, dst });
    for (const [ip, mac] of Object.entries(aneigh)) if (d.neigh[ip] === undefined) steps.push({ op: 'del-neigh', netns: ns, dev, ip, mac });
    for (const [mac, dst] of Object.entries(d.fdb)) if (afdb[mac] !== dst) steps.push({ op: 'add-fdb', netns: ns, dev, mac, dst });
    for (const [ip, mac] of Object.entries(d.neigh)) if (aneigh[ip] !== mac) steps.push({ op: 'add-neigh', netns: ns, dev, ip, mac });
  }
  return steps;
}

/** What the steps do to a state (the model of the kernel the reconciler relies on). */
export function simulate(state: NodeState, steps: Step[]): NodeState {
  const st: NodeState = structuredClone(state);
  const ns = (name: string): NsState => {
    const n = st.netns[name];
    if (!n) throw new Error(`simulate: no namespace ${name}`);
    return n;
  };
  const link = (n: string, name: string): LinkState => {
    const l = ns(n).links[name];
    if (!l) throw new Error(`simulate: no link ${n}/${name}`);
    return l;
  };
  const dropLink = (n: string, name: string): void => {
    const l = st.netns[n]?.links[name];
    if (!l) return;
    delete ns(n).links[name];
    if (l.kind === 'vxlan') { ns(n).fdb = {}; ns(n).neigh = {}; }
    if (l.peer) {
      const [pns, pname] = splitRef(l.peer);
      if (st.netns[pns]?.links[pname]?.peer === `${n}/${name}`) delete ns(pns).links[pname];
    }
  };
  for (const s of steps) {
    switch (s.op) {
      case 'del-host-link': st.hostLinks = st.hostLinks.filter((h) => h !== s.name); break;
      case 'del-netns': {
        // Destroying a namespace destroys its veths, and so their other ends.
        for (const name of Object.keys(ns(s.netns).links)) dropLink(s.netns, name);
        delete st.netns[s.netns];
        break;
      }
      case 'add-netns':
        if (st.netns[s.netns]) throw new Error(`simulate: namespace ${s.netns} exists`);
        st.netns[s.netns] = emptyNs(true);
        break;
      case 'del-link': link(s.netns, s.name); dropLink(s.netns, s.name); break;
      case 'add-bridge':
      case 'add-vxlan':
      case 'add-veth': {
        if (ns(s.netns).links[s.name]) throw new Error(`simulate: ${s.netns}/${s.name} exists (EEXIST)`);
        const l: LinkState = { kind: s.op.slice(4), mtu: s.mtu, up: false, addrs: [] };
        if (s.op === 'add-vxlan') {
          // entries live on the device: a new one starts empty
          l.vxlan = { ...s.vxlan };
          ns(s.netns).fdb = {};
          ns(s.netns).neigh = {};
        }
        if (s.op === 'add-veth') {
          if (ns(s.peerNetns).links[s.peerName]) throw new Error(`simulate: ${s.peerNetns}/${s.peerName} exists (EEXIST)`);
          l.peer = `${s.peerNetns}/${s.peerName}`;
          const p: LinkState = { kind: 'veth', mtu: s.mtu, up: false, addrs: [], peer: `${s.netns}/${s.name}` };
          if (s.peerMac) p.mac = s.peerMac;
          ns(s.peerNetns).links[s.peerName] = p;
        }
        ns(s.netns).links[s.name] = l;
        break;
      }
      case 'set-link': {
        const l = link(s.netns, s.name);
        if (s.mtu !== undefined) l.mtu = s.mtu;
        if (s.up !== undefined) l.up = s.up;
        if (s.master !== undefined) { link(s.netns, s.master); l.master = s.master; }
        break;
      }
      case 'add-addr': { const l = link(s.netns, s.name); if (!l.addrs.includes(s.cidr)) l.addrs = [...l.addrs, s.cidr].sort(); break; }
      case 'del-addr': { const l = link(s.netns, s.name); l.addrs = l.addrs.filter((c) => c !== s.cidr); break; }
      case 'add-fdb': link(s.netns, s.dev); ns(s.netns).fdb[s.mac] = s.dst; break;
      case 'del-fdb': delete ns(s.netns).fdb[s.mac]; break;
      case 'add-neigh': link(s.netns, s.dev); ns(s.netns).neigh[s.ip] = s.mac; break;
      case 'del-neigh': delete ns(s.netns).neigh[s.ip]; break;
    }
  }
  return st;
}
