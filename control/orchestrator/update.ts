// The rolling update, derived from the store on every pass (no memory between passes, so a new
// leader picks up an update where the old one left it).
//
// A slot is dirty when its live task was made from another task spec than the service's. While the
// service's updateStatus is `updating` (or `rollback_started`), dirty slots are replaced in batches:
//   - a batch is the next `parallelism` dirty slots (0: all), in slot order (global: node id order);
//   - stop-first: the old task is shut down; its replacement is created once it has stopped;
//     start-first: the replacement is created at once; the old task is shut down once it runs;
//   - a replacement succeeds when it has been running for monitorMs (status timestamp = running since);
//     it fails if it ends failed or rejected within monitorMs of its creation (monitorMs 0: ever);
//   - the next batch starts when no slot is in flight and delayMs has passed since the last settled;
//   - failures > maxFailureRatio x slots (and at least one) trigger failureAction: pause -> paused,
//     rollback -> the service swaps to previousSpec with state rollback_started (during a rollback,
//     rollback_paused), continue -> nothing;
//   - no dirty slot and nothing in flight: completed (rollback_completed).
// A rollback uses the rollback config of the spec it rolls back from (now previousSpec), since that is
// the one the operator set along with the update. A new `service update` (see service-spec.ts) clears
// updateStatus, so a paused update resumes only through a new update or a rollback.
import type { ServiceObject, TaskObject, UpdateConfig, UpdateState } from '../store/objects.js';
import { createIn, shutDown, slotTasks, type ServicePass } from './service-reconcile.js';
import { rollbackSpec } from './service-spec.js';
import type { Slot } from './slots.js';
import { sameTaskSpec } from './spec-key.js';
import { isTerminal } from './task-states.js';
import { ms } from './time.js';

const ACTIVE: ReadonlySet<UpdateState> = new Set(['updating', 'rollback_started']);
const PAUSED: ReadonlySet<UpdateState> = new Set(['paused', 'rollback_paused']);

/** The update config in force for the service's current update state. */
export function updateConfigFor(s: ServiceObject): UpdateConfig {
  const st = s.updateStatus?.state;
  if (st === 'rollback_started' || st === 'rollback_paused') return s.previousSpec?.rollback ?? s.spec.rollback;
  return s.spec.update;
}

interface SlotView {
  sl: Slot;
  live: TaskObject[];
  old: TaskObject[];
  fresh: TaskObject[];
}

