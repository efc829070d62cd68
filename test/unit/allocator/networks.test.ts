import t from 'tap';
import fc from 'fast-check';
import { allocate } from '../../../control/allocator/allocate.js';
import { validateNetworkSpec } from '../../../control/allocator/validate.js';
import { SubnetPool } from '../../../control/allocator/subnet-pool.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../../../control/allocator/ipv4.js';
import { DEFAULT_CONFIG, type NetworkObject } from '../../../control/allocator/types.js';
import { net, World } from './fixtures.js';

const cidr = (s: string): Cidr => parseCidr(s) as Cidr;

t.test('pool networks get /24s from 10.0.0.0/8, VNIs from 4096, gateway .1; in id order', async (t) => {
  const r = allocate({ networks: [net('b'), net('a'), net('c')], services: [], tasks: [] });
  t.same(r.errors, []);
  t.same(r.ops.map((o) => [o.object.id, (o.object as NetworkObject).allocated]), [
    ['a', { vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1' }],
    ['b', { vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' }],
    ['c', { vni: 4098, subnet: '10.0.2.0/24', gateway: '10.0.2.1' }],
  ]);
});

t.test('allocated networks keep theirs; explicit subnets go before pool ones; holes are reused', async (t) => {
  const r = allocate({
    networks: [
      net('a', {}, { vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' }),
      net('p1'),
      net('p2'),
      net('x', { subnet: '10.0.0.0/24', gateway: '10.0.0.254' }),
      net('y', { subnet: '10.0.2.0/23', ipRange: '10.0.3.0/25' }),
    ],
    services: [], tasks: [],
  });
  t.same(r.errors, []);
  const got = Object.fromEntries(r.ops.map((o) => [o.object.id, (o.object as NetworkObject).allocated]));
  t.same(got, {
    x: { vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.254' },
    y: { vni: 4098, subnet: '10.0.2.0/23', gateway: '10.0.2.1' },
    p1: { vni: 4099, subnet: '10.0.4.0/24', gateway: '10.0.4.1' },
    p2: { vni: 4100, subnet: '10.0.5.0/24', gateway: '10.0.5.1' },
  });
  t.notOk(r.ops.some((o) => o.object.id === 'a'), 'no op for an allocated network');
});

t.test('the ingress network takes 10.255.0.0/16 by default; the pool never does', async (t) => {
  const pool = { base: '10.255.0.0/16', size: 24 };
  const r = allocate({ networks: [net('ingress', { ingress: true }), net('n1')], services: [], tasks: [], config: { pools: [{ base: '10.254.255.0/24', size: 24 }, pool] } });
  t.same(r.errors, []);
  const got = Object.fromEntries(r.ops.map((o) => [o.object.id, (o.object as NetworkObject).allocated?.subnet]));
  t.same(got, { ingress: '10.255.0.0/16', n1: '10.254.255.0/24' });
  // without the ingress network, the range is still kept out of the pool
  const r2 = allocate({ networks: [net('n1'), net('n2')], services: [], tasks: [], config: { pools: [{ base: '10.254.255.0/24', size: 24 }, pool] } });
  t.match(r2.errors, [{ id: 'n2', field: 'subnet', message: /default address pool exhausted/ }]);
  t.same(r2.ops.length, 1);
});

t.test('validation errors name the field and the clashing network', async (t) => {
  const existing = [net('app1', { name: 'app' }, { vni: 4096, subnet: '10.1.0.0/16', gateway: '10.1.0.1' })];
  const v = (o: Parameters<typeof net>[1]): string[] => validateNetworkSpec(net('new', o).spec, existing, DEFAULT_CONFIG).map((e) => `${e.field}: ${e.message}`);
  t.match(v({ subnet: '10.1.2.0/24' }), [/^subnet: subnet 10\.1\.2\.0\/24 overlaps network "app" \(app1\), which has 10\.1\.0\.0\/16/]);
  t.match(v({ subnet: '10.255.3.0/24' }), [/^subnet: .*overlaps the ingress network range, which has 10\.255\.0\.0\/16/]);
  t.match(v({ subnet: '10.2.0.0/24', gateway: '10.3.0.1' }), [/^gateway: gateway 10\.3\.0\.1 is outside subnet 10\.2\.0\.0\/24/]);
  t.match(v({ subnet: '10.2.0.0/24', gateway: '10.2.0.255' }), [/^gateway: .*broadcast/]);
  t.match(v({ subnet: '10.2.0.0/24', gateway: 'x' }), [/^gateway: .*not an IPv4/]);
  t.match(v({ subnet: '10.2.0.0/24', ipRange: '10.2.1.0/25' }), [/^ipRange: ip-range 10\.2\.1\.0\/25 is outside subnet/]);
  t.match(v({ subnet: '10.2.0.0/24', ipRange: '10.2.0.1/25' }), [/^ipRange: .*host bits/]);
  t.match(v({ gateway: '10.2.0.1' }), [/^gateway: gateway needs subnet/]);
  t.match(v({ ipRange: '10.2.0.0/25' }), [/^ipRange: ip-range needs subnet/]);
  t.match(v({ subnet: '10.2.0.0/30' }), [/^subnet: .*too small/]);
  t.match(v({ subnet: '10.0.0.0/12' }), [/^subnet: .*too large: at most \/16/]);
  t.match(v({ subnet: '10.2.0.1/24' }), [/^subnet: .*did you mean 10\.2\.0\.0\/24/]);
  t.match(v({ mtu: 100 }), [/^mtu:/]);
  t.same(v({ subnet: '10.2.0.0/24', gateway: '10.2.0.9', ipRange: '10.2.0.128/25', mtu: 1400 }), []);
  t.same(v({}), []);
  // a second ingress network
  const withIngress = [...existing, net('ing', { ingress: true, name: 'ingress' }, { vni: 4097, subnet: '10.255.0.0/16', gateway: '10.255.0.1' })];
  t.match(validateNetworkSpec(net('i2', { ingress: true, subnet: '10.9.0.0/16' }).spec, withIngress, DEFAULT_CONFIG), [{ field: 'ingress', message: /only one ingress network.*"ingress" \(ing\)/ }]);
  // the ingress network itself may sit on the reserved range
  t.same(validateNetworkSpec(net('i', { ingress: true }).spec, existing, DEFAULT_CONFIG), []);
});

t.test('the pass reports the same validation errors and allocates nothing for those networks', async (t) => {
  const r = allocate({ networks: [net('a', { subnet: '10.5.0.0/24' }), net('b', { subnet: '10.5.0.0/25' }), net('i1', { ingress: true }), net('i2', { ingress: true })], services: [], tasks: [] });
  t.same(r.ops.map((o) => o.object.id), ['a', 'i1']);
  t.match(r.errors, [{ id: 'i2', field: 'ingress' }, { id: 'b', field: 'subnet', message: /overlaps network "a" \(a\)/ }]);
});

t.test('VNI range and pool exhaustion are clear errors', async (t) => {
  const r = allocate({ networks: [net('a'), net('b'), net('c')], services: [], tasks: [], config: { vniRange: { first: 4096, last: 4097 } } });
  t.same(r.ops.length, 2);
  t.match(r.errors, [{ id: 'c', field: 'vni', message: /no free VNI left in 4096\.\.4097/ }]);
  const r2 = allocate({ networks: [net('a'), net('b'), net('c')], services: [], tasks: [], config: { pools: [{ base: '192.168.0.0/23', size: 24 }] } });
  t.match(r2.errors, [{ id: 'c', field: 'subnet', message: /all 2 subnets of 192\.168\.0\.0\/23 in \/24s are in use/ }]);
});

t.test('a stored VNI clash is reported, not silently changed', async (t) => {
  const r = allocate({ networks: [net('a', {}, { vni: 5000, subnet: '10.0.0.0/24', gateway: '10.0.0.1' }), net('b', {}, { vni: 5000, subnet: '10.0.1.0/24', gateway: '10.0.1.1' })], services: [], tasks: [] });
  t.same(r.ops, []);
  t.match(r.errors, [{ id: 'b', field: 'allocated', message: /VNI 5000/ }]);
});

t.test('bad config throws', async (t) => {
  t.throws(() => allocate({ networks: [], services: [], tasks: [], config: { pools: [{ base: '10.0.0.0', size: 24 }] } }), /allocator config/);
  t.throws(() => allocate({ networks: [], services: [], tasks: [], config: { pools: [{ base: '10.0.0.0/8', size: 31 }] } }), /pool size/);
});

t.test('property: pool subnets never overlap each other or reserved space, and carving is deterministic', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 18, max: 26 })), { maxLength: 12 }), fc.integer({ min: 1, max: 40 }), (reserved, n) => {
      const res = reserved.map(([b, p]) => {
        const base = ((10 << 24) | (b << 8)) >>> 0;
        const m = 2 ** (32 - p);
        return { base: Math.floor(base / m) * m, prefix: p };
      });
      const run = (): Cidr[] => {
        const pool = new SubnetPool([{ base: cidr('10.0.0.0/16'), size: 24 }]);
        for (const r of res) pool.reserve(r);
        const got: Cidr[] = [];
        for (let i = 0; i < n; i++) {
          const c = pool.take();
          if (c) got.push(c);
        }
        return got;
      };
      const got = run();
      for (let i = 0; i < got.length; i++) {
        if (res.some((r) => overlaps(r, got[i]!))) return false;
        for (let j = 0; j < i; j++) if (overlaps(got[i]!, got[j]!)) return false;
      }
      return JSON.stringify(run().map(formatCidr)) === JSON.stringify(got.map(formatCidr));
    }),
  );
});

t.test('1,000 networks from the pool, then a second pass is a no-op', async (t) => {
  const w = new World({ networks: Array.from({ length: 1000 }, (_, i) => net(`n${String(i).padStart(4, '0')}`)) });
  const r = allocate(w.input());
  t.equal(r.ops.length, 1000);
  t.same(r.errors, []);
  w.apply(r.ops);
  t.equal(w.networks.get('n0999')!.allocated!.subnet, '10.3.231.0/24');
  t.equal(w.networks.get('n0999')!.allocated!.vni, 4096 + 999);
  t.same(allocate(w.input()).ops, []);
});
