// The node agent: runs the tasks the dispatcher assigns to this node and reports their state.
//
// Assignments arrive with every session reply (a long poll that also serves as the heartbeat). The
// agent compares them with what its runtimes run: starts what should run, stops what should not,
// removes what is no longer assigned, and reports every state change at once (not at the next beat).
import type { TaskObject, TaskState } from '../store/objects.js';
import { NetnsRuntime, openDockerRuntime, type TaskRuntime, type TaskEvent, type TaskInfo } from '../../dataplane/runtime/index.js';

export interface AgentReport {
  taskId: string;
  state: TaskState;
  message?: string;
  exitCode?: number;
  err?: string;
}

export interface AgentOptions {
  nodeId: string;
  /** names every task namespace/container: production "msh-t-", a lab "PREFIX-t-" */
  taskPrefix: string;
  stateDir: string;
  /** called with reports to send now */
  report: (r: AgentReport[]) => void;
  log: (l: string) => void;
  /** attach a starting task's networks (its namespace exists; its command has not run yet) */
  prepareTask?: (t: TaskObject, netns: string) => Promise<void>;
  /** before a running task is stopped: take it out of load balancing and DNS first */
  drainTask?: (t: TaskObject) => Promise<void>;
  /** the set of running local tasks changed (a start, an exit, a removal) */
  tasksChanged?: () => void;
}

const STOP_GRACE_MS = 10_000;

export class Agent {
  private runtimes = new Map<'netns' | 'docker', TaskRuntime>();
  /** tasks this agent started or adopted, by id */
  private local = new Map<string, { runtime: TaskRuntime; stopping: boolean; lastReported?: TaskState }>();
  /** last assignments seen */
  private assigned = new Map<string, TaskObject>();
  private starting = new Set<string>();
  private adopting: Promise<void> | undefined;

  constructor(private readonly o: AgentOptions) {}

  private async runtime(kind: 'netns' | 'docker'): Promise<TaskRuntime> {
    let r = this.runtimes.get(kind);
    if (r) return r;
    r = kind === 'netns'
      ? new NetnsRuntime({ prefix: this.o.taskPrefix, stateDir: `${this.o.stateDir}/tasks`, sweepUnknownNamespaces: true })
      : await openDockerRuntime({ prefix: this.o.taskPrefix, owner: this.o.nodeId, stateDir: `${this.o.stateDir}/docker-tasks` });
    this.runtimes.set(kind, r);
    r.subscribe((e) => this.onEvent(e));
    // A restarted meshd finds its tasks again: running ones are kept, dead ones reported.
    const rep = await r.adopt();
    for (const t of rep.adopted) this.local.set(t.id, { runtime: r, stopping: false });
    for (const t of rep.exited) this.report(t.id, (t.exitCode ?? 1) === 0 ? 'complete' : 'failed', t.reason ?? 'exited while meshd was down', t.exitCode ?? undefined);
    if (rep.adopted.length || rep.exited.length || rep.removed.length) {
      this.o.log(`agent: ${kind} runtime adopted ${rep.adopted.length} running tasks, ${rep.exited.length} had exited, removed ${rep.removed.length} leftovers`);
    }
    return r;
  }

  /** At start: adopt what a previous meshd left running (the netns runtime is always present). */
  start(): Promise<void> {
    this.adopting ??= this.runtime('netns').then(() => undefined);
    return this.adopting;
  }

  private report(taskId: string, state: TaskState, message?: string, exitCode?: number, err?: string): void {
    const l = this.local.get(taskId);
    if (l) l.lastReported = state;
    const r: AgentReport = { taskId, state };
    if (message) r.message = message;
    if (exitCode !== undefined && exitCode !== null) r.exitCode = exitCode;
    if (err) r.err = err;
    this.o.report([r]);
  }

  private onEvent(e: TaskEvent): void {
    this.o.tasksChanged?.();
    if (e.type !== 'exit') return;
    const l = this.local.get(e.task.id);
    if (!l) return;
    const code = e.exitCode;
    if (l.stopping) this.report(e.task.id, 'shutdown', 'stopped', code ?? undefined);
    else if (code === 0) this.report(e.task.id, 'complete', 'finished', 0);
    else this.report(e.task.id, 'failed', `task exited with ${code ?? 'an unknown status'}`, code ?? undefined, e.reason ?? `exit code ${code}`);
  }

