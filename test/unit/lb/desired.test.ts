import t from 'tap';
import fc from 'fast-check';
import { desiredLb, localAddresses, LbInputError, type LbInput } from '../../../dataplane/lb/index.js';

const base: LbInput = {
  networks: [{
    netns: 'msh-ov-4097',
    services: [
      { name: 'web', vip: '10.0.1.100', backends: [{ ip: '10.0.1.5', weight: 1 }, { ip: '10.0.1.3', weight: 2 }, { ip: '10.0.1.4', weight: 0 }] },
      { name: 'api', vip: '10.0.1.101', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }, { proto: 'udp', port: 53 }], backends: [{ ip: '10.0.1.6', weight: 1 }] },
    ],
  }],
  ingress: { netns: 'msh-ingress', snatAddress: '10.255.0.2', ports: [{ proto: 'tcp', publishedPort: 8080, targetPort: 80, backends: [{ ip: '10.255.0.5', weight: 1 }] }] },
};

t.test('shape', async (t) => {
  const d = desiredLb(base);
  t.same([...d.keys()], ['msh-ov-4097', 'msh-ingress']);
  const net = d.get('msh-ov-4097')!;
  t.same(Object.keys(net.frontends).sort(), ['10.0.1.100 any 0', '10.0.1.101 tcp 80', '10.0.1.101 udp 53']);
  t.same(net.frontends['10.0.1.100 any 0'], { match: { addr: '10.0.1.100', proto: 'any', port: 0 }, targetPort: 0, backends: { '10.0.1.3': 2, '10.0.1.4': 0, '10.0.1.5': 1 } });
  t.equal(net.frontends['10.0.1.101 tcp 80']!.targetPort, 8080);
  t.equal(net.frontends['10.0.1.101 udp 53']!.targetPort, 53, 'target port defaults to the port');
  t.same(d.get('msh-ingress')!.frontends['0.0.0.0 tcp 8080'], { match: { addr: '0.0.0.0', proto: 'tcp', port: 8080 }, targetPort: 80, snat: '10.255.0.2', backends: { '10.255.0.5': 1 } });
  t.same(localAddresses(net), ['10.0.1.100', '10.0.1.101']);
  t.same(localAddresses(d.get('msh-ingress')!), ['10.255.0.2'], 'the ingress SNAT source is a local address');
});

t.test('independent of input order', async (t) => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 8 }), (perm) => {
    const b = [...base.networks[0]!.services[0]!.backends];
    for (const p of perm) b.push(b.splice(p % b.length, 1)[0]!);
    const shuffled: LbInput = { ...base, networks: [{ ...base.networks[0]!, services: [{ ...base.networks[0]!.services[0]!, backends: b }, base.networks[0]!.services[1]!] }] };
    return JSON.stringify([...desiredLb(shuffled)]) === JSON.stringify([...desiredLb(base)]);
  }));
  t.pass();
});

t.test('bad input is refused with a clear error', async (t) => {
  const bad = (mut: (i: LbInput) => void, re: RegExp): void => {
    const i = structuredClone(base);
    mut(i);
    t.throws(() => desiredLb(i), { name: 'LbInputError', message: re }, re.source);
  };
  bad((i) => { i.networks[0]!.services[0]!.vip = '10.0.1'; }, /service web VIP: "10.0.1" is not an IPv4 address/);
  bad((i) => { i.networks[0]!.services[0]!.vip = '224.0.0.1'; }, /not a unicast address/);
  bad((i) => { i.networks[0]!.services[0]!.backends[0]!.ip = '010.0.1.5'; }, /not an IPv4 address/);
  bad((i) => { i.networks[0]!.services[0]!.backends[0]!.weight = -1; }, /weight -1 is not an integer 0-65535/);
  bad((i) => { i.networks[0]!.services[0]!.backends[0]!.weight = 1.5; }, /weight 1.5/);
  bad((i) => { i.networks[0]!.services[0]!.backends.push({ ip: '10.0.1.3', weight: 1 }); }, /backend 10.0.1.3 is listed twice/);
  bad((i) => { i.networks[0]!.services[1]!.vip = '10.0.1.100'; }, /VIP 10.0.1.100 is already the VIP of service web/);
  bad((i) => { i.networks[0]!.services[1]!.ports![0]!.port = 0; }, /0 is not a port/);
  bad((i) => { i.networks[0]!.services[1]!.ports![0]!.targetPort = 70000; }, /70000 is not a port/);
  bad((i) => { (i.networks[0]!.services[1]!.ports![0] as { proto: string }).proto = 'sctp'; }, /protocol "sctp" is not tcp or udp/);
  bad((i) => { i.networks[0]!.services[1]!.ports!.push({ proto: 'tcp', port: 80 }); }, /port 80\/tcp is already taken by service api/);
  bad((i) => { i.ingress!.ports.push({ proto: 'tcp', publishedPort: 8080, targetPort: 81, backends: [] }); }, /published port 8080\/tcp is already taken by ingress 8080\/tcp/);
  bad((i) => { i.ingress!.snatAddress = 'x'; }, /ingress SNAT address/);
  bad((i) => { i.ingress!.netns = 'msh-ov-4097'; }, /namespace msh-ov-4097 is given twice/);
  bad((i) => { i.networks[0]!.netns = '../etc'; }, /is not a namespace name/);
  t.ok(new LbInputError('x') instanceof TypeError);
});
