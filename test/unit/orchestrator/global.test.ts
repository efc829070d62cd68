import t from 'tap';
import { Sim, serviceSpec, taskSpec } from './sim.js';

const globalSpec = (constraints: string[] = []) => serviceSpec({ mode: 'global', replicas: 0, task: taskSpec({ placement: { constraints, preferences: [] } }) });

t.test('global: one task per eligible node, including nodes that join later', async (t) => {
  const sim = new Sim();
  sim.addNode('n1');
  sim.addNode('n2');
  sim.createService('g', globalSpec());
  sim.settle();
  t.same(sim.perNode('g'), { n1: 1, n2: 1 });
  t.ok(sim.tasks('g').every((x) => x.slot === 0));
  sim.addNode('n3');
  sim.settle();
  t.same(sim.perNode('g'), { n1: 1, n2: 1, n3: 1 });
});

t.test('global: drained, down and removed nodes lose their task; back to active gets one again', async (t) => {
  const sim = new Sim();
  for (const id of ['n1', 'n2', 'n3', 'n4']) sim.addNode(id);
  sim.createService('g', globalSpec());
  sim.settle();
  sim.setNode('n1', { availability: 'drain' });
  sim.setNode('n2', { state: 'down' });
  sim.removeNode('n3');
  sim.settle();
  t.same(sim.perNode('g'), { n4: 1 });
  t.ok(sim.tasks('g').filter((x) => x.nodeId === 'n1').every((x) => x.status.state === 'shutdown'));
  t.ok(sim.tasks('g').filter((x) => x.nodeId === 'n2').every((x) => x.status.state === 'orphaned'));
  t.equal(sim.tasks('g').filter((x) => x.nodeId === 'n3').length, 0, 'a removed node keeps no history');
  sim.setNode('n1', { availability: 'active' });
  sim.setNode('n2', { state: 'ready' });
  sim.settle();
  t.same(sim.perNode('g'), { n1: 1, n2: 1, n4: 1 });
});

t.test('global: pause keeps the task; a new global service on a paused node stays pending', async (t) => {
  const sim = new Sim();
  sim.addNode('n1');
  sim.addNode('n2');
  sim.createService('g', globalSpec());
  sim.settle();
  sim.setNode('n1', { availability: 'pause' });
  sim.settle();
  t.same(sim.perNode('g'), { n1: 1, n2: 1 });
  sim.createService('h', globalSpec());
  sim.settle();
  t.same(sim.perNode('h'), { n2: 1 });
  const p = sim.tasks('h').find((x) => x.nodeId === 'n1')!;
  t.equal(p.status.state, 'pending');
  t.equal(p.pendingReason, 'node n1 not available for new tasks (pause)');
});

t.test('global: constraints choose the nodes; relabelling adds and removes tasks', async (t) => {
  const sim = new Sim();
  sim.addNode('n1', { labels: { gpu: 'yes' } });
  sim.addNode('n2');
  sim.addNode('n3', { role: 'manager', labels: { gpu: 'yes' } });
  sim.createService('g', globalSpec(['node.labels.gpu==yes', 'node.role!=manager']));
  sim.settle();
  t.same(sim.perNode('g'), { n1: 1 });
  sim.setNode('n2', { labels: { gpu: 'yes' } });
  sim.setNode('n1', { labels: {} });
  sim.settle();
  t.same(sim.perNode('g'), { n2: 1 });
});

t.test('global: a failed task restarts on the same node', async (t) => {
  const sim = new Sim();
  sim.addNode('n1');
  sim.createService('g', globalSpec());
  sim.settle();
  const x = sim.running('g')[0]!;
  const { meta: _m, ...rest } = x;
  sim.apply([{ op: 'update', kind: 'task', object: { ...rest, status: { state: 'failed', message: 'boom', timestamp: sim.at, exitCode: 1 } } }]);
  sim.settle();
  t.equal(sim.running('g').length, 1);
  t.not(sim.running('g')[0]!.id, x.id);
  t.equal(sim.running('g')[0]!.nodeId, 'n1');
});
