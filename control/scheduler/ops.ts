// Turns scheduling decisions into store ops: one task update each, compare-and-set on the version the
// scheduler read, so a task the orchestrator changed meanwhile is not overwritten (that op's
// transaction fails; the daemon re-reads and schedules again).
import type { Op } from '../store/commands.js';
import type { TaskObject } from '../store/objects.js';
import type { ScheduleDecisions } from './scheduler.js';

type MaybeStored = TaskObject & { meta?: { version: number } };

function bare(t: MaybeStored): TaskObject {
  const { meta: _meta, ...rest } = t;
  return rest;
}

function update(t: MaybeStored, next: TaskObject): Op {
  const op: Op = { op: 'update', kind: 'task', object: next };
  if (t.meta) op.version = t.meta.version;
  return op;
}

/**
 * Ops for the decisions. A pending task whose reason did not change gets no op (no churn in Raft when
 * the scheduler runs again with nothing new). `at` is the proposer's clock, ISO.
 */
export function decisionsToOps(d: ScheduleDecisions, tasks: ReadonlyMap<string, MaybeStored>, at: string): Op[] {
  const ops: Op[] = [];
  for (const a of d.assigned) {
    const t = tasks.get(a.taskId);
    if (!t) continue;
    const next = bare(t);
    delete next.pendingReason;
    ops.push(update(t, { ...next, nodeId: a.nodeId, status: { state: 'assigned', message: 'scheduler assigned task to node', timestamp: at } }));
  }
  for (const p of d.pending) {
    const t = tasks.get(p.taskId);
    if (!t) continue;
    if (t.status.state === 'pending' && t.pendingReason === p.reason) continue;
    const status = t.status.state === 'pending' ? t.status : { state: 'pending' as const, message: 'pending task scheduling', timestamp: at };
    ops.push(update(t, { ...bare(t), status, pendingReason: p.reason }));
  }
  return ops;
}
