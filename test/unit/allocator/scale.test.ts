import t from 'tap';
import { allocate } from '../../../control/allocator/allocate.js';
import type { TaskObject } from '../../../control/store/objects.js';
import { net, svc, task, World } from './fixtures.js';

t.test('a /16 gives out exactly 65,533 addresses (network, broadcast, gateway kept), then says so', async (t) => {
  const n = 65_534;
  const tasks = Array.from({ length: n }, (_, i) => task(`t${String(i).padStart(5, '0')}`, 's', ['big']));
  const t0 = Date.now();
  const r = allocate({ networks: [net('big', { subnet: '10.20.0.0/16' })], services: [svc('s', ['big'], { mode: 'dnsrr' })], tasks });
  const ms = Date.now() - t0;
  t.ok(ms < 3000, `65k tasks in ${ms} ms`);
  const got = r.ops.filter((o) => o.kind === 'task').map((o) => (o.object as TaskObject).networks[0]!.addresses[0]!);
  t.equal(got.length, 65_533);
  t.equal(new Set(got).size, got.length, 'all distinct');
  t.equal(got[0], '10.20.0.2');
  t.equal(got.at(-1), '10.20.255.254');
  t.notOk(got.includes('10.20.0.1') || got.includes('10.20.255.255') || got.includes('10.20.0.0'));
  t.match(r.errors, [{ kind: 'task', id: 't65533', message: /no free address on network "big" \(10\.20\.0\.0\/16\): the subnet is exhausted/ }]);
});

t.test('10,000 tasks, then replacing some: freed addresses are the lowest free, nothing else moves', async (t) => {
  const w = new World({ networks: [net('n', { subnet: '10.30.0.0/16' })], services: [svc('s', ['n'])], tasks: Array.from({ length: 10_000 }, (_, i) => task(`t${String(i).padStart(5, '0')}`, 's', ['n'])) });
  w.apply(allocate(w.input()).ops);
  const before = new Map([...w.tasks.values()].map((x) => [x.id, x.networks[0]!.addresses[0]!]));
  const freed = ['t00010', 't05000'].map((id) => before.get(id)!);
  w.tasks.delete('t00010');
  w.tasks.delete('t05000');
  w.tasks.set('u1', task('u1', 's', ['n']));
  w.tasks.set('u2', task('u2', 's', ['n']));
  w.tasks.set('u3', task('u3', 's', ['n']));
  const r = allocate(w.input());
  t.same(r.ops.map((o) => o.object.id), ['u1', 'u2', 'u3']);
  w.apply(r.ops);
  t.same(['u1', 'u2', 'u3'].map((id) => w.tasks.get(id)!.networks[0]!.addresses[0]), [...freed, '10.30.39.19']);
});
