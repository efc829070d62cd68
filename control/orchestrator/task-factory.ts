// New tasks, made from the service's current spec. Replicated tasks get a slot and no node (the
// scheduler places them); global tasks get slot 0 and their node.
import type { ServiceObject, TaskObject } from '../store/objects.js';

export function newTask(s: ServiceObject, id: string, at: string, where: { slot: number } | { nodeId: string }): TaskObject {
  const t: TaskObject = {
    id,
    serviceId: s.id,
    slot: 'slot' in where ? where.slot : 0,
    specVersion: s.specVersion,
    spec: structuredClone(s.spec.task),
    desiredState: 'running',
    status: { state: 'new', message: 'created', timestamp: at },
    // the allocator fills in the addresses
    networks: s.spec.networks.map((n) => ({ network: n.target, addresses: [] })),
    createdAt: at,
  };
  if ('nodeId' in where) t.nodeId = where.nodeId;
  return t;
}