  /** The dispatcher's full list of this node's tasks. */
  async apply(tasks: TaskObject[]): Promise<void> {
    await this.start();
    this.assigned = new Map(tasks.map((t) => [t.id, t]));
    for (const t of tasks) {
      const l = this.local.get(t.id);
      if (t.desiredState === 'running') {
        if (!l && !this.starting.has(t.id) && (t.status.state === 'assigned' || t.status.state === 'accepted' || t.status.state === 'preparing' || t.status.state === 'starting')) {
          void this.startTask(t);
        } else if (l && !l.stopping && l.runtime.inspect(t.id)?.state === 'running' && t.status.state !== 'running' && l.lastReported !== 'running') {
          this.report(t.id, 'running', 'adopted after restart');
        }
      } else if (l && !l.stopping && l.runtime.inspect(t.id)?.state === 'running') {
        l.stopping = true;
        const drained = this.o.drainTask ? this.o.drainTask(t).catch((e: Error) => this.o.log(`agent: drain ${t.id}: ${e.message}`)) : Promise.resolve();
        void drained.then(() => l.runtime.stop(t.id, STOP_GRACE_MS)).catch((e: Error) => this.o.log(`agent: stop ${t.id}: ${e.message}`));
      } else if (l && l.runtime.inspect(t.id)?.state !== 'running' && t.status.state !== 'shutdown' && !['complete', 'failed', 'rejected', 'orphaned'].includes(t.status.state)) {
        this.report(t.id, 'shutdown', 'stopped');
      }
    }
    // Anything not assigned any more goes, with its namespace, logs and state.
    for (const [id, l] of this.local) {
      if (this.assigned.has(id) || this.starting.has(id)) continue;
      this.local.delete(id);
      void l.runtime
        .remove(id)
        .catch((e: Error) => this.o.log(`agent: remove ${id}: ${e.message}`))
        .finally(() => this.o.tasksChanged?.());
    }
  }

  /** Running local tasks and their network namespaces. */
  runningTasks(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [id, l] of this.local) {
      const i = l.runtime.inspect(id);
      if (i?.state === 'running' && i.netns) out.set(id, i.netns);
    }
    return out;
  }

  private async startTask(t: TaskObject): Promise<void> {
    this.starting.add(t.id);
    try {
      this.report(t.id, 'accepted');
      const rt = await this.runtime(t.spec.runtime);
      this.report(t.id, 'preparing');
      this.local.set(t.id, { runtime: rt, stopping: false });
      this.report(t.id, 'starting');
      const name = t.attachment ? t.attachment.name : `${t.serviceId.slice(0, 12)}.${t.slot || t.nodeId?.slice(0, 12) || ''}`;
      const info: TaskInfo = await rt.start({
        id: t.id,
        name,
        service: t.serviceId,
        spec: { ...(t.spec.command ? { command: t.spec.command } : {}), ...(t.spec.image ? { image: t.spec.image } : {}), env: t.spec.env ?? {} },
        env: { MESH_TASK_ID: t.id, MESH_TASK_SLOT: String(t.slot), MESH_SERVICE_ID: t.serviceId, MESH_NODE_ID: this.o.nodeId },
        ...(this.o.prepareTask ? { prepare: (ns: string) => this.o.prepareTask!(t, ns) } : {}),
      });
      if (info.state === 'running') this.report(t.id, 'running', 'started');
    } catch (e) {
      this.o.log(`agent: start ${t.id}: ${(e as Error).message}`);
      this.local.delete(t.id);
      this.report(t.id, 'rejected', 'start failed', undefined, (e as Error).message);
    } finally {
      this.starting.delete(t.id);
    }
  }

  async logs(taskId: string, tail?: number): Promise<string> {
    const l = this.local.get(taskId);
    if (!l) throw new Error(`task ${taskId} is not on this node (or has been removed)`);
    return l.runtime.logs(taskId, tail !== undefined ? { tail } : {});
  }

  /** Stops watching; tasks keep running for the next meshd to adopt. */
  async close(): Promise<void> {
    for (const r of this.runtimes.values()) await r.close();
  }

  /** Leaving the cluster: every task goes. */
  async removeAll(): Promise<void> {
    for (const [id, l] of this.local) await l.runtime.remove(id).catch(() => undefined);
    this.local.clear();
  }
}
