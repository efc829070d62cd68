// The allocation pass: networks, published ports, service VIPs and task addresses -> store ops.
//
// API (the leader runs it on store changes to networks, services and tasks, before the scheduler, so
// that tasks carry their addresses when they are placed):
//   const r = allocate({ networks, services, tasks });        // pure: no I/O, no clock
//   if (r.ops.length) propose({ requestId, at, ops: r.ops });   // CAS on each object's meta.version
//   r.errors -> service/network/task status messages (exhausted pools, clashes, unknown networks)
//
// State never drifts because there is none: which addresses are held is derived from the objects every
// pass (the networks' gateways, the services' VIPs, the addresses of tasks that may still be using
// them). An address is given out again only when no object holds it: when its task is deleted or has
// stopped for good (complete/failed/shutdown/rejected; an orphaned task's node may be partitioned and
// still running it, so it keeps its addresses), when its service is deleted or leaves the network, or
// when the service switches to dnsrr. New addresses are the lowest free ones, in id order, so the same
// input always gives the same output, and a pass over its own output returns no ops.
import { allocateNetworks, bare, type NetPlan } from './networks.js';
import { allocatePorts } from './ports.js';
import { DEFAULT_CONFIG, type AllocationError, type AllocatorConfig, type AllocatorOp, type AllocService, type EndpointVip, type NetworkObject, type Versioned } from './types.js';
import type { NodeObject, TaskObject, TaskState } from '../store/objects.js';

export interface AllocateInput {
  networks: readonly Versioned<NetworkObject>[];
  services: readonly Versioned<AllocService>[];
  tasks: readonly Versioned<TaskObject>[];
  /** nodes get their address on the ingress network (their ingress sandbox) */
  nodes?: readonly Versioned<NodeObject>[];
  config?: Partial<AllocatorConfig>;
}

export interface AllocateResult {
  ops: AllocatorOp[];
  errors: AllocationError[];
}

const RELEASED: ReadonlySet<TaskState> = new Set(['complete', 'failed', 'shutdown', 'rejected']);
/** Not started yet: it can still be given an interface it did not have (ingress, after a publish). */
const UNSTARTED: ReadonlySet<TaskState> = new Set(['new', 'pending', 'assigned']);

