// Collects what one reconcile pass wants to change, as working copies, and turns them into store ops.
// Several rules may touch the same task in one pass (e.g. restart it, then prune its history); each
// rule reads the working copy, and the pass emits one op per object, compare-and-set on the version
// it read, so a pass computed from a stale view fails as a whole and is simply run again.
import type { Op } from '../store/commands.js';
import type { ServiceObject, TaskObject } from '../store/objects.js';

export type MaybeStored<T> = T & { meta?: { version: number } };

function bare<T extends object>(o: MaybeStored<T>): T {
  const { meta: _meta, ...rest } = o as T & { meta?: unknown };
  return rest as T;
}

interface Entry<T> {
  orig?: MaybeStored<T>;
  cur: T | null; // null: deleted
  created: boolean;
}

export class Changes {
  private tasks = new Map<string, Entry<TaskObject>>();
  private services = new Map<string, Entry<ServiceObject>>();
  /** earliest time some rule wants to run again (restart delay, update delay, monitor period) */
  wakeAt: number | undefined;

  wake(at: number): void {
    if (this.wakeAt === undefined || at < this.wakeAt) this.wakeAt = at;
  }

  /** The task as this pass sees it (its latest working copy), or undefined if deleted in this pass. */
  task(t: TaskObject): TaskObject | undefined {
    const e = this.tasks.get(t.id);
    if (!e) return t;
    return e.cur ?? undefined;
  }

  create(t: TaskObject): void {
    this.tasks.set(t.id, { cur: t, created: true });
  }

  /** Changes the task's working copy with fn (which must not mutate its argument). */
  patch(t: MaybeStored<TaskObject>, fn: (cur: TaskObject) => TaskObject): TaskObject {
    const e = this.tasks.get(t.id);
    if (e) {
      if (e.cur === null) return t;
      e.cur = fn(e.cur);
      return e.cur;
    }
    const cur = fn(bare(t));
    this.tasks.set(t.id, { orig: t, cur, created: false });
    return cur;
  }

  delete(t: MaybeStored<TaskObject>): void {
    const e = this.tasks.get(t.id);
    if (e?.created) this.tasks.delete(t.id);
    else this.tasks.set(t.id, { orig: e?.orig ?? t, cur: null, created: false });
  }

  updateService(s: MaybeStored<ServiceObject>, next: ServiceObject): void {
    const e = this.services.get(s.id);
    this.services.set(s.id, { orig: e?.orig ?? s, cur: bare(next), created: false });
  }

  service(s: ServiceObject): ServiceObject {
    return this.services.get(s.id)?.cur ?? s;
  }

  get empty(): boolean {
    return this.tasks.size === 0 && this.services.size === 0;
  }

  /** Service updates first (they are few and decide what the task ops mean), then tasks. */
  ops(): Op[] {
    const ops: Op[] = [];
    for (const e of this.services.values()) ops.push(withVersion({ op: 'update', kind: 'service', object: e.cur! }, e.orig));
    for (const [id, e] of this.tasks) {
      if (e.created) ops.push({ op: 'create', kind: 'task', object: e.cur! });
      else if (e.cur === null) ops.push(withVersion({ op: 'delete', kind: 'task', id }, e.orig));
      else ops.push(withVersion({ op: 'update', kind: 'task', object: e.cur }, e.orig));
    }
    return ops;
  }
}

function withVersion(op: Op, orig: { meta?: { version: number } } | undefined): Op {
  if (op.op !== 'create' && orig?.meta) op.version = orig.meta.version;
  return op;
}
