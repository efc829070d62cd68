// Scheduler (and orchestrator) in memory at Swarm's scale: 100,000 tasks onto 1,000 nodes.
// Figures: wall time and heap growth per scenario. Run directly (`node dist/test/bench/scheduler-bench.js`)
// or register `scheduler: schedulerBench` in main.ts. Heap figures are more precise with --expose-gc.
import { msSince, type Figure } from './figures.js';
import { schedule } from '../../control/scheduler/scheduler.js';
import { decisionsToOps } from '../../control/scheduler/ops.js';
import type { NodeResources } from '../../control/scheduler/node-info.js';
import { reconcile } from '../../control/orchestrator/reconcile.js';
import type { NodeObject, ServiceObject, TaskObject, TaskSpec, UpdateConfig } from '../../control/store/objects.js';

const NODES = 1000;
const TASKS = 100_000;
const AT = '2026-01-01T00:00:00.000Z';

const gc = (globalThis as { gc?: () => void }).gc;
function heapMB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function nodes(): NodeObject[] {
  return Array.from({ length: NODES }, (_, i) => ({
    id: `node${String(i).padStart(4, '0')}`, hostname: `h${i}`, role: i < 3 ? 'manager' : 'worker',
    availability: i % 50 === 0 ? 'drain' : 'active', labels: { zone: `z${i % 10}`, rack: `r${i % 7}` }, addr: '', state: 'ready',
  }));
}

const restart = { condition: 'any' as const, delayMs: 0, maxAttempts: 0, windowMs: 0 };
function tasks(services: number, spec: (s: number) => TaskSpec): TaskObject[] {
  const per = TASKS / services;
  const out: TaskObject[] = [];
  for (let s = 0; s < services; s++) {
    const sp = spec(s); // shared by the service's tasks, as a real spec would be after one parse
    for (let i = 1; i <= per; i++) {
      out.push({ id: `t${s}-${i}`, serviceId: `svc${s}`, slot: i, specVersion: 1, spec: sp, desiredState: 'running',
        status: { state: 'pending', message: '', timestamp: AT }, networks: [], createdAt: AT });
    }
  }
  return out;
}

function run(name: string, input: () => Parameters<typeof schedule>[0]): Figure[] {
  const inp = input();
  const h0 = heapMB();
  const t0 = process.hrtime.bigint();
  const d = schedule(inp);
  const ms = msSince(t0);
  const h1 = heapMB();
  const t1 = process.hrtime.bigint();
  const ops = decisionsToOps(d, new Map(inp.tasks.map((t) => [t.id, t])), AT);
  const opsMs = msSince(t1);
  return [
    { name: `schedule ${name}`, value: ms, unit: 'ms', higherIsBetter: false, note: `${d.assigned.length} assigned, ${d.pending.length} pending` },
    { name: `schedule ${name} heap`, value: Math.max(0, h1 - h0), unit: 'MB', higherIsBetter: false, note: gc ? '' : 'run with --expose-gc for exact heap' },
    { name: `schedule ${name} -> ops`, value: opsMs, unit: 'ms', higherIsBetter: false, note: `${ops.length} ops` },
  ];
}

export async function schedulerBench(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const plain = (): TaskSpec => ({ runtime: 'netns', restart, placement: { constraints: [], preferences: [] } });
  figures.push(...run('100k tasks (1 service) on 1k nodes', () => ({ nodes: nodes(), tasks: tasks(1, plain) })));
  figures.push(...run('100k tasks (1000 services) on 1k nodes', () => ({ nodes: nodes(), tasks: tasks(1000, plain) })));
  const capacity = new Map<string, NodeResources>(nodes().map((n) => [n.id, { nanoCpus: 200e9, memoryBytes: 256 * 2 ** 30 }]));
  figures.push(...run('100k tasks (100 svc, constraints, spread zone/rack, resources)', () => ({
    nodes: nodes(), capacity,
    tasks: tasks(100, (s) => ({ runtime: 'netns', restart, resources: { nanoCpus: 1e9, memoryBytes: 2 ** 30 },
      placement: { constraints: s % 2 ? ['node.role==worker', 'node.labels.zone!=z9'] : [], preferences: [{ spread: 'node.labels.zone' }, { spread: 'node.labels.rack' }] } })),
  })));

  // the orchestrator creating a 100k-replica service from nothing
  const upd: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' };
  const svc: ServiceObject = { id: 'big', specVersion: 1, spec: { name: 'big', mode: 'replicated', replicas: TASKS, task: plain(), networks: [], endpoint: { mode: 'vip', ports: [] }, update: upd, rollback: upd } };
  let id = 0;
  const t0 = process.hrtime.bigint();
  const r = reconcile({ services: [svc], tasks: [], nodes: nodes(), now: Date.parse(AT), newId: () => `x${++id}` });
  figures.push({ name: 'reconcile: create 100k replicas', value: msSince(t0), unit: 'ms', higherIsBetter: false, note: `${r.ops.length} ops` });
  const created = r.ops.flatMap((o) => (o.op === 'create' ? [o.object as TaskObject] : []));
  const t1 = process.hrtime.bigint();
  const r2 = reconcile({ services: [svc], tasks: created, nodes: nodes(), now: Date.parse(AT), newId: () => `x${++id}` });
  figures.push({ name: 'reconcile: 100k replicas, nothing to do', value: msSince(t1), unit: 'ms', higherIsBetter: false, note: `${r2.ops.length} ops` });
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatFigure } = await import('./figures.js');
  for (const f of await schedulerBench()) console.log(formatFigure(f));
}
