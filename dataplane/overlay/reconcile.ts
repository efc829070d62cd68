// Reconciler: observe the kernel, diff against the desired state, apply the difference.
// Structural steps (namespaces, devices, veths) go one by one in diff order; then per namespace
// one batch of link settings and addresses, then per sandbox one batch of FDB and neighbour
// entries. Nothing to do means nothing written: the result counts netlink messages written.
import { createNetns, deleteNetns, Rtnl, NetlinkError, type Change } from '../netlink/index.js';
import { diff, type Step } from './diff.js';
import type { NodeState } from './model.js';
import { observe } from './observe.js';
import { createVxlanInto } from './vxlan.js';

export { diff, simulate, type Step } from './diff.js';

export interface ReconcileOptions {
  /** prefix of our kernel objects (sandboxes are "<prefix>-ov-<vni>") */
  prefix: string;
  /** namespace of the underlay (where VXLAN sockets live); default: the one meshd runs in */
  underlayNetns?: string;
  /**
   * Task namespaces whose interfaces are known to match the desired state (applied by an earlier
   * pass, nothing changed since): taken as desired instead of dumped, so a pass costs O(sandboxes),
   * not O(tasks). The caller re-observes everything now and then to catch drift.
   */
  trusted?: ReadonlySet<string>;
}

export interface ReconcileResult {
  steps: Step[];
  /** netlink messages written (dumps excluded) */
  writes: number;
  /** namespaces created or deleted */
  netnsOps: number;
  /** failed steps; the rest were applied */
  errors: Error[];
  ms: number;
}

const isGone = (e: unknown): boolean => e instanceof NetlinkError && (e.code === 'ENODEV' || e.code === 'ENOENT');

