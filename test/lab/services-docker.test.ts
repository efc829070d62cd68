// The service scenarios with the docker runtime: a real dockerd (Debian's docker.io), an image
// imported by ID from a busybox root filesystem (never pulled), tasks with Docker's networking off.
import t from 'tap';
import { killNetnsProcesses } from '../../control/lab/daemons.js';
import { ensureDockerd, importTestImage } from '../docker/dockerd.js';
import { ServiceLab } from './services-helpers.js';

const lab = new ServiceLab(`mt${process.pid % 100000}k`, `198.19.${150 + (process.pid % 50)}.0/24`);
let image = '';

t.before(async () => {
  const d = await ensureDockerd();
  if (typeof d === 'string') throw new Error(`the docker runtime tests need a dockerd: ${d}`);
  t.teardown(() => d.stop());
  image = await importTestImage(d.docker);
  await lab.up(4, 1);
});
t.teardown(() => lab.down());

t.test('docker runtime: spread, a killed worker replaced, rolling update in batches, failing update rolled back', async (t) => {
  const c = await lab.meshctl('service', 'create', '--name', 'dweb', '--replicas', '8', '--update-parallelism', '2', '--update-delay', '1s', '--update-monitor', '1s', '--runtime', 'docker', '--image', image, '--command', 'httpd -f -p 80 -h /www');
  t.equal(c.code, 0, c.stderr + c.stdout);
  t.same(await lab.spread('dweb'), { n1: 2, n2: 2, n3: 2, n4: 2 });

  const t0 = Date.now();
  await killNetnsProcesses(lab.ns('n4'));
  await lab.until('replaced', 30_000, async () => {
    const s = await lab.spread('dweb');
    return !s.n4 && Object.values(s).reduce((a, b) => a + b, 0) === 8 ? true : undefined;
  });
  t.comment(`docker: kill -9 of n4's meshd to 8/8 running elsewhere in ${Date.now() - t0} ms`);

  const old = new Set((await lab.running('dweb')).map((x) => x.id));
  const u = await lab.meshctl('service', 'update', '--env', 'VERSION=2', 'dweb');
  t.equal(u.code, 0, u.stderr);
  const rows = (await lab.tasks('dweb')).tasks.filter((x) => x.desiredState === 'running' && !old.has(x.id));
  t.equal(rows.length, 8, 'every task replaced');
  const byStart = [...rows].sort((a, b) => Date.parse(a.since) - Date.parse(b.since));
  const batches: number[][] = [];
  let last = -Infinity;
  for (const r of byStart) {
    if (Date.parse(r.since) - last > 1200) batches.push([]);
    batches[batches.length - 1]!.push(r.slot);
    last = Date.parse(r.since);
  }
  t.same(batches.map((b) => [...b].sort((x, y) => x - y)), [[1, 2], [3, 4], [5, 6], [7, 8]], `batches of 2 in slot order: ${JSON.stringify(batches)}`);

  const bad = await lab.meshctl('service', 'update', '--command', 'sh -c "exit 3"', '--update-failure-action', 'rollback', '--restart-condition', 'none', 'dweb');
  t.equal(bad.code, 0, bad.stderr);
  await lab.until('rolled back', 90_000, async () => ((await lab.tasks('dweb')).service.updateStatus?.state === 'rollback_completed' ? true : undefined));
  const inspect = JSON.parse((await lab.meshctl('service', 'inspect', 'dweb')).stdout) as { spec: { task: { command: string[] } } };
  t.same(inspect.spec.task.command, ['httpd', '-f', '-p', '80', '-h', '/www']);
  await lab.until('8 running again', 60_000, async () => ((await lab.running('dweb')).length === 8 ? true : undefined));
  t.pass('8 tasks of the previous spec run');
  await lab.meshctl('service', 'rm', 'dweb');
});

t.test('docker runtime: drain moves containers, a constraint is obeyed', async (t) => {
  for (const [n, zone] of [['n1', 'a'], ['n2', 'a'], ['n3', 'b']]) await lab.meshctl('node', 'update', '--label-add', `zone=${zone}`, n!);
  const c = await lab.meshctl('service', 'create', '--name', 'dz', '--replicas', '4', '--constraint', 'node.labels.zone==a', '--runtime', 'docker', '--image', image, '--command', 'httpd -f -p 80 -h /www');
  t.equal(c.code, 0, c.stderr + c.stdout);
  t.same(await lab.spread('dz'), { n1: 2, n2: 2 });
  t.equal((await lab.meshctl('node', 'update', '--availability', 'drain', 'n2')).code, 0);
  await lab.until('moved off n2', 30_000, async () => {
    const s = await lab.spread('dz');
    return !s.n2 && s.n1 === 4 ? true : undefined;
  });
  t.pass('the drained node\'s containers moved to the only other zone=a node');
  await lab.meshctl('service', 'rm', 'dz');
});
