import t from 'tap';
import { Sim, serviceSpec, taskSpec } from './sim.js';
import { reconcile } from '../../../control/orchestrator/reconcile.js';

function fiveNodes(): Sim {
  const sim = new Sim();
  for (const id of ['n1', 'n2', 'n3', 'n4', 'n5']) sim.addNode(id);
  return sim;
}

t.test('10 replicas on 5 nodes: 2 per node, one task per slot 1..10', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 10 }));
  sim.settle();
  t.same(sim.perNode('svc'), { n1: 2, n2: 2, n3: 2, n4: 2, n5: 2 });
  t.same(sim.live('svc').map((x) => x.slot).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

t.test('a settled cluster reconciles to no ops (idempotent)', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 7 }));
  sim.settle();
  const r = reconcile({ services: sim.store.list('service'), tasks: sim.store.list('task'), nodes: sim.store.list('node'), now: sim.now, newId: () => 'x' });
  t.same(r.ops, []);
});

t.test('scale up fills missing slots; scale down shuts down the highest slots first', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 3 }));
  sim.settle();
  sim.updateSpec('svc', (s) => ({ ...s, replicas: 6 }));
  sim.settle();
  t.same(sim.running('svc').map((x) => x.slot).sort(), [1, 2, 3, 4, 5, 6]);
  t.equal(sim.created.length, 6, 'scaling did not replace existing tasks');
  sim.updateSpec('svc', (s) => ({ ...s, replicas: 2 }));
  sim.settle();
  t.same(sim.running('svc').map((x) => x.slot).sort(), [1, 2]);
  const gone = sim.tasks('svc').filter((x) => x.slot > 2);
  t.ok(gone.every((x) => x.desiredState === 'shutdown' && x.status.state === 'shutdown'));
  t.equal(sim.service('svc').updateStatus, undefined, 'a scale is not a rolling update');
});

t.test('drain moves tasks away; pause keeps them but takes no new ones', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 10 }));
  sim.settle();
  sim.setNode('n1', { availability: 'pause' });
  sim.settle();
  t.same(sim.perNode('svc'), { n1: 2, n2: 2, n3: 2, n4: 2, n5: 2 }, 'pause keeps tasks');
  sim.updateSpec('svc', (s) => ({ ...s, replicas: 14 }));
  sim.settle();
  t.equal(sim.perNode('svc').n1, 2, 'paused node took no new task');
  sim.setNode('n2', { availability: 'drain' });
  sim.settle();
  const per = sim.perNode('svc');
  t.equal(per.n2, undefined, 'drained node has no running task');
  t.equal(sim.running('svc').length, 14);
  t.same(sim.live('svc').map((x) => x.slot).sort((a, b) => a - b), Array.from({ length: 14 }, (_, i) => i + 1), 'same slots');
  const drained = sim.tasks('svc').filter((x) => x.nodeId === 'n2');
  t.ok(drained.every((x) => x.desiredState === 'shutdown' && x.status.state === 'shutdown'));
});

t.test('a node going down: its tasks are orphaned and replaced elsewhere in the same slots', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 10 }));
  sim.settle();
  const onN3 = sim.running('svc').filter((x) => x.nodeId === 'n3').map((x) => x.slot).sort();
  sim.setNode('n3', { state: 'down' });
  sim.settle();
  t.equal(sim.running('svc').length, 10);
  t.equal(sim.perNode('svc').n3, undefined);
  const orphans = sim.tasks('svc').filter((x) => x.nodeId === 'n3');
  t.ok(orphans.every((x) => x.status.state === 'orphaned' && x.desiredState === 'shutdown'));
  const replacedSlots = sim.running('svc').filter((x) => onN3.includes(x.slot)).map((x) => x.slot).sort();
  t.same(replacedSlots, onN3);
  // back up: spread rebalancing is not forced (like swarm), but new tasks prefer it
  sim.setNode('n3', { state: 'ready' });
  sim.updateSpec('svc', (s) => ({ ...s, replicas: 12 }));
  sim.settle();
  t.equal(sim.perNode('svc').n3, 2);
});

t.test('a removed node: tasks orphaned and replaced', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 5 }));
  sim.settle();
  sim.removeNode('n5');
  sim.settle();
  t.equal(sim.running('svc').length, 5);
  t.notOk(sim.running('svc').some((x) => x.nodeId === 'n5'));
});

t.test('node state unknown (after a leader change): tasks stay, nothing is replaced', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 5 }));
  sim.settle();
  const before = sim.created.length;
  sim.setNode('n1', { state: 'unknown' });
  sim.settle();
  t.equal(sim.created.length, before);
  t.equal(sim.live('svc').length, 5);
});

t.test('constraint node.labels.zone==a is obeyed; relabelling moves tasks', async (t) => {
  const sim = new Sim();
  sim.addNode('a1', { labels: { zone: 'a' } });
  sim.addNode('a2', { labels: { zone: 'a' } });
  sim.addNode('b1', { labels: { zone: 'b' } });
  sim.addNode('x1');
  sim.createService('svc', serviceSpec({ replicas: 6, task: taskSpec({ placement: { constraints: ['node.labels.zone==a'], preferences: [] } }) }));
  sim.settle();
  t.same(sim.perNode('svc'), { a1: 3, a2: 3 });
  sim.setNode('a2', { labels: { zone: 'b' } });
  sim.settle();
  t.same(sim.perNode('svc'), { a1: 6 });
});

t.test('pending tasks carry the reason; they are placed when a node fits', async (t) => {
  const sim = new Sim();
  sim.addNode('n1', { availability: 'drain' });
  sim.addNode('n2', { labels: { zone: 'b' } });
  sim.createService('svc', serviceSpec({ replicas: 2, task: taskSpec({ placement: { constraints: ['node.labels.zone==a'], preferences: [] } }) }));
  sim.settle();
  const pend = sim.tasks('svc');
  t.equal(pend.length, 2);
  t.ok(pend.every((x) => x.status.state === 'pending'));
  t.equal(pend[0]!.pendingReason, 'no suitable node (1 node not available for new tasks, 1 node did not satisfy constraint node.labels.zone==a)');
  sim.addNode('n3', { labels: { zone: 'a' } });
  sim.settle();
  t.same(sim.perNode('svc'), { n3: 2 });
  t.ok(sim.running('svc').every((x) => x.pendingReason === undefined));
});

t.test('service removed: tasks set to remove, then deleted once stopped', async (t) => {
  const sim = fiveNodes();
  sim.createService('svc', serviceSpec({ replicas: 4 }));
  sim.settle();
  sim.apply([{ op: 'delete', kind: 'service', id: 'svc' }]);
  sim.step();
  t.ok(sim.tasks('svc').every((x) => x.desiredState === 'remove'));
  sim.settle();
  t.equal(sim.tasks('svc').length, 0);
});