export function reconcile(desired: NodeState, opts: ReconcileOptions): ReconcileResult {
  const t0 = performance.now();
  const host = Rtnl.open(opts.underlayNetns);
  const open = new Map<string, Rtnl>();
  let writes = 0;
  let netnsOps = 0;
  const errors: Error[] = [];
  const rtnl = (ns: string): Rtnl => {
    let r = open.get(ns);
    if (!r) {
      r = Rtnl.open(ns);
      open.set(ns, r);
    }
    return r;
  };
  const closeNs = (ns: string): void => {
    const r = open.get(ns);
    if (!r) return;
    writes += r.writes;
    r.close();
    open.delete(ns);
  };
  const attempt = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      errors.push(e instanceof Error ? e : new Error(String(e)));
    }
  };
  let result: ReconcileResult;
  try {
    const trusted = opts.trusted ?? new Set<string>();
    const taskNetns = Object.entries(desired.netns).filter(([k, n]) => !n.owned && !trusted.has(k)).map(([k]) => k);
    const actual = observe({ prefix: opts.prefix, host, taskNetns, open: rtnl });
    for (const ns of trusted) {
      const want = desired.netns[ns];
      if (want && !want.owned) actual.state.netns[ns] = structuredClone(want);
    }
    // Veth ends that observe() could not pair by searching (ifindexes repeat between namespaces, so
    // several candidates can match) are checked against the pair the desired state names: both ends
    // must point at each other. Ends into trusted namespaces count as paired if they have a peer.
    for (const [sbx, st] of Object.entries(actual.state.netns)) {
      if (!st.owned) continue;
      const raw = new Map((actual.links.get(sbx) ?? []).map((l) => [l.name, l]));
      for (const [name, l] of Object.entries(st.links)) {
        const want = desired.netns[sbx]?.links[name]?.peer;
        const mine = raw.get(name);
        if (l.kind !== 'veth' || l.peer || !want || mine?.peerIndex === undefined) continue;
        const peerNs = want.slice(0, want.lastIndexOf('/'));
        const peerIf = want.slice(want.lastIndexOf('/') + 1);
        if (trusted.has(peerNs)) {
          l.peer = want;
          continue;
        }
        const other = (actual.links.get(peerNs) ?? []).find((x) => x.name === peerIf);
        const otherState = actual.state.netns[peerNs]?.links[peerIf];
        if (other && otherState && mine.peerIndex === other.index && other.peerIndex === mine.index) {
          l.peer = want;
          otherState.peer = `${sbx}/${name}`;
        }
      }
    }
    const steps = diff(actual.state, desired);

    const linkSteps = new Map<string, Step[]>();
    const neighSteps = new Map<string, Step[]>();
    const queue = (m: Map<string, Step[]>, ns: string, s: Step): void => void (m.get(ns) ?? m.set(ns, []).get(ns)!).push(s);
    for (const s of steps) {
      switch (s.op) {
        case 'del-host-link':
          attempt(() => { try { host.applyOrThrow([{ op: 'del-link', name: s.name }]); } catch (e) { if (!isGone(e)) throw e; } });
          break;
        case 'del-netns':
          attempt(() => {
            // Delete the devices first: namespace teardown is asynchronous in the kernel, and a
            // lingering vxlan device would make re-creating the same VNI fail with EEXIST.
            const r = rtnl(s.netns);
            const doomed = r.links().filter((l) => l.name !== 'lo');
            if (doomed.length) r.apply(doomed.map((l): Change => ({ op: 'del-link', index: l.index, name: l.name })));
            closeNs(s.netns);
            deleteNetns(s.netns);
            netnsOps++;
          });
          break;
        case 'add-netns':
          attempt(() => { createNetns(s.netns); netnsOps++; });
          break;
        case 'del-link':
          // ENODEV: it went with its other end (a veth pair), which is what we wanted.
          attempt(() => { try { rtnl(s.netns).applyOrThrow([{ op: 'del-link', name: s.name }]); } catch (e) { if (!isGone(e)) throw e; } });
          break;
        case 'add-bridge':
          attempt(() => rtnl(s.netns).createBridge(s.name, { mtu: s.mtu }));
          break;
        case 'add-vxlan':
          attempt(() => createVxlanInto(host, s.netns, s.name, s.mtu, s.vxlan));
          break;
        case 'add-veth':
          attempt(() => {
            const spec = { name: s.name, peerName: s.peerName, peerNetns: s.peerNetns, mtu: s.mtu, ...(s.peerMac ? { peerMac: s.peerMac } : {}) };
            rtnl(s.netns).createVeth(spec);
          });
          break;
        case 'set-link': case 'add-addr': case 'del-addr':
          queue(linkSteps, s.netns, s);
          break;
        case 'add-fdb': case 'del-fdb': case 'add-neigh': case 'del-neigh':
          queue(neighSteps, s.netns, s);
          break;
      }
    }
    for (const m of [linkSteps, neighSteps]) {
      for (const [ns, ss] of m) {
        attempt(() => {
          const r = rtnl(ns);
          // Fresh indexes: the structural steps above may have created or replaced devices.
          const idx = new Map(r.links().map((l) => [l.name, l.index]));
          const index = (name: string): number => {
            const i = idx.get(name);
            if (i === undefined) throw new NetlinkError('find link', `${name} in netns ${ns}`, 19);
            return i;
          };
          const changes = ss.map((s) => toChange(s, index));
          errors.push(...r.apply(changes).errors);
        });
      }
    }
    result = { steps, writes: 0, netnsOps, errors, ms: 0 };
  } finally {
    for (const ns of [...open.keys()]) closeNs(ns);
    writes += host.writes;
    host.close();
  }
  result.writes = writes;
  result.netnsOps = netnsOps;
  result.ms = performance.now() - t0;
  return result;
}

function toChange(s: Step, index: (name: string) => number): Change {
  switch (s.op) {
    case 'set-link': {
      const c: Change = { op: 'set-link', index: index(s.name) };
      if (s.mtu !== undefined) c.mtu = s.mtu;
      if (s.up !== undefined) c.up = s.up;
      if (s.master !== undefined) c.master = index(s.master);
      return c;
    }
    case 'add-addr': case 'del-addr':
      return { op: s.op, index: index(s.name), cidr: s.cidr };
    case 'add-fdb': case 'del-fdb':
      return { op: s.op, entry: { index: index(s.dev), mac: s.mac, dst: s.dst } };
    case 'add-neigh': case 'del-neigh':
      return { op: s.op, entry: { index: index(s.dev), ip: s.ip, mac: s.mac } };
    default:
      throw new Error(`${s.op} is not a batched step`);
  }
}
