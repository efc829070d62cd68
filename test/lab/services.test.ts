// Services on a 5-node lab of real meshd processes (1 manager, 4 workers), tasks run by the netns
// runtime: spread, drain and pause, constraints, global services and late joiners, a killed worker,
// a rolling update in batches, and a failing update that rolls itself back.
import t from 'tap';
import { killNetnsProcesses } from '../../control/lab/daemons.js';
import { ServiceLab, WORKLOAD } from './services-helpers.js';

const lab = new ServiceLab(`mt${process.pid % 100000}s`, `198.19.${100 + (process.pid % 50)}.0/24`);
const http = `${WORKLOAD} http --port 80`;

t.before(async () => {
  await lab.up(5, 1);
  for (const [n, zone] of [['n2', 'a'], ['n3', 'a'], ['n4', 'b'], ['n5', 'b']]) {
    const r = await lab.meshctl('node', 'update', '--label-add', `zone=${zone}`, n!);
    if (r.code !== 0) throw new Error(r.stderr);
  }
});
t.teardown(() => lab.down());

t.test('10 replicas spread 2 per node; drain moves tasks, pause keeps them', async (t) => {
  const c = await lab.meshctl('service', 'create', '--name', 'web', '--replicas', '10', '--command', http);
  t.equal(c.code, 0, c.stderr);
  t.match(c.stdout, /web: 10\/10 running/);
  t.match(c.stdout, /converged in/);
  t.same(await lab.spread('web'), { n1: 2, n2: 2, n3: 2, n4: 2, n5: 2 });

  t.equal((await lab.meshctl('node', 'update', '--availability', 'drain', 'n2')).code, 0);
  const { value: afterDrain } = await lab.until('n2 drained', 15_000, async () => {
    const s = await lab.spread('web');
    const total = Object.values(s).reduce((a, b) => a + b, 0);
    return !s.n2 && total === 10 ? s : undefined;
  });
  t.notOk(afterDrain.n2, 'no task left on the drained node');

  t.equal((await lab.meshctl('node', 'update', '--availability', 'pause', 'n3')).code, 0);
  const before = (await lab.spread('web')).n3;
  t.equal((await lab.meshctl('service', 'scale', 'web=14')).code, 0);
  const s = await lab.spread('web');
  t.equal(s.n3, before, 'a paused node keeps its tasks and gets no new ones');
  t.notOk(s.n2, 'a drained node gets no new tasks');
  t.equal(Object.values(s).reduce((a, b) => a + b, 0), 14);

  await lab.meshctl('node', 'update', '--availability', 'active', 'n2');
  await lab.meshctl('node', 'update', '--availability', 'active', 'n3');
  t.equal((await lab.meshctl('service', 'rm', 'web')).code, 0);
  await lab.until('web gone', 15_000, async () => ((await lab.meshctl('service', 'ls', '--format', 'json')).stdout.includes('"web"') ? undefined : true));
});

t.test('constraint node.labels.zone==a is obeyed; an impossible one stays pending with a reason', async (t) => {
  const c = await lab.meshctl('service', 'create', '--name', 'za', '--replicas', '4', '--constraint', 'node.labels.zone==a', '--command', http);
  t.equal(c.code, 0, c.stderr);
  t.same(await lab.spread('za'), { n2: 2, n3: 2 });
  const bad = await lab.meshctl('service', 'create', '--name', 'zc', '--replicas', '2', '--constraint', 'node.labels.zone==c', '--timeout', '2s', '--command', http);
  t.equal(bad.code, 1, 'create reports it did not converge');
  t.match(bad.stdout, /pending: no suitable node .*node\.labels\.zone==c/);
  const ps = await lab.meshctl('service', 'ps', 'zc');
  t.match(ps.stdout, /pending/);
  const invalid = await lab.meshctl('service', 'create', '--name', 'zx', '--constraint', 'zone=a', '--command', http);
  t.not(invalid.code, 0);
  t.match(invalid.stderr, /task\.placement\.constraints\.0: constraints look like/);
  const global = await lab.meshctl('service', 'create', '--name', 'gx', '--mode', 'global', '--replicas', '2', '--command', http);
  t.match(global.stderr, /replicas cannot be used with global mode/);
  await lab.meshctl('service', 'rm', 'za', 'zc');
});

t.test('a global service gets a task on a node that joins later', async (t) => {
  t.equal((await lab.meshctl('-H', `unix://${lab.sock('n5').socketPath}`, 'swarm', 'leave')).code, 0);
  await lab.until('n5 down', 10_000, async () => ((await lab.meshctl('node', 'ls', '--format', 'json')).stdout.match(/"hostname": "n5",\s*"status": "Down"/) ? true : undefined));
  t.equal((await lab.meshctl('node', 'rm', 'n5')).code, 0);
  const c = await lab.meshctl('service', 'create', '--name', 'agent', '--mode', 'global', '--command', http);
  t.equal(c.code, 0, c.stderr);
  t.same(await lab.spread('agent'), { n1: 1, n2: 1, n3: 1, n4: 1 });
  const tok = (await lab.meshctl('swarm', 'join-token', 'worker', '-q')).stdout.trim();
  const addr = `${lab.subnet.split('.').slice(0, 3).join('.')}.11:2377`;
  const j = await lab.meshctl('-H', `unix://${lab.sock('n5').socketPath}`, 'swarm', 'join', '--token', tok, addr);
  t.equal(j.code, 0, j.stderr);
  const { ms } = await lab.until('a task on n5', 15_000, async () => ((await lab.spread('agent')).n5 === 1 ? true : undefined));
  t.comment(`the late joiner ran its global task ${ms} ms after joining`);
  t.same(await lab.spread('agent'), { n1: 1, n2: 1, n3: 1, n4: 1, n5: 1 });
  await lab.meshctl('service', 'rm', 'agent');
});

