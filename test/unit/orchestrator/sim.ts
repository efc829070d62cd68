// A small deterministic cluster for orchestrator tests: a Store, the orchestrator and scheduler run
// against it, and simulated agents that move their tasks' states. Time is a number we advance.
import { Store } from '../../../control/store/store.js';
import type { Op } from '../../../control/store/commands.js';
import type { NodeObject, ServiceObject, ServiceSpec, Stored, TaskObject, TaskSpec, UpdateConfig } from '../../../control/store/objects.js';
import { reconcile } from '../../../control/orchestrator/reconcile.js';
import { applyAgentReport, isTerminal } from '../../../control/orchestrator/task-states.js';
import { schedule, type NodeResources } from '../../../control/scheduler/scheduler.js';
import { decisionsToOps } from '../../../control/scheduler/ops.js';
import { updateServiceSpec, rollbackService } from '../../../control/orchestrator/service-spec.js';

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');

export const updateConfig = (over: Partial<UpdateConfig> = {}): UpdateConfig => ({
  parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first', ...over,
});

export function taskSpec(over: Partial<TaskSpec> = {}): TaskSpec {
  return {
    runtime: 'netns',
    command: ['sleep', 'inf'],
    restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
    placement: { constraints: [], preferences: [] },
    ...over,
  };
}

export function serviceSpec(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'web', mode: 'replicated', replicas: 1, task: taskSpec(), networks: [],
    endpoint: { mode: 'vip', ports: [] }, update: updateConfig(), rollback: updateConfig(), ...over,
  };
}

export const node = (id: string, over: Partial<NodeObject> = {}): NodeObject => ({
  id, hostname: `host-${id}`, role: 'worker', availability: 'active', labels: {}, addr: '198.18.0.1:2377', state: 'ready', ...over,
});

/** What a simulated agent does with a task it is given: run it, fail it at once, or leave it starting. */
export type Behaviour = 'run' | 'fail' | 'hang';

export class Sim {
  store = new Store();
  index = 0;
  now = T0;
  private ids = 0;
  behaviour: (t: TaskObject) => Behaviour = () => 'run';
  capacity = new Map<string, NodeResources>();
  /** every task creation, in order: "slot/spec-command" */
  created: TaskObject[] = [];
  wakeAt: number | undefined;

  constructor() {
    this.store.watch((e) => {
      if (e.type === 'create' && e.kind === 'task') this.created.push(e.object as Stored<'task'>);
    });
  }

  get at(): string {
    return new Date(this.now).toISOString();
  }

  apply(ops: Op[]): void {
    if (ops.length === 0) return;
    const r = this.store.apply(++this.index, { requestId: `r${this.index}`, at: this.at, ops });
    if (!r.ok) throw new Error(`apply failed: ${r.error}`);
  }

  addNode(id: string, over: Partial<NodeObject> = {}): void {
    this.apply([{ op: 'create', kind: 'node', object: node(id, over) }]);
  }

  setNode(id: string, over: Partial<NodeObject>): void {
    const n = this.store.get('node', id)!;
    const { meta: _m, ...rest } = n;
    this.apply([{ op: 'update', kind: 'node', object: { ...rest, ...over } }]);
  }

  removeNode(id: string): void {
    this.apply([{ op: 'delete', kind: 'node', id }]);
  }

  createService(id: string, spec: ServiceSpec): void {
    // Service names are unique in the store: a second service with the default name gets its id.
    const taken = this.store.list('service').some((x) => x.spec.name === spec.name);
    const s: ServiceObject = { id, spec: taken ? { ...spec, name: `${spec.name}-${id}` } : spec, specVersion: 1 };
    this.apply([{ op: 'create', kind: 'service', object: s }]);
  }

  service(id = 'svc'): Stored<'service'> {
    return this.store.get('service', id)!;
  }

