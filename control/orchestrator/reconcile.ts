// The orchestrator's entry point: desired state (services) vs actual (tasks, nodes) -> store ops.
//
// API (the leader runs this on store changes for services, tasks and nodes, debounced, and when the
// returned wakeAt comes due):
//   const r = reconcile({ services, tasks, nodes, now: Date.now(), newId });   // pure
//   if (r.ops.length) propose({ requestId, at: new Date(now).toISOString(), ops: r.ops });
//   if (r.wakeAt !== undefined) setTimer(r.wakeAt - Date.now());
// Every update/delete carries the version it was computed from (compare-and-set): if the transaction
// fails with a conflict, read again and rerun. A pass over unchanged inputs returns no ops (it is
// idempotent), so rerunning is always safe. Then run the scheduler on the result.
// Large passes can be split by service: pass `serviceIds` to reconcile only those services.
//
// Tasks whose service is gone are set desiredState remove; once terminal (or if never placed) they
// are deleted.
import type { Op } from '../store/commands.js';
import type { NodeObject, ServiceObject, TaskObject } from '../store/objects.js';
import { Changes, type MaybeStored } from './changes.js';
import { reconcileService } from './service-reconcile.js';
import { isTerminal } from './task-states.js';
import { iso } from './time.js';

export interface ReconcileInput {
  services: readonly MaybeStored<ServiceObject>[];
  tasks: readonly MaybeStored<TaskObject>[];
  nodes: readonly NodeObject[];
  /** epoch ms: the caller's clock */
  now: number;
  /** unique task ids (the daemon: random; tests: a counter) */
  newId: () => string;
  /** dead tasks kept per slot (at least the restart policy's maxAttempts); default 5 */
  historyLimit?: number;
  /** reconcile only these services (and orphaned tasks of services not in `services`) */
  serviceIds?: ReadonlySet<string>;
}

export interface ReconcileResult {
  ops: Op[];
  /** run again at this time (epoch ms) even if nothing changes: restart delay, update delay, monitor */
  wakeAt?: number;
}

export const DEFAULT_HISTORY_LIMIT = 5;

export function reconcile(input: ReconcileInput): ReconcileResult {
  const changes = new Changes();
  const at = iso(input.now);
  const nodes = new Map(input.nodes.map((n) => [n.id, n]));
  const byService = new Map<string, MaybeStored<TaskObject>[]>();
  for (const t of input.tasks) {
    let l = byService.get(t.serviceId);
    if (!l) byService.set(t.serviceId, (l = []));
    l.push(t);
  }
  const services = [...input.services].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const service of services) {
    if (input.serviceIds && !input.serviceIds.has(service.id)) continue;
    reconcileService({
      service, tasks: byService.get(service.id) ?? [], nodes, now: input.now, at, newId: input.newId, changes,
      historyLimit: input.historyLimit ?? DEFAULT_HISTORY_LIMIT,
    });
  }
  const known = new Set(input.services.map((s) => s.id));
  for (const [sid, tasks] of byService) {
    if (known.has(sid)) continue;
    for (const t of tasks) {
      if (t.attachment) {
        // a standalone task: it goes when asked to and stopped, or with its node
        const gone = t.nodeId === undefined || !nodes.has(t.nodeId);
        if (gone || (t.desiredState !== 'running' && (isTerminal(t.status.state) || nodes.get(t.nodeId!)?.state === 'down'))) changes.delete(t);
        else if (t.desiredState === 'running' && isTerminal(t.status.state)) changes.patch(t, (c) => ({ ...c, desiredState: 'shutdown' }));
        continue;
      }
      const placed = t.nodeId !== undefined && nodes.get(t.nodeId)?.state !== 'down' && nodes.has(t.nodeId);
      if (isTerminal(t.status.state) || !placed) changes.delete(t);
      else if (t.desiredState !== 'remove') changes.patch(t, (c) => ({ ...c, desiredState: 'remove' }));
    }
  }
  const r: ReconcileResult = { ops: changes.ops() };
  if (changes.wakeAt !== undefined) r.wakeAt = changes.wakeAt;
  return r;
}
