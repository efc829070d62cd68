// What the scheduler knows about each node while it places tasks: counts and reservations kept up to
// date as tasks are placed, so that choosing a node never rescans the task list.
import type { NodeObject, ServiceObject, TaskObject } from '../store/objects.js';
import { isTerminal } from '../orchestrator/task-states.js';

/** A node's capacity; a missing dimension (or a missing entry for the node) is unlimited. */
export interface NodeResources {
  nanoCpus?: number;
  memoryBytes?: number;
}

export interface NodeInfo {
  node: NodeObject;
  capacity: NodeResources | undefined;
  /** reservations of the node's live tasks (any desired state: a stopping task still holds them) */
  nanoCpus: number;
  memoryBytes: number;
  /** live tasks desired running, all services */
  total: number;
  /** live tasks desired running, per service */
  byService: Map<string, number>;
  /** host-mode published ports in use, as "8080/tcp" */
  ports: Set<string>;
}

export function newNodeInfo(node: NodeObject, capacity: NodeResources | undefined): NodeInfo {
  return { node, capacity, nanoCpus: 0, memoryBytes: 0, total: 0, byService: new Map(), ports: new Set() };
}

/** Host-mode published ports per service, as "8080/tcp". Ingress ports are the allocator's business. */
export function hostPortsByService(services: readonly ServiceObject[] | undefined): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of services ?? []) {
    const ports = s.spec.endpoint.ports.filter((p) => p.mode === 'host' && p.published > 0).map((p) => `${p.published}/${p.protocol}`);
    if (ports.length) m.set(s.id, ports);
  }
  return m;
}

/** Counts a task (already on, or just placed on, this node) into the node's figures. */
export function account(info: NodeInfo, t: TaskObject, ports: readonly string[] | undefined): void {
  info.nanoCpus += t.spec.resources?.nanoCpus ?? 0;
  info.memoryBytes += t.spec.resources?.memoryBytes ?? 0;
  for (const p of ports ?? []) info.ports.add(p);
  if (t.desiredState === 'running') {
    info.total++;
    info.byService.set(t.serviceId, (info.byService.get(t.serviceId) ?? 0) + 1);
  }
}

/** Does the task occupy its node (resources, ports, counts)? Terminal tasks free everything. */
export function occupiesNode(t: TaskObject): boolean {
  return t.nodeId !== undefined && !isTerminal(t.status.state);
}

export type FitFailure = { kind: 'resources'; what: string } | { kind: 'port'; port: string };

/** Resource and host-port check: the dynamic filters, which change as tasks are placed. */
export function fits(info: NodeInfo, t: TaskObject, ports: readonly string[] | undefined): FitFailure | undefined {
  const cap = info.capacity;
  if (cap) {
    const cpu = t.spec.resources?.nanoCpus ?? 0;
    const mem = t.spec.resources?.memoryBytes ?? 0;
    if (cap.nanoCpus !== undefined && cpu > 0 && info.nanoCpus + cpu > cap.nanoCpus) return { kind: 'resources', what: 'cpu' };
    if (cap.memoryBytes !== undefined && mem > 0 && info.memoryBytes + mem > cap.memoryBytes) return { kind: 'resources', what: 'memory' };
  }
  for (const p of ports ?? []) if (info.ports.has(p)) return { kind: 'port', port: p };
  return undefined;
}

/** ready + active: the only nodes that take new tasks (pause and drain take none). */
export function availableForNewTasks(n: NodeObject): boolean {
  return n.state === 'ready' && n.availability === 'active';
}

export function unavailableWhy(n: NodeObject): string {
  return n.state !== 'ready' ? `${n.state}` : n.availability;
}