  updateSpec(id: string, fn: (s: ServiceSpec) => ServiceSpec): void {
    const s = this.service(id);
    this.apply([{ op: 'update', kind: 'service', object: updateServiceSpec(s, fn(structuredClone(s.spec)), this.at), version: s.meta.version }]);
  }

  rollback(id: string): void {
    const s = this.service(id);
    this.apply([{ op: 'update', kind: 'service', object: rollbackService(s, this.at), version: s.meta.version }]);
  }

  tasks(serviceId?: string): Stored<'task'>[] {
    return this.store.list('task').filter((t) => serviceId === undefined || t.serviceId === serviceId);
  }

  /** live tasks: desired running and not ended */
  live(serviceId?: string): Stored<'task'>[] {
    return this.tasks(serviceId).filter((t) => t.desiredState === 'running' && !isTerminal(t.status.state));
  }

  running(serviceId?: string): Stored<'task'>[] {
    return this.live(serviceId).filter((t) => t.status.state === 'running');
  }

  /** node id -> number of running tasks */
  perNode(serviceId?: string): Record<string, number> {
    const m: Record<string, number> = {};
    for (const t of this.running(serviceId)) m[t.nodeId!] = (m[t.nodeId!] ?? 0) + 1;
    return m;
  }

  reconcileOnce(): number {
    const r = reconcile({
      services: this.store.list('service'), tasks: this.store.list('task'), nodes: this.store.list('node'),
      now: this.now, newId: () => `t${String(++this.ids).padStart(4, '0')}`,
    });
    this.wakeAt = r.wakeAt;
    this.apply(r.ops);
    return r.ops.length;
  }

  scheduleOnce(): number {
    const tasks = this.store.list('task');
    const d = schedule({ nodes: this.store.list('node'), tasks, services: this.store.list('service'), capacity: this.capacity });
    const ops = decisionsToOps(d, new Map(tasks.map((t) => [t.id, t])), this.at);
    this.apply(ops);
    return ops.length;
  }

  agentsOnce(): number {
    const ops: Op[] = [];
    for (const t of this.store.list('task')) {
      if (!t.nodeId || isTerminal(t.status.state)) continue;
      const n = this.store.get('node', t.nodeId);
      if (!n || n.state !== 'ready') continue; // a dead agent reports nothing
      let state: TaskObject['status']['state'] | undefined;
      let exitCode: number | undefined;
      if (t.desiredState !== 'running') state = 'shutdown';
      else if (t.status.state === 'assigned') {
        const b = this.behaviour(t);
        if (b === 'run') state = 'running';
        else if (b === 'fail') [state, exitCode] = ['failed', 1];
        else state = 'starting';
      }
      if (!state || state === t.status.state) continue;
      const r = applyAgentReport(t, t.nodeId, { state, exitCode }, this.at);
      if (!r.ok) throw new Error(r.error);
      const { meta: _m, ...next } = r.task as Stored<'task'>;
      ops.push({ op: 'update', kind: 'task', object: next, version: t.meta.version });
    }
    this.apply(ops);
    return ops.length;
  }

  /** One round: orchestrator, scheduler, agents; then the clock moves on by tickMs. */
  step(tickMs = 100): number {
    const n = this.reconcileOnce() + this.scheduleOnce() + this.agentsOnce();
    this.now += tickMs;
    return n;
  }

  /** Steps until a round changes nothing and no wake-up is due within `horizonMs`; returns rounds. */
  settle(maxSteps = 500, tickMs = 100, horizonMs = 60_000): number {
    for (let i = 0; i < maxSteps; i++) {
      const n = this.step(tickMs);
      if (n === 0 && (this.wakeAt === undefined || this.wakeAt > this.now + horizonMs)) return i;
    }
    throw new Error('did not settle');
  }

  /** Advances the clock by ms in steps. */
  run(ms: number, tickMs = 100): void {
    const end = this.now + ms;
    while (this.now < end) this.step(tickMs);
  }
}
