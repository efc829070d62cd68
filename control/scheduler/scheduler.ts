// The scheduler: a pure function from (nodes, tasks, services, node capacity) to placement decisions.
//
// API (the leader calls this whenever tasks or nodes change, e.g. debounced on store events):
//   const d = schedule({ nodes, tasks, services, capacity });    // no I/O, no clock
//   const ops = decisionsToOps(d, tasksById, new Date().toISOString());
//   propose({ ops })                                             // CAS on each task's meta.version
//
// Which tasks: desiredState running, status new or pending.
//   - without nodeId (replicated): placed by filters + spread;
//   - with nodeId (global, chosen by the orchestrator): only checked against that node's filters.
// Filters, in order (the first a node fails is the one counted in a pending reason):
//   1. node ready and availability active (pause and drain take no new tasks);
//   2. placement constraints (node.id, node.hostname, node.role, node.labels.KEY; == and !=);
//   3. resource reservations (nanoCpus, memoryBytes) against `capacity` (absent: unlimited);
//   4. host-mode published ports (one task per port/protocol per node).
// Then spread: preferences (spread=node.labels.KEY) level by level, then fewest tasks of the service on
// the node, then fewest tasks overall, then node id. Deterministic: the same input gives the same output.
//
// Cost: O(tasks log tasks) to group and sort, then per group O(nodes) to filter and build the heaps, and
// O(log nodes) per task placed.
import type { NodeObject, ServiceObject, TaskObject } from '../store/objects.js';
import { ConstraintError, firstUnmet, parseConstraints, type Constraint } from './constraint.js';
import {
  account, availableForNewTasks, fits, hostPortsByService, newNodeInfo, occupiesNode, unavailableWhy,
  type NodeInfo, type NodeResources,
} from './node-info.js';
import { PlacementTree } from './placement-tree.js';

export type { NodeResources } from './node-info.js';

export interface ScheduleInput {
  nodes: readonly NodeObject[];
  tasks: readonly TaskObject[];
  /** for host-mode published ports (endpoint.ports with mode host); optional */
  services?: readonly ServiceObject[];
  /** node id -> capacity; nodes not in the map are unlimited */
  capacity?: ReadonlyMap<string, NodeResources>;
}

export interface Assignment {
  taskId: string;
  nodeId: string;
}

export interface Unplaced {
  taskId: string;
  /** e.g. "no suitable node (3 nodes not available for new tasks, 2 nodes did not satisfy constraint node.labels.zone==a)" */
  reason: string;
}

export interface ScheduleDecisions {
  assigned: Assignment[];
  pending: Unplaced[];
}

