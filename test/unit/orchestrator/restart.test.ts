import t from 'tap';
import { Sim, serviceSpec, taskSpec } from './sim.js';
import { restartDecision } from '../../../control/orchestrator/restart.js';
import type { TaskObject } from '../../../control/store/objects.js';

const restart = (condition: 'none' | 'on-failure' | 'any', delayMs = 0, maxAttempts = 0, windowMs = 0) =>
  taskSpec({ restart: { condition, delayMs, maxAttempts, windowMs } });

function one(spec = restart('any')): Sim {
  const sim = new Sim();
  sim.addNode('n1');
  sim.createService('svc', serviceSpec({ replicas: 1, task: spec }));
  sim.settle();
  return sim;
}

function crash(sim: Sim, exitCode = 1): void {
  const x = sim.running('svc')[0]!;
  const { meta: _m, ...rest } = x;
  sim.apply([{ op: 'update', kind: 'task', object: { ...rest, status: { state: exitCode ? 'failed' : 'complete', message: 'exited', timestamp: sim.at, exitCode } } }]);
}

t.test('a failed task is replaced in the same slot after the restart delay', async (t) => {
  const sim = one(restart('any', 2000));
  crash(sim);
  sim.run(1500);
  t.equal(sim.running('svc').length, 0, 'not before the delay');
  t.ok(sim.wakeAt !== undefined, 'asks to be woken');
  sim.run(1000);
  t.equal(sim.running('svc').length, 1);
  t.equal(sim.running('svc')[0]!.slot, 1);
  const dead = sim.tasks('svc').filter((x) => x.status.state === 'failed');
  t.equal(dead.length, 1);
  t.equal(dead[0]!.desiredState, 'shutdown', 'the dead task is marked replaced');
});

t.test('condition none: never; on-failure: not after exit 0; any: always', async (t) => {
  let sim = one(restart('none'));
  crash(sim);
  sim.settle();
  t.equal(sim.tasks('svc').length, 1);
  t.equal(sim.running('svc').length, 0);

  sim = one(restart('on-failure'));
  crash(sim, 0);
  sim.settle();
  t.equal(sim.running('svc').length, 0, 'completed with 0: stays done');
  sim = one(restart('on-failure'));
  crash(sim, 3);
  sim.settle();
  t.equal(sim.running('svc').length, 1, 'failed: restarted');

  sim = one(restart('any'));
  crash(sim, 0);
  sim.settle();
  t.equal(sim.running('svc').length, 1, 'any: restarted even after exit 0');
});

t.test('maxAttempts: gives up after N restarts; a window lets it try again later', async (t) => {
  const sim = one(restart('any', 0, 3));
  for (let i = 0; i < 3; i++) {
    crash(sim);
    sim.settle();
    t.equal(sim.running('svc').length, 1, `restart ${i + 1}`);
  }
  crash(sim);
  sim.settle();
  t.equal(sim.running('svc').length, 0, 'gave up after 3 restarts');
  t.equal(sim.tasks('svc').length, 4, 'history keeps every attempt');

  const w = one(restart('any', 0, 2, 10_000));
  crash(w);
  w.settle();
  crash(w);
  w.settle();
  crash(w);
  w.settle(500, 100, 0);
  t.equal(w.running('svc').length, 0, 'two restarts within the window: given up');
  t.ok(w.wakeAt! > w.now, 'wakes when the oldest attempt leaves the window');
  w.run(10_500);
  t.equal(w.running('svc').length, 1, 'restarted once an attempt aged out');
});

t.test('restartDecision unit: attempts count only same-spec failures, not shutdowns', async (t) => {
  const base: TaskObject = {
    id: 'x', serviceId: 's', slot: 1, specVersion: 1, spec: restart('any', 100, 2), desiredState: 'running',
    status: { state: 'failed', message: '', timestamp: '2026-01-01T00:00:10.000Z' }, networks: [], createdAt: '2026-01-01T00:00:00.000Z',
  };
  const old = (state: TaskObject['status']['state'], spec = base.spec): TaskObject => ({ ...base, id: `o${Math.random()}`, spec, desiredState: 'shutdown', status: { ...base.status, state } });
  const now = Date.parse('2026-01-01T00:00:10.050Z');
  t.same(restartDecision(base, [], now), { kind: 'later', at: Date.parse(base.status.timestamp) + 100 });
  t.same(restartDecision(base, [], now + 100), { kind: 'now' });
  t.equal(restartDecision(base, [old('shutdown'), old('shutdown'), old('orphaned')], now + 100).kind, 'now');
  t.equal(restartDecision(base, [old('failed'), old('failed', restart('any', 5))], now + 100).kind, 'now', 'other spec not counted');
  t.equal(restartDecision(base, [old('failed'), old('rejected')], now + 100).kind, 'never');
});
