// How the orchestrator judges a node for a service's tasks.
//   run:    may hold the service's tasks and get new ones (global: gets one)
//   keep:   existing tasks stay, none are created (state unknown: e.g. just after a leader change,
//           before the node's agent reconnects; swarmkit waits too)
//   leave:  tasks must go; `orphan` when the node cannot stop them itself (down or removed)
// Pause counts as `run` here: the global orchestrator creates the task and the scheduler keeps it
// pending until the node is active again; replicated tasks already there stay.
import type { NodeObject } from '../store/objects.js';
import { firstUnmet, type Constraint } from '../scheduler/constraint.js';

export type NodeVerdict = { kind: 'run' } | { kind: 'keep' } | { kind: 'leave'; orphan: boolean; why: string };

export function judgeNode(node: NodeObject | undefined, constraints: readonly Constraint[] | undefined): NodeVerdict {
  if (!node) return { kind: 'leave', orphan: true, why: 'node removed' };
  if (node.state === 'down') return { kind: 'leave', orphan: true, why: 'node down' };
  if (node.availability === 'drain') return { kind: 'leave', orphan: false, why: 'node drained' };
  // constraints that do not parse match no node (the API refuses them; this is defence only)
  if (!constraints) return { kind: 'leave', orphan: false, why: 'invalid constraints' };
  const c = firstUnmet(constraints, node);
  if (c) return { kind: 'leave', orphan: false, why: `node no longer satisfies constraint ${c.text}` };
  if (node.state !== 'ready') return { kind: 'keep' };
  return { kind: 'run' };
}
