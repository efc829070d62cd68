// Builders for allocator tests, and a tiny in-memory store that applies the pass's ops.
import type { NodeObject, PortConfig, TaskObject, TaskState } from '../../../control/store/objects.js';
import type { AllocatorOp, AllocService, NetworkObject, NetworkSpec } from '../../../control/allocator/types.js';

const AT = '2026-01-01T00:00:00.000Z';

export function net(id: string, o: Partial<NetworkSpec> = {}, allocated?: NetworkObject['allocated']): NetworkObject {
  const n: NetworkObject = { id, spec: { name: id, driver: 'overlay', attachable: false, encrypted: false, labels: {}, ...o } };
  if (allocated) n.allocated = allocated;
  return n;
}

export function svc(id: string, networks: string[], o: { mode?: 'vip' | 'dnsrr'; ports?: PortConfig[]; name?: string } = {}): AllocService {
  return {
    id, specVersion: 1,
    spec: {
      name: o.name ?? id, mode: 'replicated', replicas: 1,
      task: { runtime: 'netns', restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], preferences: [] } },
      networks: networks.map((target) => ({ target, aliases: [] })),
      endpoint: { mode: o.mode ?? 'vip', ports: o.ports ?? [] },
      update: { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' },
      rollback: { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' },
    },
  };
}

export function task(id: string, serviceId: string, networks: string[], state: TaskState = 'new', addresses: string[][] = []): TaskObject {
  return {
    id, serviceId, slot: 1, specVersion: 1, spec: svc('x', []).spec.task, desiredState: 'running',
    status: { state, message: '', timestamp: AT },
    networks: networks.map((network, i) => ({ network, addresses: addresses[i] ?? [] })), createdAt: AT,
  };
}

export const port = (published: number, target = 80, protocol: 'tcp' | 'udp' = 'tcp', mode: 'ingress' | 'host' = 'ingress'): PortConfig => ({ published, target, protocol, mode });

/** The objects, keyed by id, with ops applied in order. */
export class World {
  networks = new Map<string, NetworkObject>();
  services = new Map<string, AllocService>();
  tasks = new Map<string, TaskObject>();
  nodes = new Map<string, NodeObject>();

  constructor(o: { networks?: NetworkObject[]; services?: AllocService[]; tasks?: TaskObject[]; nodes?: NodeObject[] } = {}) {
    for (const n of o.networks ?? []) this.networks.set(n.id, n);
    for (const s of o.services ?? []) this.services.set(s.id, s);
    for (const t of o.tasks ?? []) this.tasks.set(t.id, t);
    for (const n of o.nodes ?? []) this.nodes.set(n.id, n);
  }

  input(): { networks: NetworkObject[]; services: AllocService[]; tasks: TaskObject[]; nodes: NodeObject[] } {
    return { networks: [...this.networks.values()], services: [...this.services.values()], tasks: [...this.tasks.values()], nodes: [...this.nodes.values()] };
  }

  apply(ops: readonly AllocatorOp[]): void {
    for (const o of ops) {
      if (o.kind === 'network') this.networks.set(o.object.id, o.object);
      else if (o.kind === 'service') this.services.set(o.object.id, o.object);
      else if (o.kind === 'task') this.tasks.set(o.object.id, o.object);
      else this.nodes.set(o.object.id, o.object);
    }
  }

  /** Every address held by a live task or a VIP, with its holder, per network id. */
  held(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    const add = (n: string, a: string): void => {
      let l = m.get(n);
      if (!l) m.set(n, (l = []));
      l.push(a);
    };
    for (const s of this.services.values()) for (const v of s.endpointVips ?? []) add(v.network, v.addr);
    for (const t of this.tasks.values()) {
      if (['complete', 'failed', 'shutdown', 'rejected'].includes(t.status.state)) continue;
      for (const e of t.networks) for (const a of e.addresses) add(e.network, a);
    }
    return m;
  }
}

export function node(id: string, ingressAddr?: string): NodeObject {
  const n: NodeObject = { id, hostname: id, role: 'worker', availability: 'active', labels: {}, addr: '198.18.0.1:2377', state: 'ready' };
  if (ingressAddr) n.ingressAddr = ingressAddr;
  return n;
}
