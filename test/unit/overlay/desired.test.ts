import t from 'tap';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { desiredState, macFromIp, overlayMtu, sandboxName, vethName, type OverlayInput } from '../../../dataplane/overlay/index.js';
import { arbInput } from './arb.js';

const base: OverlayInput = {
  node: { underlayAddress: '192.0.2.1', underlayMtu: 9000, prefix: 'msh' },
  networks: [
    { id: 'n1', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
    { id: 'n2', vni: 4098, subnet: '10.0.2.0/24', gateway: '10.0.2.1', mtu: 1400 },
    { id: 'n3', vni: 4099, subnet: '10.0.3.0/24', gateway: '10.0.3.1' },
  ],
  attachments: [
    { taskId: 't1', networkId: 'n1', netns: 'task1', ifname: 'eth0', cidr: '10.0.1.5/24' },
    { taskId: 't1', networkId: 'n2', netns: 'task1', ifname: 'eth1', cidr: '10.0.2.5/24' },
  ],
  remotes: [
    { networkId: 'n1', ip: '10.0.1.9', mac: '02:42:0A:00:01:09', vtep: '192.0.2.2' },
    { networkId: 'n1', ip: '10.0.1.5', mac: '02:42:0a:00:01:05', vtep: '192.0.2.3' }, // stale: the IP is local now
    { networkId: 'n1', ip: '10.0.1.7', mac: '02:42:0a:00:01:07', vtep: '192.0.2.1' }, // ours, echoed by gossip
    { networkId: 'n3', ip: '10.0.3.9', mac: '02:42:0a:00:03:09', vtep: '192.0.2.2' }, // no local task on n3
  ],
};

t.test('MAC from IP, names, MTU', async (t) => {
  t.equal(macFromIp('10.0.1.5'), '02:42:0a:00:01:05');
  t.equal(macFromIp('255.255.255.255'), '02:42:ff:ff:ff:ff');
  t.throws(() => macFromIp('10.0.1'), TypeError);
  t.throws(() => macFromIp('fe80::1'), TypeError);
  t.equal(sandboxName('msh', 4097), 'msh-ov-4097');
  t.equal(vethName('t1', 'eth0'), vethName('t1', 'eth0'), 'stable');
  t.not(vethName('t1', 'eth0'), vethName('t1', 'eth1'));
  t.ok(vethName('x'.repeat(100), 'eth0').length <= 15, 'fits IFNAMSIZ');
  t.equal(overlayMtu({ underlayMtu: 1500 }, {}), 1450);
  t.equal(overlayMtu({ underlayMtu: 9000 }, { mtu: 1400 }), 1400, 'per-network override');
});

t.test('sandboxes for networks with local tasks only, entries for remote endpoints only', async (t) => {
  const d = desiredState(base);
  t.same(Object.keys(d.netns).sort(), ['msh-ov-4097', 'msh-ov-4098', 'task1']);
  const s1 = d.netns['msh-ov-4097']!;
  t.ok(s1.owned);
  t.match(s1.links['br0'], { kind: 'bridge', mtu: 8950, up: true, addrs: ['10.0.1.1/24'] });
  t.match(s1.links['vx-4097'], { kind: 'vxlan', mtu: 8950, master: 'br0', vxlan: { vni: 4097, port: 4789, local: '192.0.2.1', learning: false, proxy: true } });
  const v = vethName('t1', 'eth0');
  t.match(s1.links[v], { kind: 'veth', master: 'br0', peer: 'task1/eth0', mtu: 8950 });
  t.same(s1.fdb, { '02:42:0a:00:01:09': '192.0.2.2' }, 'remote only, MAC lower-cased; not our own VTEP, not a local IP');
  t.same(s1.neigh, { '10.0.1.9': '02:42:0a:00:01:09' });
  t.same(d.netns['msh-ov-4098']!.fdb, {});
  t.equal(d.netns['msh-ov-4098']!.links['vx-4098']!.mtu, 1400);
  const task = d.netns['task1']!;
  t.notOk(task.owned);
  t.same(task.links['eth0'], { kind: 'veth', mtu: 8950, up: true, mac: '02:42:0a:00:01:05', addrs: ['10.0.1.5/24'], peer: `msh-ov-4097/${v}` });
  t.equal(task.links['eth1']!.mtu, 1400);
  t.same(desiredState({ ...base, attachments: [] }), { netns: {}, hostLinks: [] }, 'no local task: no sandbox, whatever gossip says');
});

t.test('desired state does not depend on input order', async (t) => {
  fc.assert(
    fc.property(arbInput, fc.integer(), (input, seed) => {
      const shuffle = <T>(xs: T[]): T[] => xs.map((x, i) => ({ x, k: (i * 7919 + seed) % 1009 })).sort((a, b) => a.k - b.k).map((e) => e.x);
      const a = desiredState(input);
      const b = desiredState({ ...input, attachments: shuffle(input.attachments), remotes: shuffle(input.remotes), networks: shuffle(input.networks) });
      assert.deepEqual(b, a);
    }),
    { numRuns: 200 },
  );
  t.pass('200 shuffles');
});
