// Leader only: drives the orchestrator and the scheduler (both pure) from store changes, and serves
// agent sessions (the dispatcher). Followers forward sessions here.
import crypto from 'node:crypto';
import { reconcile, applyAgentReport } from '../orchestrator/index.js';
import { schedule, decisionsToOps, isSchedulable, type Unplaced } from '../scheduler/index.js';
import { allocate, type AllocationError } from '../allocator/index.js';
import { ManagerError, type Manager } from '../manager/manager.js';
import type { Op } from '../store/commands.js';
import type { Stored, TaskObject } from '../store/objects.js';
import type { AgentReport } from '../agent/agent.js';

const newId = (): string => {
  let s = '';
  for (const b of crypto.randomBytes(20)) s += (b % 36).toString(36);
  return s.slice(0, 25);
};

export class Orchestration {
  private timer: NodeJS.Timeout | undefined;
  private wake: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private unwatch: (() => void) | undefined;
  /** agents waiting in a long poll, by node id */
  private waiters = new Map<string, Set<() => void>>();
  passes = 0;
  /** The last allocation pass's errors (exhausted pools, unknown networks), by object id. */
  allocErrors = new Map<string, AllocationError[]>();

  constructor(
    private readonly m: Manager,
    private readonly log: (l: string) => void,
  ) {}

  start(): void {
    this.unwatch = this.m.store.watch((e) => {
      if (e.kind === 'task') {
        const t = e.object as Stored<'task'>;
        if (t.nodeId) this.notify(t.nodeId);
      } else if (e.kind === 'node') this.notify(e.object.id);
      this.kick();
    }, ['service', 'task', 'node', 'network']);
    this.kick();
  }

