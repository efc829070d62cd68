import t from 'tap';
import fc from 'fast-check';
import { schedule, type NodeResources, type ScheduleInput } from '../../../control/scheduler/scheduler.js';
import { decisionsToOps } from '../../../control/scheduler/ops.js';
import type { NodeObject, ServiceObject, TaskObject, TaskSpec } from '../../../control/store/objects.js';

const node = (id: string, over: Partial<NodeObject> = {}): NodeObject => ({
  id, hostname: `h-${id}`, role: 'worker', availability: 'active', labels: {}, addr: '', state: 'ready', ...over,
});
const spec = (over: Partial<TaskSpec> = {}): TaskSpec => ({
  runtime: 'netns', restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], preferences: [] }, ...over,
});
let seq = 0;
const task = (serviceId: string, s: TaskSpec, over: Partial<TaskObject> = {}): TaskObject => {
  const id = `t${String(++seq).padStart(6, '0')}`;
  return {
    id, serviceId, slot: seq, specVersion: 1, spec: s, desiredState: 'running', networks: [], createdAt: '2026-01-01T00:00:00.000Z',
    status: { state: 'new', message: '', timestamp: '2026-01-01T00:00:00.000Z' }, ...over,
  };
};
const tasks = (n: number, serviceId: string, s: TaskSpec): TaskObject[] => Array.from({ length: n }, () => task(serviceId, s));
const count = (d: ReturnType<typeof schedule>): Record<string, number> => {
  const m: Record<string, number> = {};
  for (const a of d.assigned) m[a.nodeId] = (m[a.nodeId] ?? 0) + 1;
  return m;
};
const service = (id: string, ports: ServiceObject['spec']['endpoint']['ports']): ServiceObject => ({
  id, specVersion: 1,
  spec: {
    name: id, mode: 'replicated', replicas: 1, task: spec(), networks: [], endpoint: { mode: 'vip', ports },
    update: { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' },
    rollback: { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' },
  },
});

t.test('spread: 10 on 5 nodes is 2 each; existing tasks of the service count first, then all tasks', async (t) => {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => node(id));
  t.same(count(schedule({ nodes, tasks: tasks(10, 's', spec()) })), { n1: 2, n2: 2, n3: 2, n4: 2, n5: 2 });
  // n1 already runs 3 of s; n2 runs 5 of another service: s goes to n3, n4, n5 first, then n2 over n1
  const running = (svc: string, nodeId: string, k: number): TaskObject[] =>
    Array.from({ length: k }, () => task(svc, spec(), { nodeId, status: { state: 'running', message: '', timestamp: '' } }));
  const d = schedule({ nodes, tasks: [...running('s', 'n1', 3), ...running('o', 'n2', 5), ...tasks(4, 's', spec())] });
  t.same(d.assigned.map((a) => a.nodeId), ['n3', 'n4', 'n5', 'n2']);
  t.same(d.pending, []);
});

t.test('deterministic: same input, same output; ties broken by node id', async (t) => {
  const nodes = ['c', 'a', 'b'].map((id) => node(id));
  const ts = tasks(4, 's', spec());
  const d1 = schedule({ nodes, tasks: ts });
  const d2 = schedule({ nodes: [...nodes].reverse(), tasks: [...ts].reverse() });
  t.same(d1, d2);
  t.same(d1.assigned.map((a) => a.nodeId), ['a', 'b', 'c', 'a']);
});

t.test('availability and state filters; pending reason counts each node once', async (t) => {
  const nodes = [node('n1', { availability: 'drain' }), node('n2', { availability: 'pause' }), node('n3', { state: 'down' }),
    node('n4', { labels: { zone: 'b' } }), node('n5', { labels: { zone: 'b' } }), node('n6', { labels: { zone: 'a' }, role: 'manager' })];
  const s = spec({ placement: { constraints: ['node.labels.zone==a', 'node.role==worker'], preferences: [] } });
  const d = schedule({ nodes, tasks: tasks(2, 's', s) });
  t.same(d.assigned, []);
  t.equal(d.pending.length, 2);
  t.equal(d.pending[0]!.reason, 'no suitable node (3 nodes not available for new tasks, 2 nodes did not satisfy constraint node.labels.zone==a, 1 node did not satisfy constraint node.role==worker)');
  t.equal(schedule({ nodes: [], tasks: tasks(1, 's', spec()) }).pending[0]!.reason, 'no suitable node (no nodes in the cluster)');
  const bad = schedule({ nodes, tasks: tasks(1, 's', spec({ placement: { constraints: ['zone==a'], preferences: [] } })) });
  t.match(bad.pending[0]!.reason, /invalid constraint "zone==a"/);
});

t.test('resources: reservations fit node capacity; running tasks hold theirs', async (t) => {
  const nodes = [node('n1'), node('n2'), node('n3')];
  const capacity = new Map([['n1', { nanoCpus: 2e9, memoryBytes: 4e9 }], ['n2', { nanoCpus: 1e9, memoryBytes: 1e9 }]]);
  const s = spec({ resources: { nanoCpus: 1e9, memoryBytes: 1e9 } });
  const held = task('o', s, { nodeId: 'n1', status: { state: 'running', message: '', timestamp: '' } });
  const d = schedule({ nodes, capacity, tasks: [held, ...tasks(5, 's', s)] });
  t.same(count(d), { n1: 1, n2: 1, n3: 3 }, 'n3 is unlimited');
  const only = schedule({ nodes: nodes.slice(0, 2), capacity, tasks: [held, ...tasks(3, 's', s)] });
  t.same(count(only), { n1: 1, n2: 1 });
  t.equal(only.pending[0]!.reason, 'no suitable node (2 nodes had insufficient resources (cpu))');
  const mem = schedule({ nodes: [node('n1')], capacity: new Map([['n1', { memoryBytes: 1e9 }]]), tasks: tasks(2, 's', spec({ resources: { memoryBytes: 6e8 } })) });
  t.equal(mem.pending[0]!.reason, 'no suitable node (1 node had insufficient resources (memory))');
  const ended = task('o', s, { nodeId: 'n2', status: { state: 'failed', message: '', timestamp: '' } });
  t.same(count(schedule({ nodes: [node('n2')], capacity, tasks: [ended, ...tasks(1, 's', s)] })), { n2: 1 }, 'a dead task frees its reservation');
});

t.test('host-mode ports: one task per port and protocol per node', async (t) => {
  const nodes = [node('n1'), node('n2')];
  const services = [service('web', [{ published: 8080, target: 80, protocol: 'tcp', mode: 'host' }]), service('dns', [{ published: 8080, target: 53, protocol: 'udp', mode: 'host' }]), service('ing', [{ published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' }])];
  const d = schedule({ nodes, services, tasks: [...tasks(3, 'web', spec()), ...tasks(2, 'dns', spec()), ...tasks(3, 'ing', spec())] });
  t.equal(d.pending.length, 1);
  t.equal(d.pending[0]!.reason, 'no suitable node (2 nodes had host-mode port 8080/tcp in use)');
  t.equal(d.assigned.length, 7, 'udp does not clash with tcp; ingress ports are not per node');
});

t.test('spread preference over a label, then nodes; nodes without the label form their own group', async (t) => {
  const nodes = [node('a1', { labels: { zone: 'a' } }), node('a2', { labels: { zone: 'a' } }), node('a3', { labels: { zone: 'a' } }),
    node('b1', { labels: { zone: 'b' } }), node('x1')];
  const s = spec({ placement: { constraints: [], preferences: [{ spread: 'node.labels.zone' }] } });
  const d = schedule({ nodes, tasks: tasks(9, 's', s) });
  const per = count(d);
  t.equal((per.a1 ?? 0) + (per.a2 ?? 0) + (per.a3 ?? 0), 3, 'zone a gets a third');
  t.equal(per.b1, 3, 'zone b (one node) gets a third');
  t.equal(per.x1, 3, 'unlabelled nodes get a third');
  // two levels
  const two = spec({ placement: { constraints: [], preferences: [{ spread: 'node.labels.zone' }, { spread: 'node.labels.rack' }] } });
  const n2 = [node('a1', { labels: { zone: 'a', rack: '1' } }), node('a2', { labels: { zone: 'a', rack: '1' } }), node('a3', { labels: { zone: 'a', rack: '2' } }), node('b1', { labels: { zone: 'b', rack: '1' } })];
  const p = count(schedule({ nodes: n2, tasks: tasks(8, 's', two) }));
  t.same(p, { b1: 4, a3: 2, a1: 1, a2: 1 });
});

t.test('preassigned (global) tasks are checked against their node only', async (t) => {
  const nodes = [node('n1'), node('n2', { availability: 'pause' }), node('n3', { labels: { x: 'y' } })];
  const s = spec({ placement: { constraints: ['node.labels.x==y'], preferences: [] } });
  const ts = ['n1', 'n2', 'n3', 'n9'].map((id) => task('g', s, { nodeId: id, slot: 0 }));
  const d = schedule({ nodes, tasks: ts });
  t.same(d.assigned, [{ taskId: ts[2]!.id, nodeId: 'n3' }]);
  t.same(d.pending.map((p) => p.reason), ['node n1 did not satisfy constraint node.labels.x==y', 'node n2 not available for new tasks (pause)', 'node n9 not found']);
});

t.test('decisionsToOps: assigned tasks get node and state; unchanged pending reasons write nothing', async (t) => {
  const nodes = [node('n1', { state: 'down' })];
  const ts = tasks(1, 's', spec()).map((x) => ({ ...x, meta: { version: 7 } }));
  const byId = new Map(ts.map((x) => [x.id, x]));
  const d = schedule({ nodes, tasks: ts });
  const ops = decisionsToOps(d, byId, '2026-01-01T00:00:01.000Z');
  t.match(ops, [{ op: 'update', version: 7, object: { status: { state: 'pending' }, pendingReason: 'no suitable node (1 node not available for new tasks)' } }]);
  t.notOk('meta' in (ops[0] as { object: object }).object);
  const pend = { ...ts[0]!, status: { state: 'pending' as const, message: '', timestamp: '' }, pendingReason: d.pending[0]!.reason };
  t.same(decisionsToOps(schedule({ nodes, tasks: [pend] }), new Map([[pend.id, pend]]), 'x'), []);
  const up = schedule({ nodes: [node('n1')], tasks: [pend] });
  t.match(decisionsToOps(up, new Map([[pend.id, pend]]), 'at'), [{ object: { nodeId: 'n1', status: { state: 'assigned', timestamp: 'at' }, pendingReason: undefined } }]);
});

t.test('property: placements respect filters, and spread is even (max - min <= 1) among equal nodes', async (t) => {
  fc.assert(fc.property(
    fc.array(fc.record({ zone: fc.constantFrom('a', 'b', 'c'), avail: fc.constantFrom('active', 'active', 'pause', 'drain'), cpu: fc.constantFrom(undefined, 1, 2, 4) }), { minLength: 1, maxLength: 12 }),
    fc.integer({ min: 1, max: 40 }),
    fc.constantFrom<string[]>([], ['node.labels.zone!=c'], ['node.labels.zone==a']),
    (ns, k, constraints) => {
      const nodes = ns.map((x, i) => node(`n${String(i).padStart(2, '0')}`, { labels: { zone: x.zone }, availability: x.avail as NodeObject['availability'] }));
      const capacity = new Map<string, NodeResources>(ns.flatMap((x, i) => (x.cpu === undefined ? [] : [[`n${String(i).padStart(2, '0')}`, { nanoCpus: x.cpu * 1e9 }] as [string, NodeResources]])));
      const input: ScheduleInput = { nodes, capacity, tasks: tasks(k, 's', spec({ resources: { nanoCpus: 1e9 }, placement: { constraints, preferences: [] } })) };
      const d = schedule(input);
      if (d.assigned.length + d.pending.length !== k) return false;
      const per = count(d);
      const ok = nodes.filter((n) => n.availability === 'active' && (constraints.length === 0 || (constraints[0]!.includes('!=') ? n.labels.zone !== 'c' : n.labels.zone === 'a')));
      for (const [id, c] of Object.entries(per)) {
        const n = ok.find((x) => x.id === id);
        if (!n) return false;
        const cap = capacity.get(id)?.nanoCpus;
        if (cap !== undefined && c * 1e9 > cap) return false;
      }
      // unlimited eligible nodes: even spread among them
      const free = ok.filter((n) => !capacity.has(n.id)).map((n) => per[n.id] ?? 0);
      if (free.length > 0 && Math.max(...free) - Math.min(...free) > 1) return false;
      // a pending task means no eligible node had room
      if (d.pending.length > 0 && free.length > 0) return false;
      return true;
    },
  ), { numRuns: 300 });
  t.pass('property held');
});