/** Is this task the scheduler's to place (or, with a nodeId, to check)? */
export function isSchedulable(t: TaskObject): boolean {
  return t.desiredState === 'running' && (t.status.state === 'new' || t.status.state === 'pending');
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

// Tasks of one service with the same placement and reservations are interchangeable: filter the nodes
// once per group. Keyed by the spec's JSON, cached per spec object (tasks often share one in memory).
const specKeys = new WeakMap<object, string>();
function groupKey(t: TaskObject): string {
  let k = specKeys.get(t.spec);
  if (k === undefined) {
    k = JSON.stringify([t.spec.placement.constraints, t.spec.placement.preferences, t.spec.resources ?? null]);
    specKeys.set(t.spec, k);
  }
  return `${t.serviceId}\u0000${k}`;
}

const byServiceSlotId = (a: TaskObject, b: TaskObject): number =>
  a.serviceId < b.serviceId ? -1 : a.serviceId > b.serviceId ? 1 : a.slot !== b.slot ? a.slot - b.slot : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

export function schedule(input: ScheduleInput): ScheduleDecisions {
  const infos = new Map<string, NodeInfo>();
  const nodes = [...input.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const n of nodes) infos.set(n.id, newNodeInfo(n, input.capacity?.get(n.id)));
  const portsOf = hostPortsByService(input.services);

  const free: TaskObject[] = [];
  const preassigned: TaskObject[] = [];
  for (const t of input.tasks) {
    if (isSchedulable(t)) (t.nodeId === undefined ? free : preassigned).push(t);
    else if (occupiesNode(t)) {
      const info = infos.get(t.nodeId!);
      if (info) account(info, t, portsOf.get(t.serviceId));
    }
  }

  const out: ScheduleDecisions = { assigned: [], pending: [] };
  preassigned.sort(byServiceSlotId);
  for (const t of preassigned) checkPreassigned(t, infos, portsOf.get(t.serviceId), out);

  free.sort(byServiceSlotId);
  const groups = new Map<string, TaskObject[]>();
  for (const t of free) {
    const k = groupKey(t);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(t);
  }
  for (const g of groups.values()) placeGroup(g, nodes, infos, portsOf.get(g[0]!.serviceId), out);
  return out;
}

function checkPreassigned(t: TaskObject, infos: Map<string, NodeInfo>, ports: readonly string[] | undefined, out: ScheduleDecisions): void {
  const nodeId = t.nodeId!;
  const info = infos.get(nodeId);
  const pending = (why: string): void => void out.pending.push({ taskId: t.id, reason: why });
  if (!info) return pending(`node ${nodeId} not found`);
  if (!availableForNewTasks(info.node)) return pending(`node ${nodeId} not available for new tasks (${unavailableWhy(info.node)})`);
  let cs: Constraint[];
  try {
    cs = parseConstraints(t.spec.placement.constraints);
  } catch (e) {
    return pending((e as ConstraintError).message);
  }
  const unmet = firstUnmet(cs, info.node);
  if (unmet) return pending(`node ${nodeId} did not satisfy constraint ${unmet.text}`);
  const f = fits(info, t, ports);
  if (f) return pending(f.kind === 'resources' ? `insufficient resources (${f.what}) on node ${nodeId}` : `host-mode port ${f.port} already in use on node ${nodeId}`);
  account(info, t, ports);
  out.assigned.push({ taskId: t.id, nodeId });
}

function placeGroup(
  group: TaskObject[],
  nodes: readonly NodeObject[],
  infos: Map<string, NodeInfo>,
  ports: readonly string[] | undefined,
  out: ScheduleDecisions,
): void {
  const first = group[0]!;
  let cs: Constraint[];
  try {
    cs = parseConstraints(first.spec.placement.constraints);
  } catch (e) {
    const reason = (e as ConstraintError).message;
    for (const t of group) out.pending.push({ taskId: t.id, reason });
    return;
  }
  // Static filters once per group; the dynamic ones (resources, ports) are checked as nodes are popped.
  const eligible: NodeInfo[] = [];
  for (const n of nodes) if (availableForNewTasks(n) && !firstUnmet(cs, n)) eligible.push(infos.get(n.id)!);
  const labels = first.spec.placement.preferences.map((p) => p.spread.replace(/^node\.labels\./, ''));
  const tree = new PlacementTree(eligible, first.serviceId, labels);
  let i = 0;
  for (; i < group.length; i++) {
    const t = group[i]!;
    const n = tree.place(t, ports);
    if (!n) break;
    out.assigned.push({ taskId: t.id, nodeId: n.node.id });
  }
  if (i < group.length) {
    const reason = explain(first, cs, nodes, infos, ports);
    for (; i < group.length; i++) out.pending.push({ taskId: group[i]!.id, reason });
  }
}

/** Why no node takes the task: each node counted under the first filter it fails, swarmkit-style. */
export function explain(
  t: TaskObject,
  cs: readonly Constraint[],
  nodes: readonly NodeObject[],
  infos: ReadonlyMap<string, NodeInfo>,
  ports: readonly string[] | undefined,
): string {
  if (nodes.length === 0) return 'no suitable node (no nodes in the cluster)';
  let unavailable = 0;
  const unmet = new Map<string, number>();
  const resources = new Map<string, number>();
  const portsInUse = new Map<string, number>();
  for (const n of nodes) {
    if (!availableForNewTasks(n)) {
      unavailable++;
      continue;
    }
    const c = firstUnmet(cs, n);
    if (c) {
      unmet.set(c.text, (unmet.get(c.text) ?? 0) + 1);
      continue;
    }
    const f = fits(infos.get(n.id)!, t, ports);
    if (f?.kind === 'resources') resources.set(f.what, (resources.get(f.what) ?? 0) + 1);
    else if (f?.kind === 'port') portsInUse.set(f.port, (portsInUse.get(f.port) ?? 0) + 1);
  }
  const parts: string[] = [];
  if (unavailable) parts.push(`${plural(unavailable, 'node', 'nodes')} not available for new tasks`);
  for (const [c, k] of unmet) parts.push(`${plural(k, 'node', 'nodes')} did not satisfy constraint ${c}`);
  for (const [w, k] of resources) parts.push(`${plural(k, 'node', 'nodes')} had insufficient resources (${w})`);
  for (const [p, k] of portsInUse) parts.push(`${plural(k, 'node', 'nodes')} had host-mode port ${p} in use`);
  return `no suitable node (${parts.join(', ')})`;
}
