// Leader: what a node needs to know to network its tasks, sent with its assignments.
import type { Store } from '../store/store.js';
import type { NetworkObject, TaskObject } from '../store/objects.js';
import type { ServiceInfo } from './networking.js';
import type { PublishedService } from './routing-mesh.js';

export function networkView(store: Store, nodeId: string, tasks: readonly TaskObject[]): { networks: NetworkObject[]; services: Record<string, ServiceInfo>; ingressAddr?: string; published: PublishedService[]; downNodes: string[] } {
  const netIds = new Set<string>();
  for (const t of tasks) for (const e of t.networks) netIds.add(e.network);
  const networks: NetworkObject[] = [];
  for (const { meta: _m, ...n } of store.list('network')) if (netIds.has(n.id) || n.spec.ingress) networks.push(n);
  const services: Record<string, ServiceInfo> = {};
  for (const id of new Set(tasks.map((t) => t.serviceId))) {
    const s = store.get('service', id);
    if (!s) continue;
    services[id] = {
      name: s.spec.name,
      mode: s.spec.endpoint.mode,
      vips: s.endpointVips ?? [],
      aliases: Object.fromEntries(s.spec.networks.filter((n) => n.aliases.length).map((n) => [n.target, n.aliases])),
      ports: s.spec.endpoint.ports,
    };
  }
  const addr = store.get('node', nodeId)?.ingressAddr;
  // every node accepts every published ingress port (the routing mesh)
  const published = store.list('service').filter((s) => (s.endpointPorts ?? []).length).map((s) => ({ id: s.id, name: s.spec.name, ports: s.endpointPorts! }));
  // nodes the managers marked down: every node stops sending to their endpoints (see NodeNetworking)
  const downNodes = store.list('node').filter((n) => n.state === 'down' && n.id !== nodeId).map((n) => n.id).sort();
  return { networks, services, published, downNodes, ...(addr ? { ingressAddr: addr } : {}) };
}
