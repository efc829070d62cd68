import t from 'tap';
import { Sim, serviceSpec, taskSpec, updateConfig } from './sim.js';
import type { TaskObject } from '../../../control/store/objects.js';

const cmd = (x: TaskObject): string => x.spec.command?.join(' ') ?? '';

function cluster(replicas: number, over: Parameters<typeof serviceSpec>[0] = {}): Sim {
  const sim = new Sim();
  for (const id of ['n1', 'n2', 'n3', 'n4', 'n5']) sim.addNode(id);
  sim.createService('svc', serviceSpec({ replicas, task: taskSpec({ command: ['v1'] }), ...over }));
  sim.settle();
  return sim;
}

t.test('rolling update of 10 tasks, parallelism 2: batches of 2, in slot order, then completed', async (t) => {
  const sim = cluster(10, { update: updateConfig({ parallelism: 2, delayMs: 1000, monitorMs: 500 }) });
  const before = sim.created.length;
  sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['v2'] } }));
  // record which slots have a v2 task running at each step: it grows by 2 at a time
  const seen: number[][] = [];
  for (let i = 0; i < 300; i++) {
    sim.step();
    const v2 = sim.running('svc').filter((x) => cmd(x) === 'v2').map((x) => x.slot).sort((a, b) => a - b);
    if (seen.length === 0 || seen[seen.length - 1]!.length !== v2.length) seen.push(v2);
    if (sim.service('svc').updateStatus?.state === 'completed') break;
  }
  t.same(seen.slice(1), [[1, 2], [1, 2, 3, 4], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
  const made = sim.created.slice(before);
  t.same(made.map((x) => x.slot), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'created in slot order');
  t.ok(made.every((x) => cmd(x) === 'v2'));
  // batches are at least monitor + delay apart
  const times = made.map((x) => Date.parse(x.createdAt));
  for (let i = 2; i < times.length; i += 2) t.ok(times[i]! - times[i - 2]! >= 1500, `batch ${i / 2} waited for monitor + delay`);
  t.equal(times[1], times[0], 'a batch starts together');
  const st = sim.service('svc').updateStatus!;
  t.equal(st.state, 'completed');
  t.ok(st.completedAt);
  t.equal(sim.running('svc').length, 10);
  t.ok(sim.running('svc').every((x) => cmd(x) === 'v2'));
});

t.test('stop-first never runs more than replicas; start-first never fewer', async (t) => {
  for (const order of ['stop-first', 'start-first'] as const) {
    const sim = cluster(4, { update: updateConfig({ parallelism: 1, order }) });
    sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['v2'] } }));
    let min = Infinity;
    let max = 0;
    for (let i = 0; i < 200 && sim.service('svc').updateStatus?.state !== 'completed'; i++) {
      sim.step();
      const running = sim.tasks('svc').filter((x) => x.status.state === 'running').length;
      min = Math.min(min, running);
      max = Math.max(max, running);
    }
    t.equal(sim.service('svc').updateStatus?.state, 'completed', order);
    if (order === 'stop-first') t.ok(max <= 4 && min === 3, `stop-first: ${min}..${max} running`);
    else t.ok(min >= 4 && max === 5, `start-first: ${min}..${max} running`);
    t.ok(sim.running('svc').every((x) => cmd(x) === 'v2'));
  }
});

t.test('a failing update with failureAction rollback returns to the previous spec by itself', async (t) => {
  const sim = cluster(10, {
    update: updateConfig({ parallelism: 2, failureAction: 'rollback', monitorMs: 1000 }),
    rollback: updateConfig({ parallelism: 5 }),
  });
  sim.behaviour = (x) => (cmd(x) === 'bad' ? 'fail' : 'run');
  sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['bad'] } }));
  const states: string[] = [];
  for (let i = 0; i < 300; i++) {
    sim.step();
    const st = sim.service('svc').updateStatus?.state ?? '-';
    if (states[states.length - 1] !== st) states.push(st);
    if (st === 'rollback_completed') break;
  }
  t.same(states, ['updating', 'rollback_started', 'rollback_completed']);
  const s = sim.service('svc');
  t.same(s.spec.task.command, ['v1']);
  t.same(s.previousSpec?.task.command, ['bad']);
  t.match(s.updateStatus?.message, /rollback completed/);
  sim.settle();
  t.equal(sim.running('svc').length, 10);
  t.ok(sim.running('svc').every((x) => cmd(x) === 'v1'));
  const bad = sim.created.filter((x) => cmd(x) === 'bad');
  t.ok(bad.length >= 2 && bad.length <= 4, `only the first batch tried the bad spec (${bad.length} tasks)`);
});

