// New tasks, made from the service's current spec. Replicated tasks get a slot and no node (the
// scheduler places them); global tasks get slot 0 and their node.
import type { ServiceObject, TaskObject } from '../store/objects.js';

// One copy of the service's task spec per spec object, shared by the tasks created from it: the
// store clones on apply anyway, and sharing keeps spec comparisons cached (spec-key.ts).
const specCopies = new WeakMap<object, TaskObject['spec']>();
function specCopy(s: ServiceObject): TaskObject['spec'] {
  let c = specCopies.get(s.spec.task);
  if (!c) specCopies.set(s.spec.task, (c = structuredClone(s.spec.task)));
  return c;
}

export function newTask(s: ServiceObject, id: string, at: string, where: { slot: number } | { nodeId: string }): TaskObject {
  const t: TaskObject = {
    id,
    serviceId: s.id,
    slot: 'slot' in where ? where.slot : 0,
    specVersion: s.specVersion,
    spec: specCopy(s),
    desiredState: 'running',
    status: { state: 'new', message: 'created', timestamp: at },
    // the allocator fills in the addresses
    networks: s.spec.networks.map((n) => ({ network: n.target, addresses: [] })),
    createdAt: at,
  };
  if ('nodeId' in where) t.nodeId = where.nodeId;
  return t;
}
