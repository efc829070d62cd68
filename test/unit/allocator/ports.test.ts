import t from 'tap';
import { allocate } from '../../../control/allocator/allocate.js';
import { checkPorts } from '../../../control/allocator/ports.js';
import { DEFAULT_CONFIG } from '../../../control/allocator/types.js';
import { net, port, svc, World } from './fixtures.js';

const ING = { vni: 4098, subnet: '10.255.0.0/16', gateway: '10.255.0.1' };
const ingress = net('ing', { name: 'ingress', ingress: true }, ING);

t.test('an ingress port belongs to one service; the owner keeps it whatever the ids', async (t) => {
  const w = new World({ networks: [ingress], services: [svc('s2', [], { name: 'web', ports: [port(8080)] })] });
  w.apply(allocate(w.input()).ops);
  w.services.set('s1', svc('s1', [], { name: 'api', ports: [port(8080), port(8080, 80, 'udp')] }));
  const r = allocate(w.input());
  t.match(r.errors, [{ kind: 'service', id: 's1', field: 'endpoint.ports', message: 'port 8080/tcp is already published by service "web" (s2)' }]);
  w.apply(r.ops);
  t.same(w.services.get('s1')!.endpointPorts, [port(8080, 80, 'udp')], 'the udp port is free');
  t.same(w.services.get('s2')!.endpointPorts, [port(8080)]);
  // the owner unpublishes: the port is free for the other service
  w.services.set('s2', { ...w.services.get('s2')!, spec: svc('s2', [], { name: 'web' }).spec });
  const r2 = allocate(w.input());
  t.same(r2.errors, []);
  w.apply(r2.ops);
  t.same(w.services.get('s1')!.endpointPorts, [port(8080), port(8080, 80, 'udp')]);
  t.equal(w.services.get('s2')!.endpointPorts, undefined);
  t.same(w.services.get('s2')!.endpointVips, undefined, 'no ports, no networks: no VIP');
});

t.test('checkPorts refuses up front, naming the owner', async (t) => {
  const owner = { ...svc('zz', [], { name: 'web', ports: [port(80)] }), endpointPorts: [port(80)] };
  t.match(checkPorts(svc('aa', [], { ports: [port(80)] }), [owner], DEFAULT_CONFIG), [{ message: /port 80\/tcp is already published by service "web" \(zz\)/ }]);
  t.same(checkPorts(svc('aa', [], { ports: [port(81)] }), [owner], DEFAULT_CONFIG), []);
  // updating the owner itself is fine
  t.same(checkPorts({ ...owner, spec: svc('zz', [], { ports: [port(80, 8080)] }).spec }, [owner], DEFAULT_CONFIG), []);
  // a brand new service vs another new one with a higher id: existing owners win, so the new one still conflicts
  t.match(checkPorts(svc('aa', [], { ports: [port(80)] }), [svc('bb', [], { ports: [port(80)] })], DEFAULT_CONFIG), [{ message: /already published by service "bb"/ }]);
});

t.test('published 0 takes a dynamic port from 30000 and keeps it', async (t) => {
  const w = new World({ networks: [ingress], services: [svc('a', [], { ports: [port(0, 80), port(30000, 81)] }), svc('b', [], { ports: [port(0, 90, 'udp')] })] });
  w.apply(allocate(w.input()).ops);
  t.same(w.services.get('a')!.endpointPorts, [port(30001, 80), port(30000, 81)]);
  t.same(w.services.get('b')!.endpointPorts, [port(30002, 90, 'udp')]);
  t.same(allocate(w.input()).ops, [], 'kept');
  const r = allocate({ networks: [ingress], services: [svc('a', [], { ports: [port(0, 80), port(0, 81)] })], tasks: [], config: { dynamicPorts: { first: 30000, last: 30000 } } });
  t.match(r.errors, [{ message: /no free port left in the dynamic range 30000-30000 for target 81\/tcp/ }]);
});

t.test('duplicates within a service and host ports shadowing ingress ports are errors', async (t) => {
  const r = allocate({ networks: [ingress], services: [svc('a', [], { ports: [port(80), port(80, 81)] }), svc('b', [], { name: 'h', ports: [port(80, 80, 'tcp', 'host'), port(81, 80, 'tcp', 'host')] })], tasks: [] });
  t.match(r.errors, [
    { id: 'a', message: 'port 80/tcp is published twice by this service' },
    { id: 'b', message: /host-mode port 80\/tcp is published in ingress mode on every node by service "a" \(a\)/ },
  ]);
});