  stop(): void {
    this.unwatch?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.wake) clearTimeout(this.wake);
    for (const set of this.waiters.values()) for (const w of set) w();
    this.waiters.clear();
  }

  /** Coalesces bursts of store events into one pass. */
  kick(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, 5);
  }

  private async run(): Promise<void> {
    if (!this.m.isLeader()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      for (let i = 0; i < 20; i++) {
        this.passes++;
        const s = this.m.store;
        const now = Date.now();
        const r = reconcile({ services: s.list('service'), tasks: s.list('task'), nodes: s.list('node'), now, newId });
        if (r.wakeAt !== undefined) this.setWake(r.wakeAt);
        if (r.ops.length) {
          if (!(await this.commit(r.ops))) continue;
          continue;
        }
        // Addresses before placement, so that a task carries them when it reaches its node.
        const a = allocate({ networks: s.list('network'), services: s.list('service'), tasks: s.list('task'), nodes: s.list('node') });
        this.noteAllocErrors(a.errors);
        const netErrs = a.ops.length ? [] : this.networkErrorOps(a.errors);
        if (a.ops.length || netErrs.length) {
          await this.commit([...a.ops, ...netErrs] as Op[]);
          continue;
        }
        const all = s.list('task');
        // A task waits for its addresses: it is not placed before it has one on every network.
        const waiting: Unplaced[] = [];
        const tasks = all.filter((t) => {
          if (!isSchedulable(t) || t.networks.every((e) => e.addresses.length > 0)) return true;
          const why = this.allocErrors.get(t.id)?.[0]?.message ?? this.allocErrors.get(t.serviceId)?.[0]?.message ?? 'allocating addresses';
          waiting.push({ taskId: t.id, reason: `waiting for network addresses: ${why}` });
          return false;
        });
        const d = schedule({ nodes: s.list('node'), tasks, services: s.list('service') });
        d.pending.push(...waiting);
        const ops = decisionsToOps(d, new Map(all.map((t) => [t.id, t])), new Date(now).toISOString());
        if (ops.length) {
          await this.commit(ops);
          continue;
        }
        break;
      }
    } catch (e) {
      this.log(`orchestrator: ${(e as Error).message}`);
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    }
  }

  private noteAllocErrors(errors: AllocationError[]): void {
    const next = new Map<string, AllocationError[]>();
    for (const e of errors) {
      const l = next.get(e.id);
      if (l) l.push(e);
      else next.set(e.id, [e]);
    }
    for (const [id, l] of next) {
      const before = this.allocErrors.get(id)?.map((e) => e.message).join('; ');
      const now = l.map((e) => e.message).join('; ');
      if (before !== now) this.log(`allocator: ${l[0]!.kind} ${id}: ${now}`);
    }
    this.allocErrors = next;
  }

  /** A network's allocation error is kept on the network (for `network inspect`); cleared once fixed. */
  private networkErrorOps(errors: AllocationError[]): Op[] {
    const ops: Op[] = [];
    for (const n of this.m.store.list('network')) {
      const msg = errors.filter((e) => e.kind === 'network' && e.id === n.id).map((e) => e.message).join('; ') || undefined;
      if (msg === n.error) continue;
      const { meta, ...obj } = n;
      if (msg) obj.error = msg;
      else delete obj.error;
      ops.push({ op: 'update', kind: 'network', object: obj, version: meta.version });
    }
    return ops;
  }

  private async commit(ops: Op[]): Promise<boolean> {
    try {
      await this.m.propose(ops);
      return true;
    } catch (e) {
      if (e instanceof ManagerError && e.code === 'conflict') return false; // state moved: recompute
      throw e;
    }
  }

  private setWake(at: number): void {
    if (this.wake) clearTimeout(this.wake);
    this.wake = setTimeout(() => {
      this.wake = undefined;
      this.kick();
    }, Math.max(0, at - Date.now()) + 1);
  }

  // ---- dispatcher ----------------------------------------------------------------------------------

  private notify(nodeId: string): void {
    const set = this.waiters.get(nodeId);
    if (!set) return;
    this.waiters.delete(nodeId);
    for (const w of set) w();
  }

  /** Tasks the agent on nodeId should know about, and a version that changes when they do. */
  assignments(nodeId: string): { tasks: Stored<'task'>[]; version: string } {
    const tasks = this.m.store.list('task').filter((t) => t.nodeId === nodeId && t.status.state !== 'new' && t.status.state !== 'pending');
    // Highest object version plus the count: changes on any update, and on a deletion too.
    // The node's ingress address is part of what it is told: a change wakes it too.
    const version = `${tasks.reduce((v, t) => Math.max(v, t.meta.version), 0)}:${tasks.length}:${this.m.store.get('node', nodeId)?.ingressAddr ?? ''}`;
    return { tasks, version };
  }

  /** Applies an agent's reports as one transaction (re-read and retried on conflicts). */
  async applyReports(nodeId: string, reports: AgentReport[]): Promise<string[]> {
    const errors: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      errors.length = 0;
      const ops: Op[] = [];
      const at = new Date().toISOString();
      const latest = new Map<string, AgentReport>();
      for (const r of reports) latest.set(r.taskId, r); // only the newest report per task matters
      const updated = new Map<string, TaskObject>();
      for (const r of reports) {
        const cur = updated.get(r.taskId) ?? this.m.store.get('task', r.taskId);
        if (!cur) {
          errors.push(`task ${r.taskId} does not exist (removed?)`);
          continue;
        }
        const res = applyAgentReport(cur, nodeId, r, at);
        if (!res.ok) {
          errors.push(res.error);
          continue;
        }
        if (!res.unchanged) updated.set(r.taskId, res.task);
      }
      for (const [id, t] of updated) {
        const { meta: _m, ...obj } = t as Stored<'task'>;
        ops.push({ op: 'update', kind: 'task', object: obj, version: this.m.store.get('task', id)!.meta.version });
      }
      if (!ops.length) return errors;
      try {
        await this.m.propose(ops);
        return errors;
      } catch (e) {
        if (!(e instanceof ManagerError && e.code === 'conflict')) throw e;
      }
    }
    return errors;
  }

  /** Long poll: resolves when this node's assignments change, or after waitMs. */
  waitForChange(nodeId: string, knownVersion: string, waitMs: number): Promise<void> {
    if (waitMs <= 0 || this.assignments(nodeId).version !== knownVersion) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.waiters.get(nodeId);
      if (!set) this.waiters.set(nodeId, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set!.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      set.add(done);
    });
  }
}
