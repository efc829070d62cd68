import t from 'tap';
import fc from 'fast-check';
import { planLab, resolveNode, isLabNetns, LabConfigError, LAB_DEFAULTS } from '../../../control/lab/plan.js';

t.test('default plan', async (t) => {
  const p = planLab(LAB_DEFAULTS);
  t.equal(p.underlayNetns, 'mesh-ul');
  t.equal(p.hostLink, 'mesh-h');
  t.equal(p.hostCidr, '198.18.0.1/24');
  t.same(p.nodes.map((n) => [n.netns, n.cidr]), [['mesh-n1', '198.18.0.11/24'], ['mesh-n2', '198.18.0.12/24'], ['mesh-n3', '198.18.0.13/24']]);
});

t.test('every plan: unique addresses inside the subnet, names fit the kernel limits', async () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 255 }), (prefix, nodes, hi, third) => {
      const p = planLab({ prefix, nodes, subnet: `198.${18 + hi}.${third}.0/24`, mtu: 1500 });
      const addrs = new Set([p.hostAddress, ...p.nodes.map((n) => n.address)]);
      if (addrs.size !== nodes + 1) return false;
      if (p.hostLink.length > 15) return false;
      return p.nodes.every((n) => n.address.startsWith(`198.${18 + hi}.${third}.`) && isLabNetns(prefix, n.netns)) && isLabNetns(prefix, p.underlayNetns);
    }),
  );
});

t.test('isLabNetns does not claim other labs', async (t) => {
  t.ok(isLabNetns('mesh', 'mesh-n12'));
  t.notOk(isLabNetns('mesh', 'mesh2-n1'));
  t.notOk(isLabNetns('mesh', 'meshx-ul'));
  t.notOk(isLabNetns('mesh', 'mesh-n1x'));
});

t.test('invalid options', async (t) => {
  t.throws(() => planLab({ ...LAB_DEFAULTS, prefix: 'a-very-long-prefix' }), LabConfigError);
  t.throws(() => planLab({ ...LAB_DEFAULTS, subnet: '198.20.0.0/24' }), /inside 198\.18\.0\.0\/15/);
  t.throws(() => planLab({ ...LAB_DEFAULTS, subnet: '198.18.0.0/14' }), /inside 198\.18\.0\.0\/15/);
  t.throws(() => planLab({ ...LAB_DEFAULTS, subnet: 'nonsense' }), /not an IPv4 CIDR/);
  t.throws(() => planLab({ ...LAB_DEFAULTS, nodes: 250 }), /1 to 200/);
  t.throws(() => planLab({ ...LAB_DEFAULTS, mtu: 500 }), /--mtu/);
  t.throws(() => planLab({ ...LAB_DEFAULTS, subnet: '198.18.0.0/28', nodes: 5 }), /room for 4 nodes/);
});

t.test('resolveNode accepts n2, 2 and PREFIX-n2', async (t) => {
  const p = planLab(LAB_DEFAULTS);
  t.equal(resolveNode(p, 'n2').netns, 'mesh-n2');
  t.equal(resolveNode(p, '2').netns, 'mesh-n2');
  t.equal(resolveNode(p, 'mesh-n2').netns, 'mesh-n2');
  t.throws(() => resolveNode(p, 'n7'), /no node "n7" in lab mesh \(nodes: n1, n2, n3\)/);
});
