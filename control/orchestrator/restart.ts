// Restart policy: when a task desired running has ended, replace it now, later, or never.
//   condition none: never; on-failure: unless it completed with exit code 0; any: always.
//   delayMs: counted from the task's end (its status timestamp).
//   maxAttempts (0 = unlimited): restarts already made in this slot with this task spec, counted
//   within the last windowMs (0 = ever). A restarted task is one the orchestrator marked desired
//   shutdown after it ended failed/complete/rejected; tasks shut down on purpose (update, drain, scale)
//   end as `shutdown` and are not attempts. With a window, a slot that gave up tries again once old
//   attempts age out of it (the decision says when, so the caller can wake up then).
// The history pruner keeps at least maxAttempts dead tasks per slot, so the count stays exact.
import type { TaskObject, TaskSpec } from '../store/objects.js';
import { sameTaskSpec } from './spec-key.js';
import { ms } from './time.js';

export type RestartDecision =
  | { kind: 'now' }
  | { kind: 'later'; at: number }
  | { kind: 'never'; why: string; retryAt?: number };

const ATTEMPT_STATES = new Set(['failed', 'complete', 'rejected']);

/** Restarts already made in the slot (its other tasks) that count against maxAttempts. */
export function restartAttempts(slotTasks: readonly TaskObject[], spec: TaskSpec, now: number, windowMs: number): number[] {
  const times: number[] = [];
  for (const t of slotTasks) {
    if (t.desiredState === 'running' || !ATTEMPT_STATES.has(t.status.state) || !sameTaskSpec(t.spec, spec)) continue;
    const at = ms(t.status.timestamp);
    if (windowMs > 0 && at < now - windowMs) continue;
    times.push(at);
  }
  return times.sort((a, b) => a - b);
}

export function restartDecision(dead: TaskObject, slotTasks: readonly TaskObject[], now: number): RestartDecision {
  const p = dead.spec.restart;
  if (p.condition === 'none') return { kind: 'never', why: 'restart condition none' };
  if (p.condition === 'on-failure' && dead.status.state === 'complete' && (dead.status.exitCode ?? 0) === 0) {
    return { kind: 'never', why: 'completed successfully' };
  }
  if (p.maxAttempts > 0) {
    const attempts = restartAttempts(slotTasks.filter((t) => t.id !== dead.id), dead.spec, now, p.windowMs);
    if (attempts.length >= p.maxAttempts) {
      const d: RestartDecision = { kind: 'never', why: `restarted ${attempts.length} times (max ${p.maxAttempts})` };
      // the oldest counted attempt leaves the window at that time, freeing one attempt
      if (p.windowMs > 0) d.retryAt = attempts[attempts.length - p.maxAttempts]! + p.windowMs + 1;
      return d;
    }
  }
  const at = ms(dead.status.timestamp) + p.delayMs;
  return now < at ? { kind: 'later', at } : { kind: 'now' };
}