t.test('kill -9 a worker\'s meshd: its tasks are replaced elsewhere', async (t) => {
  t.equal((await lab.meshctl('service', 'create', '--name', 'kv', '--replicas', '8', '--command', http)).code, 0);
  const onN4 = (await lab.spread('kv')).n4 ?? 0;
  t.ok(onN4 > 0, 'n4 runs some tasks');
  const t0 = Date.now();
  // The node dies: its daemon and its tasks (everything in its namespaces).
  for (const ns of [lab.ns('n4')]) await killNetnsProcesses(ns);
  const { ms } = await lab.until('replaced', 20_000, async () => {
    const s = await lab.spread('kv');
    return !s.n4 && Object.values(s).reduce((a, b) => a + b, 0) === 8 ? true : undefined;
  });
  t.comment(`kill -9 of n4's meshd to 8/8 running elsewhere: ${Date.now() - t0} ms (down detection is 3 missed 1 s heartbeats)`);
  t.ok(ms < 20_000);
  await lab.meshctl('service', 'rm', 'kv');
});

t.test('a rolling update of 10 tasks with parallelism 2 replaces them in batches of 2, in slot order', async (t) => {
  const c = await lab.meshctl('service', 'create', '--name', 'roll', '--replicas', '10', '--constraint', 'node.hostname!=n4', '--update-parallelism', '2', '--update-delay', '1s', '--update-monitor', '500ms', '--command', http);
  t.equal(c.code, 0, c.stderr);
  const old = new Set((await lab.running('roll')).map((x) => x.id));
  const u = await lab.meshctl('service', 'update', '--env', 'VERSION=2', 'roll');
  t.equal(u.code, 0, u.stderr);
  t.match(u.stdout, /10\/10 updated/);
  const fresh = (await lab.tasks('roll')).tasks.filter((x) => x.desiredState === 'running' && !old.has(x.id));
  t.equal(fresh.length, 10, 'every task was replaced');
  // Group new tasks by when they started: each batch is 2 tasks of consecutive slots.
  const rows = (await lab.tasks('roll')).tasks.filter((x) => !old.has(x.id) && x.desiredState === 'running');
  const byStart = [...rows].sort((a, b) => Date.parse(a.since) - Date.parse(b.since));
  const batches: number[][] = [];
  let lastT = -Infinity;
  for (const r of byStart) {
    const at = Date.parse(r.since);
    if (at - lastT > 700) batches.push([]);
    batches[batches.length - 1]!.push(r.slot);
    lastT = at;
  }
  t.equal(batches.length, 5, `5 batches: ${JSON.stringify(batches)}`);
  t.ok(batches.every((b) => b.length === 2), 'each batch holds 2 tasks');
  t.same(batches.map((b) => [...b].sort((x, y) => x - y)), [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], 'batches go in slot order');
});

t.test('a failing update with failure action rollback returns to the previous spec by itself', async (t) => {
  const u = await lab.meshctl('service', 'update', '--command', 'sh -c "exit 3"', '--update-failure-action', 'rollback', '--update-monitor', '2s', '--restart-condition', 'none', 'roll');
  t.equal(u.code, 0, u.stderr);
  const { value } = await lab.until('rolled back', 60_000, async () => {
    const s = (await lab.tasks('roll')).service;
    return s.updateStatus?.state === 'rollback_completed' ? s : undefined;
  });
  t.equal(value.updateStatus?.state, 'rollback_completed');
  const inspect = JSON.parse((await lab.meshctl('service', 'inspect', 'roll')).stdout) as { spec: { task: { command: string[]; env: Record<string, string> } } };
  t.same(inspect.spec.task.command, [WORKLOAD, 'http', '--port', '80'], 'the spec is the previous one again');
  t.equal(inspect.spec.task.env.VERSION, '2');
  await lab.until('10 running again', 30_000, async () => ((await lab.running('roll')).length === 10 ? true : undefined));
  t.pass('10 tasks of the previous spec run');
});

t.test('service logs gathers every task\'s output from the nodes that run them', async (t) => {
  const r = await lab.meshctl('service', 'logs', '--tail', '5', 'roll');
  t.equal(r.code, 0, r.stderr);
  const tasks = new Set(r.stdout.split('\n').filter((l) => /listening on 80/.test(l)).map((l) => l.split('@')[0]));
  t.equal(tasks.size, 10, `lines from all 10 tasks: ${[...tasks].join(' ')}`);
  t.match(r.stdout, /^roll\.\d+@n\d+ +\| workload http/m);
});
