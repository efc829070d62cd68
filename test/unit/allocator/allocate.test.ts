import t from 'tap';
import fc from 'fast-check';
import { allocate } from '../../../control/allocator/allocate.js';
import type { TaskObject } from '../../../control/store/objects.js';
import { net, node, port, svc, task, World } from './fixtures.js';

const A = { vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1' };
const B = { vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const ING = { vni: 4098, subnet: '10.255.0.0/16', gateway: '10.255.0.1' };

const addrs = (w: World, id: string): string[][] => w.tasks.get(id)!.networks.map((e) => e.addresses);

t.test('one VIP per service per network, one address per task per network; names or ids as targets', async (t) => {
  const w = new World({
    networks: [net('na', { name: 'app' }, A), net('nb', { name: 'back' }, B)],
    services: [svc('s1', ['app', 'nb'])],
    tasks: [task('t1', 's1', ['app', 'nb']), task('t2', 's1', ['app', 'nb'])],
  });
  const r = allocate(w.input());
  t.same(r.errors, []);
  w.apply(r.ops);
  t.same(w.services.get('s1')!.endpointVips, [{ network: 'na', addr: '10.0.0.2' }, { network: 'nb', addr: '10.0.1.2' }]);
  t.same(addrs(w, 't1'), [['10.0.0.3'], ['10.0.1.3']]);
  t.same(addrs(w, 't2'), [['10.0.0.4'], ['10.0.1.4']]);
  t.same(w.tasks.get('t1')!.networks.map((e) => e.network), ['app', 'nb'], 'the task keeps its network keys');
  t.same(allocate(w.input()), { ops: [], errors: [] }, 'idempotent');
});

t.test('networks and objects allocated in one pass; deterministic whatever the input order', async (t) => {
  const mk = (rev: boolean): string => {
    const networks = [net('n1'), net('n2')];
    const services = [svc('s1', ['n1']), svc('s2', ['n1', 'n2'])];
    const tasks = [task('a', 's1', ['n1']), task('b', 's2', ['n1', 'n2']), task('c', 's2', ['n1', 'n2'])];
    const r = rev ? allocate({ networks: networks.reverse(), services: services.reverse(), tasks: tasks.reverse() }) : allocate({ networks, services, tasks });
    const w = new World();
    w.apply(r.ops);
    return JSON.stringify({ n: [...w.networks.values()].sort((x, y) => x.id.localeCompare(y.id)), s: [...w.services.values()].sort((x, y) => x.id.localeCompare(y.id)), t: [...w.tasks.values()].sort((x, y) => x.id.localeCompare(y.id)) });
  };
  t.equal(mk(false), mk(true));
  t.match(mk(false), /"endpointVips":\[\{"network":"n1","addr":"10.0.0.2"\}\]/);
});

t.test('dnsrr services get no VIP; switching to dnsrr releases it', async (t) => {
  const w = new World({ networks: [net('na', {}, A)], services: [svc('s1', ['na'], { mode: 'dnsrr' })], tasks: [task('t1', 's1', ['na'])] });
  w.apply(allocate(w.input()).ops);
  t.equal(w.services.get('s1')!.endpointVips, undefined);
  t.same(addrs(w, 't1'), [['10.0.0.2']]);
  const s2 = svc('s2', ['na']);
  w.services.set('s2', s2);
  w.apply(allocate(w.input()).ops);
  t.same(w.services.get('s2')!.endpointVips, [{ network: 'na', addr: '10.0.0.3' }]);
  w.services.set('s2', { ...w.services.get('s2')!, spec: { ...s2.spec, endpoint: { mode: 'dnsrr', ports: [] } } });
  const r = allocate(w.input());
  t.equal(r.ops.length, 1);
  w.apply(r.ops);
  t.equal(w.services.get('s2')!.endpointVips, undefined);
});

t.test('addresses are never reused while held; freed by deletion or a final stop, not by orphaning', async (t) => {
  const w = new World({ networks: [net('na', {}, A)], services: [svc('s1', ['na'], { mode: 'dnsrr' })], tasks: ['t1', 't2', 't3', 't4'].map((id) => task(id, 's1', ['na'])) });
  w.apply(allocate(w.input()).ops);
  t.same(['t1', 't2', 't3', 't4'].map((id) => addrs(w, id)[0]![0]), ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
  const set = (id: string, state: TaskObject['status']['state']): void => {
    const x = w.tasks.get(id)!;
    w.tasks.set(id, { ...x, status: { ...x.status, state } });
  };
  w.tasks.delete('t1'); // deleted: free
  set('t2', 'failed'); // stopped for good: free (its record keeps the address, for inspection)
  set('t3', 'orphaned'); // its node may still run it: held
  set('t4', 'running');
  for (const id of ['n1', 'n2', 'n3']) w.tasks.set(id, task(id, 's1', ['na']));
  const r = allocate(w.input());
  t.equal(r.ops.length, 3, 'only the new tasks change');
  w.apply(r.ops);
  t.same(['n1', 'n2', 'n3'].map((id) => addrs(w, id)[0]![0]), ['10.0.0.2', '10.0.0.3', '10.0.0.6']);
  t.same(addrs(w, 't2'), [['10.0.0.3']], 'the failed task record is not rewritten');
});

t.test('tasks not meant to run, or of deleted services, get no new addresses but hold theirs', async (t) => {
  const shut = { ...task('t1', 's1', ['na']), desiredState: 'shutdown' as const };
  const orphan = task('t2', 'gone', ['na'], 'running', [['10.0.0.2']]);
  const r = allocate({ networks: [net('na', {}, A)], services: [svc('s1', ['na'], { mode: 'dnsrr' })], tasks: [shut, orphan, task('t3', 's1', ['na'])] });
  t.same(r.ops.map((o) => [o.object.id, (o.object as TaskObject).networks]), [['t3', [{ network: 'na', addresses: ['10.0.0.3'] }]]]);
});

t.test('a service leaving a network releases its VIP there; a deleted service releases all', async (t) => {
  const w = new World({ networks: [net('na', {}, A), net('nb', {}, B)], services: [svc('s1', ['na', 'nb']), svc('s2', ['nb'])] });
  w.apply(allocate(w.input()).ops);
  t.same(w.services.get('s2')!.endpointVips, [{ network: 'nb', addr: '10.0.1.3' }]);
  w.services.set('s1', { ...w.services.get('s1')!, spec: svc('s1', ['na']).spec });
  w.services.delete('s2');
  w.services.set('s3', svc('s3', ['nb']));
  w.apply(allocate(w.input()).ops);
  t.same(w.services.get('s1')!.endpointVips, [{ network: 'na', addr: '10.0.0.2' }]);
  t.same(w.services.get('s3')!.endpointVips, [{ network: 'nb', addr: '10.0.1.2' }]);
});

t.test('ip-range bounds task and VIP addresses; exhaustion is a clear error', async (t) => {
  const n = net('na', { name: 'small', subnet: '10.9.0.0/24', ipRange: '10.9.0.64/30' });
  const r = allocate({ networks: [n], services: [svc('s1', ['na'])], tasks: ['t1', 't2', 't3', 't4'].map((id) => task(id, 's1', ['na'])) });
  const w = new World();
  w.apply(r.ops);
  t.same(w.services.get('s1')!.endpointVips, [{ network: 'na', addr: '10.9.0.64' }]);
  t.same(['t1', 't2', 't3'].map((id) => addrs(w, id)[0]![0]), ['10.9.0.65', '10.9.0.66', '10.9.0.67']);
  t.notOk(w.tasks.has('t4'));
  t.match(r.errors, [{ kind: 'task', id: 't4', field: 'networks', message: /no free address on network "small" \(10\.9\.0\.0\/24, ip-range 10\.9\.0\.64\/30\): the subnet is exhausted/ }]);
  const r2 = allocate({ networks: [net('na', { name: 'tiny', subnet: '10.9.0.0/29' })], services: ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => svc(id, ['na'])), tasks: [] });
  t.match(r2.errors, [{ kind: 'service', id: 'f', field: 'networks', message: /VIP: no free address on network "tiny"/ }]);
});

t.test('unknown or unallocated networks are errors on the service and task', async (t) => {
  const r = allocate({ networks: [net('bad', { subnet: 'nope' })], services: [svc('s1', ['missing', 'bad'])], tasks: [task('t1', 's1', ['missing', 'bad'])] });
  t.match(r.errors, [
    { kind: 'network', id: 'bad', field: 'subnet' },
    { kind: 'service', id: 's1', field: 'networks', message: /network "missing" not found/ },
    { kind: 'service', id: 's1', field: 'networks', message: /network "bad" has no addresses yet/ },
    { kind: 'task', id: 't1', message: /network "missing" not found/ },
    { kind: 'task', id: 't1', message: /network "bad" has no addresses yet/ },
  ]);
  t.same(r.ops, []);
});

t.test('a corrupt store (one address held twice) is repaired for the later task and reported', async (t) => {
  const w = new World({
    networks: [net('na', {}, A)], services: [svc('s1', ['na'], { mode: 'dnsrr' })],
    tasks: [task('t1', 's1', ['na'], 'running', [['10.0.0.2']]), task('t2', 's1', ['na'], 'running', [['10.0.0.2']]), task('t3', 's1', ['na'], 'running', [['10.0.0.1']])],
  });
  const r = allocate(w.input());
  t.match(r.errors, [{ id: 't2', message: /10\.0\.0\.2 is already in use; reallocating/ }, { id: 't3', message: /10\.0\.0\.1 is already in use/ }]);
  w.apply(r.ops);
  t.same([addrs(w, 't1'), addrs(w, 't2'), addrs(w, 't3')], [[['10.0.0.2']], [['10.0.0.3']], [['10.0.0.4']]]);
  t.same(allocate(w.input()), { ops: [], errors: [] });
});

t.test('ingress: published services get a VIP on ingress and unstarted tasks an ingress address', async (t) => {
  const w = new World({
    networks: [net('ing', { name: 'ingress', ingress: true }, ING), net('na', {}, A)],
    services: [svc('web', ['na'], { ports: [port(8080)] }), svc('h', ['na'], { ports: [port(9000, 80, 'tcp', 'host')] })],
    tasks: [task('t1', 'web', ['na']), task('t2', 'web', ['na'], 'running', [['10.0.0.9']]), task('t3', 'h', ['na'])],
  });
  const r = allocate(w.input());
  t.same(r.errors, []);
  w.apply(r.ops);
  t.same(w.services.get('web')!.endpointVips, [{ network: 'na', addr: '10.0.0.3' }, { network: 'ing', addr: '10.255.0.2' }]);
  t.same(w.services.get('web')!.endpointPorts, [port(8080)]);
  t.same(w.tasks.get('t1')!.networks, [{ network: 'na', addresses: ['10.0.0.4'] }, { network: 'ing', addresses: ['10.255.0.3'] }]);
  t.same(w.tasks.get('t2')!.networks, [{ network: 'na', addresses: ['10.0.0.9'] }], 'a running task cannot gain an interface');
  t.same(w.services.get('h')!.endpointVips, [{ network: 'na', addr: '10.0.0.2' }], 'host mode: no ingress (services go in id order)');
  t.equal(w.services.get('h')!.endpointPorts, undefined);
  t.same(allocate(w.input()), { ops: [], errors: [] });
  const r2 = allocate({ networks: [net('na', {}, A)], services: [svc('web', ['na'], { ports: [port(8080)] })], tasks: [] });
  t.match(r2.errors, [{ id: 'web', field: 'endpoint.ports', message: /need the ingress network/ }]);
});

t.test('nodes get one ingress address each, kept, never shared with tasks or VIPs; a clash is repaired', async (t) => {
  const w = new World({
    networks: [net('ing', { name: 'ingress', ingress: true }, ING)],
    services: [svc('web', [], { ports: [port(8080)] })],
    tasks: [task('t1', 'web', [])],
    nodes: [node('n1'), node('n2', '10.255.0.9'), node('n3', '10.255.0.9')],
  });
  const r = allocate(w.input());
  t.same(r.errors, []);
  w.apply(r.ops);
  t.equal(w.nodes.get('n2')!.ingressAddr, '10.255.0.9', 'kept');
  const held = [w.nodes.get('n1')!.ingressAddr, w.nodes.get('n3')!.ingressAddr, w.services.get('web')!.endpointVips![0]!.addr, w.tasks.get('t1')!.networks[0]!.addresses[0]];
  t.equal(new Set([...held, '10.255.0.9']).size, 5, `all distinct: ${held.join(' ')}`);
  t.same(allocate(w.input()), { ops: [], errors: [] }, 'steady');
  t.same(allocate({ networks: [], services: [], tasks: [], nodes: [node('n1')] }), { ops: [], errors: [] }, 'no ingress network: no node addresses');
  const tiny = net('ing', { name: 'ingress', ingress: true, subnet: '10.255.0.0/30' }, { vni: 4098, subnet: '10.255.0.0/30', gateway: '10.255.0.1' });
  const r3 = allocate({ networks: [tiny], services: [], tasks: [], nodes: [node('a'), node('b')] });
  t.match(r3.errors, [{ kind: 'node', id: 'b', message: /exhausted/ }]);
});

t.test('compare-and-set: ops carry the version read', async (t) => {
  const r = allocate({ networks: [{ ...net('na'), meta: { version: 7 } }], services: [{ ...svc('s', ['na']), meta: { version: 8 } }], tasks: [{ ...task('t', 's', ['na']), meta: { version: 9 } }] });
  t.same(r.ops.map((o) => [o.kind, o.version, 'meta' in o.object]), [['network', 7, false], ['service', 8, false], ['task', 9, false]]);
});

t.test('property: any history of creates, deletes and stops keeps held addresses unique and inside the subnet', async (t) => {
  type Step = { kind: 'svc' | 'task' | 'delTask' | 'stop' | 'delSvc'; n: number };
  const step = fc.record({ kind: fc.constantFrom<Step['kind']>('svc', 'task', 'task', 'task', 'delTask', 'stop', 'delSvc'), n: fc.nat(20) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const w = new World({ networks: [net('na', { subnet: '10.7.0.0/27' }), net('nb')] });
      let ids = 0;
      for (const s of steps) {
        const svcs = [...w.services.keys()];
        const tasks = [...w.tasks.keys()];
        if (s.kind === 'svc') w.services.set(`s${ids}`, svc(`s${ids++}`, s.n % 2 ? ['na', 'nb'] : ['na'], { mode: s.n % 3 ? 'vip' : 'dnsrr' }));
        else if (s.kind === 'task' && svcs.length) {
          const sid = svcs[s.n % svcs.length]!;
          w.tasks.set(`t${ids}`, task(`t${ids++}`, sid, w.services.get(sid)!.spec.networks.map((x) => x.target)));
        } else if (s.kind === 'delTask' && tasks.length) w.tasks.delete(tasks[s.n % tasks.length]!);
        else if (s.kind === 'stop' && tasks.length) {
          const x = w.tasks.get(tasks[s.n % tasks.length]!)!;
          w.tasks.set(x.id, { ...x, status: { ...x.status, state: 'complete' } });
        } else if (s.kind === 'delSvc' && svcs.length) w.services.delete(svcs[s.n % svcs.length]!);
        const r = allocate(w.input());
        w.apply(r.ops);
        for (const e of r.errors) if (!/exhausted/.test(e.message)) return false;
        for (const [n, list] of w.held()) {
          if (new Set(list).size !== list.length) return false;
          const sub = w.networks.get(n)!.allocated!.subnet.split('.').slice(0, 3).join('.');
          if (list.some((a) => !a.startsWith(`${sub}.`) || a === w.networks.get(n)!.allocated!.gateway)) return false;
        }
        if (allocate(w.input()).ops.length !== 0) return false; // a pass over its own output is a no-op
      }
      return true;
    }),
    { numRuns: 150 },
  );
});
