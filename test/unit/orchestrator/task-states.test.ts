import t from 'tap';
import fc from 'fast-check';
import { TASK_STATES, applyAgentReport, canTransition, checkAgentReport, isTerminal, stateOrder } from '../../../control/orchestrator/task-states.js';
import type { TaskObject, TaskState } from '../../../control/store/objects.js';

const task = (state: TaskState, nodeId = 'n1'): TaskObject => ({
  id: 't1', serviceId: 's', slot: 1, nodeId, specVersion: 1, desiredState: 'running', networks: [], createdAt: '2026-01-01T00:00:00.000Z',
  spec: { runtime: 'netns', restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], preferences: [] } },
  status: { state, message: '', timestamp: '2026-01-01T00:00:00.000Z' },
});

t.test('the lifecycle moves forward only; terminal states are final', async (t) => {
  t.ok(canTransition('new', 'pending'));
  t.ok(canTransition('assigned', 'running'), 'skipping states is fine');
  t.ok(canTransition('running', 'complete'));
  t.ok(canTransition('starting', 'failed'));
  t.ok(canTransition('preparing', 'rejected'));
  t.notOk(canTransition('running', 'rejected'));
  t.notOk(canTransition('running', 'starting'));
  for (const s of ['complete', 'failed', 'shutdown', 'rejected', 'orphaned'] as const) {
    t.ok(isTerminal(s));
    for (const to of TASK_STATES) t.notOk(canTransition(s, to), `${s} -> ${to}`);
  }
  fc.assert(fc.property(fc.constantFrom(...TASK_STATES), fc.constantFrom(...TASK_STATES), (a, b) => {
    if (canTransition(a, b)) return stateOrder(b) > stateOrder(a) || (isTerminal(b) && !isTerminal(a));
    return true;
  }));
});

t.test('agent reports: only for its own tasks, only agent states, only forward', async (t) => {
  t.match(checkAgentReport(task('assigned'), 'n2', { state: 'running' }), { ok: false, error: /not assigned to node n2/ });
  t.match(checkAgentReport(task('assigned'), 'n1', { state: 'orphaned' }), { ok: false, error: /may not report/ });
  t.match(checkAgentReport(task('pending'), 'n1', { state: 'running' }), { ok: false, error: /not yet assigned/ });
  t.match(checkAgentReport(task('running'), 'n1', { state: 'starting' }), { ok: false, error: /cannot go from running to starting/ });
  t.match(checkAgentReport(task('failed'), 'n1', { state: 'running' }), { ok: false, error: /already failed/ });
  t.same(checkAgentReport(task('running'), 'n1', { state: 'running' }), { ok: true, change: false });
  const r = applyAgentReport(task('starting'), 'n1', { state: 'failed', exitCode: 2, err: 'boom' }, '2026-01-01T00:00:05.000Z');
  t.match(r, { ok: true, unchanged: false, task: { status: { state: 'failed', exitCode: 2, err: 'boom', timestamp: '2026-01-01T00:00:05.000Z' } } });
  const same = applyAgentReport(task('running'), 'n1', { state: 'running' }, '2026-01-01T00:00:09.000Z');
  t.match(same, { ok: true, unchanged: true, task: { status: { timestamp: '2026-01-01T00:00:00.000Z' } } }, 'repeat keeps running-since');
});