export function runUpdate(p: ServicePass, slots: readonly Slot[]): void {
  let svc = p.changes.service(p.service);
  const spec = svc.spec.task;
  const views: SlotView[] = [];
  for (const sl of slots) {
    if (!sl.desired) continue;
    const live = slotTasks(p, sl).filter((t) => t.desiredState === 'running' && !isTerminal(t.status.state));
    const old: TaskObject[] = [];
    const fresh: TaskObject[] = [];
    for (const t of live) (sameTaskSpec(t.spec, spec) ? fresh : old).push(t);
    // a slot whose old-spec task ended for good still deserves the new spec
    if (live.length === 0 && sl.givenUp && !sameTaskSpec(sl.givenUp.spec, spec)) old.push(sl.givenUp);
    views.push({ sl, live, old, fresh });
  }

  // Settle start-first pairs and duplicates whatever the update state: once a current task runs, the
  // slot's other live tasks go.
  for (const v of views) {
    if (v.live.length < 2) continue;
    const keep = [...v.fresh].sort((a, b) => Number(b.status.state === 'running') - Number(a.status.state === 'running') || ms(b.createdAt) - ms(a.createdAt))[0];
    if (!keep || keep.status.state !== 'running') {
      if (v.fresh.length === 0) for (const t of v.old.slice(1)) shutDown(p, origOf(v.sl, t), 'duplicate task in slot', false);
      continue;
    }
    for (const t of v.live) if (t !== keep) shutDown(p, origOf(v.sl, t), t.spec === keep.spec || sameTaskSpec(t.spec, keep.spec) ? 'duplicate task in slot' : 'replaced by update', false);
    v.old = [];
    v.live = [keep];
  }

  const dirty = views.filter((v) => v.old.length > 0 && v.fresh.length === 0 && v.sl.canCreate);
  let state = svc.updateStatus?.state;
  if (dirty.length > 0 && (state === undefined || state === 'completed' || state === 'rollback_completed')) {
    svc = { ...svc, updateStatus: { state: 'updating', startedAt: p.at, message: 'update in progress' } };
    p.changes.updateService(p.service, svc);
    state = 'updating';
  }
  if (state === undefined || !ACTIVE.has(state)) return;
  const cfg = updateConfigFor(svc);
  const startedAt = ms(svc.updateStatus?.startedAt);

  // What this update has done so far: replacements made since it started, from the current spec.
  let failures = 0;
  let failedTask: TaskObject | undefined;
  let lastSettled = -Infinity;
  let inFlight = 0;
  for (const v of views) {
    let busy = v.sl.waiting === true || (v.old.length > 0 && v.fresh.length > 0);
    for (const t of slotTasks(p, v.sl)) {
      if (!sameTaskSpec(t.spec, spec) || ms(t.createdAt) < startedAt) continue;
      const st = t.status.state;
      const ts = ms(t.status.timestamp);
      if (st === 'failed' || st === 'rejected') {
        lastSettled = Math.max(lastSettled, ts);
        if (cfg.monitorMs === 0 || ts <= ms(t.createdAt) + cfg.monitorMs) {
          failures++;
          failedTask = t;
        }
      } else if (isTerminal(st)) {
        lastSettled = Math.max(lastSettled, ts);
      } else if (t.desiredState === 'running') {
        if (st === 'running' && ts + cfg.monitorMs <= p.now) lastSettled = Math.max(lastSettled, ts + cfg.monitorMs);
        else {
          busy = true;
          if (st === 'running') p.changes.wake(ts + cfg.monitorMs);
        }
      }
    }
    if (busy) inFlight++;
  }

  const rollback = state === 'rollback_started';
  if (failures > 0 && failures > cfg.maxFailureRatio * views.length && cfg.failureAction !== 'continue') {
    const why = `task ${failedTask?.id ?? '?'} failed: ${failedTask?.status.err ?? failedTask?.status.message ?? ''}`.trim();
    if (cfg.failureAction === 'rollback' && !rollback && svc.previousSpec) {
      p.changes.updateService(p.service, rollbackSpec(svc, p.at, `update rolled back due to failure (${why})`));
      p.changes.wake(p.now); // the next pass works on the restored spec
    } else {
      const paused: UpdateState = rollback ? 'rollback_paused' : 'paused';
      p.changes.updateService(p.service, { ...svc, updateStatus: { state: paused, startedAt: svc.updateStatus!.startedAt, message: `${rollback ? 'rollback' : 'update'} paused due to failure (${why})` } });
    }
    return;
  }
  if (inFlight > 0) return;
  if (dirty.length === 0) {
    const done: UpdateState = rollback ? 'rollback_completed' : 'completed';
    p.changes.updateService(p.service, { ...svc, updateStatus: { state: done, startedAt: svc.updateStatus!.startedAt, completedAt: p.at, message: rollback ? 'rollback completed' : 'update completed' } });
    return;
  }
  if (lastSettled + cfg.delayMs > p.now) {
    p.changes.wake(lastSettled + cfg.delayMs);
    return;
  }
  const n = cfg.parallelism > 0 ? cfg.parallelism : dirty.length;
  for (const v of dirty.slice(0, n)) {
    if (cfg.order === 'start-first') {
      createIn(p, v.sl);
      continue;
    }
    for (const t of v.old) shutDown(p, origOf(v.sl, t), rollback ? 'rolled back' : 'replaced by update', false);
    // never placed: nothing to wait for
    if (v.old.every((t) => t.nodeId === undefined)) createIn(p, v.sl);
  }
}

function origOf(sl: Slot, t: TaskObject): TaskObject {
  return sl.tasks.find((x) => x.id === t.id) ?? t;
}
