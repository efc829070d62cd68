// A service's tasks grouped by slot: replicated services by slot number, global services by node.
// Each slot holds its live task(s) and its history (dead tasks).
import type { NodeObject, ServiceObject, TaskObject } from '../store/objects.js';
import { parseConstraints, type Constraint } from '../scheduler/constraint.js';
import type { MaybeStored } from './changes.js';
import { judgeNode, type NodeVerdict } from './nodes.js';

export interface Slot {
  /** "s3" (replicated slot 3) or "nXYZ" (global, node XYZ) */
  key: string;
  slot: number;
  nodeId?: string;
  tasks: MaybeStored<TaskObject>[];
  /** the slot should exist (replicated: 1..replicas; global: node verdict run or keep) */
  desired: boolean;
  /** a task may be created in it now */
  canCreate: boolean;
  /** why its tasks must go, when not desired */
  leave?: { why: string; orphan: boolean };
  /** set by the slot pass: a replacement is on its way (restart delay, or an old task still stopping) */
  waiting?: boolean;
  /** set by the slot pass: its task ended and the restart policy gave up (the update may retry it) */
  givenUp?: TaskObject;
}

const constraintCache = new WeakMap<readonly string[], Constraint[] | null>();

/** Parsed constraints, or undefined when they do not parse (cached per array: specs are shared). */
export function constraintsOf(cs: readonly string[]): Constraint[] | undefined {
  let c = constraintCache.get(cs);
  if (c === undefined) {
    try {
      c = parseConstraints(cs);
    } catch {
      c = null;
    }
    constraintCache.set(cs, c);
  }
  return c ?? undefined;
}

export function buildSlots(s: ServiceObject, tasks: readonly MaybeStored<TaskObject>[], nodes: ReadonlyMap<string, NodeObject>): Slot[] {
  const slots = new Map<string, Slot>();
  if (s.spec.mode === 'replicated') {
    for (let i = 1; i <= s.spec.replicas; i++) slots.set(`s${i}`, { key: `s${i}`, slot: i, tasks: [], desired: true, canCreate: true });
    for (const t of tasks) {
      const key = `s${t.slot}`;
      let sl = slots.get(key);
      if (!sl) slots.set(key, (sl = { key, slot: t.slot, tasks: [], desired: false, canCreate: false, leave: { why: 'scaled down', orphan: false } }));
      sl.tasks.push(t);
    }
    return [...slots.values()].sort((a, b) => a.slot - b.slot);
  }
  const cs = constraintsOf(s.spec.task.placement.constraints);
  const verdicts = new Map<string, NodeVerdict>();
  const verdict = (id: string): NodeVerdict => {
    let v = verdicts.get(id);
    if (!v) verdicts.set(id, (v = judgeNode(nodes.get(id), cs)));
    return v;
  };
  const mk = (nodeId: string): Slot => {
    const v = verdict(nodeId);
    const sl: Slot = { key: `n${nodeId}`, slot: 0, nodeId, tasks: [], desired: v.kind !== 'leave', canCreate: v.kind === 'run' };
    if (v.kind === 'leave') sl.leave = { why: v.why, orphan: v.orphan };
    return sl;
  };
  for (const id of nodes.keys()) if (verdict(id).kind !== 'leave') slots.set(`n${id}`, mk(id));
  for (const t of tasks) {
    const id = t.nodeId ?? '';
    let sl = slots.get(`n${id}`);
    if (!sl) slots.set(`n${id}`, (sl = mk(id)));
    sl.tasks.push(t);
  }
  return [...slots.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
