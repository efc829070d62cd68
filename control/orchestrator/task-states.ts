// The task state machine (swarmkit's): which states follow which, and whether an agent's report is
// acceptable. The dispatcher calls applyAgentReport() for every status an agent sends.
//
//   new -> pending -> assigned -> accepted -> preparing -> starting -> running -> complete | failed | shutdown
//   rejected: the agent refused or could not prepare the task (before it ran)
//   orphaned: the manager gave up on the task's node (down or removed); never reported by an agent
//
// Rules:
//   - states only move forward; an agent may skip intermediate states (reports are batched);
//   - terminal states (complete, failed, shutdown, rejected, orphaned) never change;
//   - new/pending/assigned are the managers' (orchestrator, scheduler); agents report accepted and later;
//   - rejected only before running; orphaned only by the manager.
//   - a report of the state the task is already in is no change: the timestamp stays, so the update
//     monitor's "running since" is not reset by an agent repeating itself.
import type { TaskObject, TaskState } from '../store/objects.js';

export const TASK_STATES: readonly TaskState[] = [
  'new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running',
  'complete', 'failed', 'shutdown', 'rejected', 'orphaned',
];

const ORDER: Record<TaskState, number> = {
  new: 0, pending: 1, assigned: 2, accepted: 3, preparing: 4, starting: 5, running: 6,
  complete: 7, failed: 7, shutdown: 7, rejected: 7, orphaned: 7,
};

const TERMINAL: ReadonlySet<TaskState> = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned']);

export function isTerminal(s: TaskState): boolean {
  return TERMINAL.has(s);
}

/** Position in the lifecycle; all terminal states share the last place. */
export function stateOrder(s: TaskState): number {
  return ORDER[s];
}

/** A state change anyone (manager or agent) may make. */
export function canTransition(from: TaskState, to: TaskState): boolean {
  if (isTerminal(from)) return false;
  if (to === 'rejected') return ORDER[from] < ORDER.running;
  if (isTerminal(to)) return true;
  return ORDER[to] > ORDER[from];
}

const AGENT_STATES: ReadonlySet<TaskState> = new Set(['accepted', 'preparing', 'starting', 'running', 'complete', 'failed', 'shutdown', 'rejected']);

export interface AgentReport {
  state: TaskState;
  message?: string;
  exitCode?: number;
  err?: string;
}

export type ReportCheck = { ok: true; change: boolean } | { ok: false; error: string };

/** Is this report from `nodeId` about `task` acceptable, and does it change anything? */
export function checkAgentReport(task: TaskObject, nodeId: string, r: AgentReport): ReportCheck {
  if (task.nodeId !== nodeId) return { ok: false, error: `task ${task.id} is not assigned to node ${nodeId}` };
  if (!AGENT_STATES.has(r.state)) return { ok: false, error: `agents may not report state ${r.state}` };
  const from = task.status.state;
  if (from === r.state) return { ok: true, change: false };
  if (isTerminal(from)) return { ok: false, error: `task ${task.id} is already ${from}` };
  if (ORDER[from] < ORDER.assigned) return { ok: false, error: `task ${task.id} is ${from}, not yet assigned` };
  if (!canTransition(from, r.state)) return { ok: false, error: `task ${task.id} cannot go from ${from} to ${r.state}` };
  return { ok: true, change: true };
}

/**
 * The task after an agent's report, or an error. `unchanged` when the report repeats the current state
 * (the dispatcher then writes nothing). `at` is the dispatcher's clock (ISO), stamped as the status time.
 */
export function applyAgentReport(
  task: TaskObject,
  nodeId: string,
  r: AgentReport,
  at: string,
): { ok: true; task: TaskObject; unchanged: boolean } | { ok: false; error: string } {
  const c = checkAgentReport(task, nodeId, r);
  if (!c.ok) return c;
  if (!c.change) return { ok: true, task, unchanged: true };
  const status: TaskObject['status'] = { state: r.state, message: r.message ?? r.state, timestamp: at };
  if (r.exitCode !== undefined) status.exitCode = r.exitCode;
  if (r.err !== undefined) status.err = r.err;
  return { ok: true, task: { ...task, status }, unchanged: false };
}
