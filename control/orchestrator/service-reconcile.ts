// One service's reconcile pass: slot by slot, make the live tasks match the spec.
//   1. slots that should not exist (scaled down, global node drained/down/ineligible): shut down;
//   2. each desired slot: a dead task desired running goes through the restart policy; a live task on
//      a node that is down, removed, drained or no longer satisfies its constraints is shut down (and
//      orphaned when its node cannot stop it) and replaced at once; an empty slot gets a new task;
//   3. the rolling update (update.ts) replaces tasks with an old spec, batch by batch;
//   4. tasks desired shutdown that no agent will ever stop (never placed, node down/removed) are
//      marked shutdown/orphaned, and each slot's history is cut to the newest `historyLimit` dead tasks.
import type { NodeObject, ServiceObject, TaskObject } from '../store/objects.js';
import type { Changes, MaybeStored } from './changes.js';
import { judgeNode } from './nodes.js';
import { restartDecision } from './restart.js';
import { buildSlots, constraintsOf, type Slot } from './slots.js';
import { sameTaskSpec } from './spec-key.js';
import { isTerminal } from './task-states.js';
import { newTask } from './task-factory.js';
import { ms } from './time.js';
import { runUpdate } from './update.js';

export interface ServicePass {
  service: MaybeStored<ServiceObject>;
  tasks: readonly MaybeStored<TaskObject>[];
  nodes: ReadonlyMap<string, NodeObject>;
  now: number;
  at: string;
  newId: () => string;
  changes: Changes;
  historyLimit: number;
}

/** The slot's tasks as this pass currently sees them (created ones included, deleted ones not). */
export function slotTasks(p: ServicePass, sl: Slot): TaskObject[] {
  const out: TaskObject[] = [];
  for (const t of sl.tasks) {
    const c = p.changes.task(t);
    if (c) out.push(c);
  }
  return out;
}

export function shutDown(p: ServicePass, t: MaybeStored<TaskObject>, why: string, orphan: boolean): void {
  p.changes.patch(t, (c) => {
    const next: TaskObject = { ...c, desiredState: c.desiredState === 'remove' ? 'remove' : 'shutdown' };
    if (orphan && !isTerminal(c.status.state)) next.status = { state: 'orphaned', message: why, timestamp: p.at };
    else if (!isTerminal(c.status.state)) next.status = { ...c.status, message: `shutting down: ${why}` };
    return next;
  });
}

export function createIn(p: ServicePass, sl: Slot): TaskObject {
  const s = p.changes.service(p.service);
  const t = newTask(s, p.newId(), p.at, sl.nodeId !== undefined ? { nodeId: sl.nodeId } : { slot: sl.slot });
  p.changes.create(t);
  sl.tasks.push(t);
  return t;
}

export function reconcileService(p: ServicePass): void {
  const slots = buildSlots(p.service, p.tasks, p.nodes);
  for (const sl of slots) {
    if (!sl.desired) {
      for (const t of sl.tasks) if (t.desiredState === 'running') shutDown(p, t, sl.leave?.why ?? 'not needed', sl.leave?.orphan ?? false);
      continue;
    }
    slotPass(p, sl);
  }
  runUpdate(p, slots);
  for (const sl of slots) finalize(p, sl);
}

function slotPass(p: ServicePass, sl: Slot): void {
  let waiting = false;
  let givenUp = false;
  for (const orig of sl.tasks) {
    const t = p.changes.task(orig);
    if (!t || t.desiredState !== 'running') continue;
    if (isTerminal(t.status.state)) {
      const d = restartDecision(t, slotTasks(p, sl), p.now);
      if (d.kind === 'now') p.changes.patch(orig, (c) => ({ ...c, desiredState: 'shutdown' }));
      else if (d.kind === 'later') {
        waiting = true;
        p.changes.wake(d.at);
      } else {
        givenUp = true;
        sl.givenUp = t;
        if (d.retryAt !== undefined) p.changes.wake(d.retryAt);
      }
      continue;
    }
    if (t.nodeId === undefined) continue;
    const v = judgeNode(p.nodes.get(t.nodeId), constraintsOf(t.spec.placement.constraints));
    if (v.kind === 'leave') shutDown(p, orig, v.why, v.orphan);
  }
  const live = slotTasks(p, sl).filter((t) => t.desiredState === 'running' && !isTerminal(t.status.state));
  if (live.length > 0 || givenUp || !sl.canCreate) return;
  if (waiting || stillStopping(p, sl)) {
    sl.waiting = true;
    return;
  }
  createIn(p, sl);
}

// Stop-first: the replacement waits until the old task has stopped, when the old one can still stop
// (its node is up) and shares a resource with the new one (global: the same node; replicated: a task
// stopped by the update). Drained or failed nodes' tasks are replaced at once, elsewhere.
function stillStopping(p: ServicePass, sl: Slot): boolean {
  const spec = p.changes.service(p.service).spec.task;
  for (const t of slotTasks(p, sl)) {
    if (t.desiredState === 'running' || isTerminal(t.status.state) || t.nodeId === undefined) continue;
    const n = p.nodes.get(t.nodeId);
    if (!n || n.state === 'down' || n.availability === 'drain') continue;
    if (sl.nodeId !== undefined || !sameTaskSpec(t.spec, spec)) return true;
  }
  return false;
}

const newestFirst = (a: TaskObject, b: TaskObject): number =>
  ms(b.status.timestamp) - ms(a.status.timestamp) || ms(b.createdAt) - ms(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

function finalize(p: ServicePass, sl: Slot): void {
  for (const orig of sl.tasks) {
    const t = p.changes.task(orig);
    if (!t || t.desiredState === 'running' || isTerminal(t.status.state)) continue;
    if (t.nodeId === undefined) {
      p.changes.patch(orig, (c) => ({ ...c, status: { state: 'shutdown', message: 'shut down before it was placed', timestamp: p.at } }));
      continue;
    }
    const n = p.nodes.get(t.nodeId);
    if (!n || n.state === 'down') {
      p.changes.patch(orig, (c) => ({ ...c, status: { state: 'orphaned', message: n ? 'node down' : 'node removed', timestamp: p.at } }));
    }
  }
  // History: dead tasks no longer wanted. Keep at least maxAttempts so restart counting stays exact;
  // a global slot whose node is gone keeps none.
  const dead = slotTasks(p, sl).filter((t) => t.desiredState !== 'running' && isTerminal(t.status.state)).sort(newestFirst);
  const maxAttempts = p.changes.service(p.service).spec.task.restart.maxAttempts;
  const keep = sl.nodeId !== undefined && !p.nodes.has(sl.nodeId) ? 0 : Math.max(p.historyLimit, maxAttempts);
  for (const t of dead.slice(keep)) {
    const orig = sl.tasks.find((x) => x.id === t.id);
    if (orig) p.changes.delete(orig);
  }
}
