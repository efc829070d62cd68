// The allocator at Swarm's scale: 10,000 task addresses on one /16 and 1,000 networks from the default
// pool, plus the steady-state pass (everything allocated: no ops) that the leader runs on every change.
// Run directly (`node dist/test/bench/allocator-bench.js`) or register `allocator: allocatorBench` in
// main.ts.
import { msSince, median, type Figure } from './figures.js';
import { allocate, type AllocateInput } from '../../control/allocator/allocate.js';
import type { AllocatorOp, AllocService, NetworkObject } from '../../control/allocator/types.js';
import type { TaskObject, TaskSpec } from '../../control/store/objects.js';

const AT = '2026-01-01T00:00:00.000Z';
const TASKS = 10_000;
const NETWORKS = 1_000;

const taskSpec: TaskSpec = { runtime: 'netns', restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], preferences: [] } };
const upd = { parallelism: 1, delayMs: 0, failureAction: 'pause' as const, monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' as const };

function service(id: string, network: string): AllocService {
  return { id, specVersion: 1, spec: { name: id, mode: 'replicated', replicas: 1, task: taskSpec, networks: [{ target: network, aliases: [] }], endpoint: { mode: 'vip', ports: [] }, update: upd, rollback: upd } };
}

function task(i: number, serviceId: string, network: string): TaskObject {
  return { id: `t${String(i).padStart(6, '0')}`, serviceId, slot: i, specVersion: 1, spec: taskSpec, desiredState: 'running',
    status: { state: 'new', message: '', timestamp: AT }, networks: [{ network, addresses: [] }], createdAt: AT };
}

function apply(input: AllocateInput, ops: readonly AllocatorOp[]): AllocateInput {
  const nets = new Map(input.networks.map((n) => [n.id, n]));
  const svcs = new Map(input.services.map((s) => [s.id, s]));
  const tasks = new Map(input.tasks.map((t) => [t.id, t]));
  for (const o of ops) {
    if (o.kind === 'network') nets.set(o.object.id, o.object);
    else if (o.kind === 'service') svcs.set(o.object.id, o.object);
    else if (o.kind === 'task') tasks.set(o.object.id, o.object);
  }
  return { networks: [...nets.values()], services: [...svcs.values()], tasks: [...tasks.values()] };
}

/** Median of a few runs: these are milliseconds, and one GC pause would otherwise be the figure. */
function time(runs: number, f: () => unknown): number {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    f();
    xs.push(msSince(t0));
  }
  return median(xs);
}

export async function allocatorBench(): Promise<Figure[]> {
  const figures: Figure[] = [];
  // 1. 10,000 tasks of 10 services on one /16
  const net: NetworkObject = { id: 'big', spec: { name: 'big', driver: 'overlay', subnet: '10.10.0.0/16', attachable: false, encrypted: false, labels: {} } };
  const services = Array.from({ length: 10 }, (_, i) => service(`svc${i}`, 'big'));
  const fresh: AllocateInput = { networks: [net], services, tasks: Array.from({ length: TASKS }, (_, i) => task(i, `svc${i % 10}`, 'big')) };
  let r = allocate(fresh);
  if (r.errors.length) throw new Error(`allocator bench: ${r.errors[0]!.message}`);
  const ms = time(5, () => allocate(fresh));
  figures.push({ name: `allocate ${TASKS} task IPs on a /16`, value: ms, unit: 'ms', higherIsBetter: false, note: `${r.ops.length} ops (1 network, 10 VIPs); ${((ms * 1000) / TASKS).toFixed(2)} us/task` });
  const done = apply(fresh, r.ops);
  figures.push({ name: `steady pass, ${TASKS} tasks allocated`, value: time(5, () => allocate(done)), unit: 'ms', higherIsBetter: false, note: 'no ops: rebuilds the in-use set from the objects' });
  // 100 replacements: 100 tasks deleted, 100 new ones (the lowest free addresses are the freed ones)
  const churn: AllocateInput = { ...done, tasks: [...done.tasks.slice(100), ...Array.from({ length: 100 }, (_, i) => task(TASKS + i, `svc${i % 10}`, 'big'))] };
  r = allocate(churn);
  figures.push({ name: `replace 100 of ${TASKS} tasks`, value: time(5, () => allocate(churn)), unit: 'ms', higherIsBetter: false, note: `${r.ops.length} ops` });
  // 2. 1,000 networks from the default pool (10.0.0.0/8 in /24s)
  const nets: AllocateInput = { networks: Array.from({ length: NETWORKS }, (_, i) => ({ id: `n${String(i).padStart(4, '0')}`, spec: { name: `n${i}`, driver: 'overlay' as const, attachable: false, encrypted: false, labels: {} } })), services: [], tasks: [] };
  r = allocate(nets);
  if (r.ops.length !== NETWORKS) throw new Error('allocator bench: networks not all allocated');
  figures.push({ name: `allocate ${NETWORKS} networks from the pool`, value: time(5, () => allocate(nets)), unit: 'ms', higherIsBetter: false, note: 'VNI + /24 + gateway each' });
  const netsDone = apply(nets, r.ops);
  const plusOne: AllocateInput = { ...netsDone, networks: [...netsDone.networks, { id: 'zz', spec: { name: 'zz', driver: 'overlay', attachable: false, encrypted: false, labels: {} } }] };
  figures.push({ name: `1 more network beside ${NETWORKS}`, value: time(5, () => allocate(plusOne)), unit: 'ms', higherIsBetter: false });
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatFigure } = await import('./figures.js');
  for (const f of await allocatorBench()) console.log(formatFigure(f));
}