t.test('failureAction pause stops the update; a new update resumes; maxFailureRatio tolerates some', async (t) => {
  const sim = cluster(4, { update: updateConfig({ parallelism: 1, failureAction: 'pause', monitorMs: 1000 }) });
  sim.behaviour = (x) => (cmd(x) === 'bad' ? 'fail' : 'run');
  sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['bad'], restart: { ...s.task.restart, condition: 'none' } } }));
  sim.settle();
  const st = sim.service('svc').updateStatus!;
  t.equal(st.state, 'paused');
  t.match(st.message, /update paused due to failure \(task t\d+ failed/);
  t.equal(sim.tasks('svc').filter((x) => cmd(x) === 'bad').length, 1, 'paused after the first failed task');
  t.equal(sim.running('svc').length, 3, 'the rest keep running the old spec');
  sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['v3'] } }));
  sim.settle();
  t.equal(sim.service('svc').updateStatus?.state, 'completed');
  t.equal(sim.running('svc').length, 4);
  t.ok(sim.running('svc').every((x) => cmd(x) === 'v3'));

  // ratio 0.5 of 4 slots: up to 2 failures are tolerated
  const sim2 = cluster(4, { update: updateConfig({ parallelism: 1, failureAction: 'pause', maxFailureRatio: 0.5 }) });
  let n = 0;
  sim2.behaviour = (x) => (cmd(x) === 'v2' && x.status.state === 'assigned' && n++ < 2 ? 'fail' : 'run');
  sim2.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['v2'] } }));
  sim2.settle();
  t.equal(sim2.service('svc').updateStatus?.state, 'completed');
  t.ok(sim2.running('svc').every((x) => cmd(x) === 'v2'));
});

t.test('failureAction continue carries on past failures', async (t) => {
  const sim = cluster(3, { update: updateConfig({ parallelism: 1, failureAction: 'continue' }) });
  sim.behaviour = (x) => (cmd(x) === 'bad' ? 'fail' : 'run');
  sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['bad'], restart: { ...s.task.restart, condition: 'none' } } }));
  sim.settle();
  t.equal(sim.service('svc').updateStatus?.state, 'completed');
  t.equal(sim.tasks('svc').filter((x) => cmd(x) === 'bad').length, 3);
});

t.test('service rollback: swap to previous spec with the rollback config', async (t) => {
  const sim = cluster(4, { update: updateConfig({ parallelism: 1 }), rollback: updateConfig({ parallelism: 4 }) });
  sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: ['v2'] } }));
  sim.settle();
  t.equal(sim.service('svc').updateStatus?.state, 'completed');
  const before = sim.created.length;
  sim.rollback('svc');
  t.equal(sim.service('svc').updateStatus?.state, 'rollback_started');
  sim.step();
  const made = sim.created.slice(before);
  sim.settle();
  t.equal(sim.service('svc').updateStatus?.state, 'rollback_completed');
  t.ok(sim.running('svc').every((x) => cmd(x) === 'v1'));
  t.equal(sim.created.length - before, 4);
  t.ok(made.length === 0 || made.length === 4, 'rollback parallelism 4: one batch');
  t.throws(() => sim.rollback('none'), 'no such service');
});

t.test('a rolling update of a global service goes node by node', async (t) => {
  const sim = new Sim();
  for (const id of ['n1', 'n2', 'n3']) sim.addNode(id);
  sim.createService('g', serviceSpec({ mode: 'global', replicas: 0, task: taskSpec({ command: ['v1'] }), update: updateConfig({ parallelism: 1 }) }));
  sim.settle();
  const before = sim.created.length;
  sim.updateSpec('g', (s) => ({ ...s, task: { ...s.task, command: ['v2'] } }));
  sim.settle();
  t.same(sim.created.slice(before).map((x) => x.nodeId), ['n1', 'n2', 'n3']);
  t.equal(sim.service('g').updateStatus?.state, 'completed');
  t.same(sim.perNode('g'), { n1: 1, n2: 1, n3: 1 });
});

t.test('task history is bounded per slot', async (t) => {
  const sim = cluster(1, { update: updateConfig({ parallelism: 1 }) });
  for (let v = 2; v <= 10; v++) {
    sim.updateSpec('svc', (s) => ({ ...s, task: { ...s.task, command: [`v${v}`] } }));
    sim.settle();
  }
  const all = sim.tasks('svc');
  t.equal(all.filter((x) => x.desiredState === 'running').length, 1);
  t.equal(all.length, 6, 'one live + 5 dead');
  t.same(all.filter((x) => x.desiredState !== 'running').map(cmd).sort(), ['v5', 'v6', 'v7', 'v8', 'v9'], 'the newest dead are kept');
});