/** Does the task hold its addresses? Everything but a task known to have stopped. */
export function holdsAddresses(t: TaskObject): boolean {
  return !RELEASED.has(t.status.state);
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function allocate(input: AllocateInput): AllocateResult {
  const config: AllocatorConfig = { ...DEFAULT_CONFIG, ...input.config };
  const nets = allocateNetworks(input.networks, config);
  const ops: AllocatorOp[] = [...nets.ops];
  const errors: AllocationError[] = [...nets.errors];

  // targets are network ids or names (the CLI passes names); ids win
  const byName = new Map<string, Versioned<NetworkObject>>();
  for (const n of [...input.networks].sort(byId)) if (!byName.has(n.spec.name)) byName.set(n.spec.name, n);
  const known = (target: string): NetworkObject | undefined => input.networks.find((n) => n.id === target) ?? byName.get(target);
  const idOf = new Map<string, string | undefined>();
  const resolve = (target: string): string | undefined => {
    if (!idOf.has(target)) idOf.set(target, known(target)?.id);
    return idOf.get(target);
  };
  const ingress = [...nets.plans.values()].find((p) => p.net.spec.ingress === true);

  const services = [...input.services].sort(byId);
  const ports = allocatePorts(services, config);
  errors.push(...ports.errors);

  // the networks each service is on (ids of allocated networks), and unknown/unallocated targets
  const serviceNets = new Map<string, string[]>();
  for (const s of services) {
    const ids: string[] = [];
    for (const n of s.spec.networks) {
      const id = resolve(n.target);
      if (id === undefined) errors.push({ kind: 'service', id: s.id, field: 'networks', message: `network "${n.target}" not found` });
      else if (!nets.plans.has(id)) errors.push({ kind: 'service', id: s.id, field: 'networks', message: `network "${n.target}" has no addresses yet (see its errors)` });
      else if (!ids.includes(id)) ids.push(id);
    }
    if ((ports.owned.get(s.id) ?? []).length > 0) {
      if (!ingress) errors.push({ kind: 'service', id: s.id, field: 'endpoint.ports', message: 'ports published in ingress mode need the ingress network, which does not exist' });
      else if (!ids.includes(ingress.net.id)) ids.push(ingress.net.id);
    }
    serviceNets.set(s.id, ids);
  }

  const tasks = [...input.tasks].sort(byId);
  const taskErr = (t: TaskObject, message: string): void => void errors.push({ kind: 'task', id: t.id, field: 'networks', message });

  // 1. reserve what live tasks hold; an address held twice (a corrupt store) goes to the first by id,
  //    the other task is given a new one and the clash reported
  const redo = new Map<string, Map<number, Set<string>>>(); // task id -> entry index -> addresses that clashed
  for (const t of tasks) {
    if (!holdsAddresses(t)) continue;
    t.networks.forEach((e, i) => {
      if (e.addresses.length === 0) return;
      const id = resolve(e.network);
      const plan = id === undefined ? undefined : nets.plans.get(id);
      if (!plan) return; // its network is gone (or broken): nothing to hold there
      for (const a of e.addresses) {
        const why = plan.space.reserve(a);
        if (why) {
          taskErr(t, `address on network "${plan.net.spec.name}": ${why}; reallocating`);
          let r = redo.get(t.id);
          if (!r) redo.set(t.id, (r = new Map()));
          let bad = r.get(i);
          if (!bad) r.set(i, (bad = new Set()));
          bad.add(a);
        }
      }
    });
  }

  // 1b. reserve the nodes' ingress addresses (a clash: the later node by id gets a new one)
  const nodes = [...(input.nodes ?? [])].sort(byId);
  const nodeRedo = new Set<string>();
  if (ingress) {
    for (const n of nodes) {
      if (n.ingressAddr === undefined) continue;
      const why = ingress.space.reserve(n.ingressAddr);
      if (why) nodeRedo.add(n.id);
    }
  }

  // 2. reserve the VIPs services keep (on networks they are still on, VIP mode only)
  const vips = new Map<string, EndpointVip[]>();
  for (const s of services) {
    const want = s.spec.endpoint.mode === 'vip' ? serviceNets.get(s.id)! : [];
    const keep: EndpointVip[] = [];
    for (const v of s.endpointVips ?? []) {
      if (!want.includes(v.network) || keep.some((k) => k.network === v.network)) continue;
      const why = nets.plans.get(v.network)!.space.reserve(v.addr);
      if (why) errors.push({ kind: 'service', id: s.id, field: 'endpointVips', message: `VIP on network "${nets.plans.get(v.network)!.net.spec.name}": ${why}; reallocating` });
      else keep.push(v);
    }
    vips.set(s.id, keep);
  }

  const exhausted = (plan: NetPlan): string => `no free address on network "${plan.net.spec.name}" (${plan.net.allocated?.subnet ?? ''}${plan.range ? `, ip-range ${plan.net.spec.ipRange ?? ''}` : ''}): the subnet is exhausted`;

  // 3. new VIPs
  for (const s of services) {
    if (s.spec.endpoint.mode !== 'vip') {
      vips.set(s.id, []);
      continue;
    }
    const keep = vips.get(s.id)!;
    const next: EndpointVip[] = [];
    for (const id of serviceNets.get(s.id)!) {
      const have = keep.find((v) => v.network === id);
      if (have) {
        next.push(have);
        continue;
      }
      const plan = nets.plans.get(id)!;
      const addr = plan.space.take();
      if (addr === undefined) errors.push({ kind: 'service', id: s.id, field: 'networks', message: `VIP: ${exhausted(plan)}` });
      else next.push({ network: id, addr });
    }
    vips.set(s.id, next);
  }
  for (const s of services) {
    const next: AllocService = { ...bare(s) };
    const v = vips.get(s.id)!;
    const p = ports.owned.get(s.id)!;
    if (v.length) next.endpointVips = v;
    else delete next.endpointVips;
    if (p.length) next.endpointPorts = p;
    else delete next.endpointPorts;
    if (same(next.endpointVips ?? [], s.endpointVips ?? []) && same(next.endpointPorts ?? [], s.endpointPorts ?? [])) continue;
    const op: AllocatorOp = { op: 'update', kind: 'service', object: next };
    if (s.meta) op.version = s.meta.version;
    ops.push(op);
  }

  // 4. task addresses: one per network the task is on, for tasks that are to run
  const svc = new Map(services.map((s) => [s.id, s]));
  for (const t of tasks) {
    if (!holdsAddresses(t) || t.desiredState !== 'running' || (!svc.has(t.serviceId) && !t.attachment)) continue;
    const r = redo.get(t.id);
    const addIngress = ingress !== undefined && UNSTARTED.has(t.status.state) && (ports.owned.get(t.serviceId) ?? []).length > 0 &&
      !t.networks.some((e) => resolve(e.network) === ingress.net.id);
    // the common case in a steady pass: nothing to do, and no copy made
    if (!r && !addIngress && t.networks.every((e) => e.addresses.length > 0)) continue;
    const entries = t.networks.map((e) => ({ ...e, addresses: [...e.addresses] }));
    if (addIngress) entries.push({ network: ingress.net.id, addresses: [] });
    let changed = entries.length !== t.networks.length;
    entries.forEach((e, i) => {
      if (e.addresses.length > 0 && !r?.has(i)) return;
      const id = resolve(e.network);
      const plan = id === undefined ? undefined : nets.plans.get(id);
      if (!plan) {
        taskErr(t, id === undefined ? `network "${e.network}" not found` : `network "${e.network}" has no addresses yet`);
        return;
      }
      // keep the addresses that did reserve; replace the ones that clashed
      const bad = r?.get(i);
      const ok = bad ? e.addresses.filter((a) => !bad.has(a)) : [];
      const addr = ok.length ? undefined : plan.space.take();
      if (!ok.length && addr === undefined) {
        taskErr(t, exhausted(plan));
        return;
      }
      e.addresses = ok.length ? ok : [addr!];
      changed = true;
    });
    if (!changed) continue;
    const op: AllocatorOp = { op: 'update', kind: 'task', object: { ...bare(t), networks: entries } };
    if (t.meta) op.version = t.meta.version;
    ops.push(op);
  }

  // 5. node ingress addresses (after tasks: a node's address is the least urgent)
  if (ingress) {
    for (const n of nodes) {
      if (n.ingressAddr !== undefined && !nodeRedo.has(n.id)) continue;
      const addr = ingress.space.take();
      if (addr === undefined) {
        errors.push({ kind: 'node', id: n.id, field: 'ingressAddr', message: `node address: ${exhausted(ingress)}` });
        continue;
      }
      const op: AllocatorOp = { op: 'update', kind: 'node', object: { ...bare(n), ingressAddr: addr } };
      if (n.meta) op.version = n.meta.version;
      ops.push(op);
    }
  }
  return { ops, errors };
}
