// Reconcile cost against the number of remote endpoints: one node, one local task, N remotes.
import t from 'tap';
import { listNetns, deleteNetns, Rtnl } from '../../../dataplane/netlink/index.js';
import { desiredState, reconcile, sandboxName, type OverlayInput, type RemoteEndpoint } from '../../../dataplane/overlay/index.js';
import { tempNetns, ipJson } from '../../helpers/netns.js';

t.test('N remote endpoints: one batch in, zero writes on a no-op, entries out', async (t) => {
  const prefix = 'mtovS';
  const cleanup = (): void => { for (const n of listNetns()) if (n.startsWith(`${prefix}-`)) deleteNetns(n); };
  cleanup();
  t.teardown(cleanup);
  const node = tempNetns(t, 'nS');
  const task = tempNetns(t, 'tS');
  {
    const r = Rtnl.open(node);
    r.createBridge('under0', { mtu: 1500 });
    r.addAddress(r.mustLink('under0').index, '192.0.2.1/24');
    r.close();
  }
  const remotes = (n: number): RemoteEndpoint[] =>
    Array.from({ length: n }, (_, i) => {
      const ip = `10.40.${(i >> 8) & 0xff}.${(i & 0xff) + 0}`;
      const mac = `02:42:0a:28:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      return { networkId: 'n', ip, mac, vtep: `192.0.2.${2 + (i % 200)}` };
    }).filter((r) => r.ip !== '10.40.0.0' && r.ip !== '10.40.0.1' && r.ip !== '10.40.0.2');
  const input = (rs: RemoteEndpoint[]): OverlayInput => ({
    node: { underlayAddress: '192.0.2.1', underlayMtu: 1500, prefix },
    networks: [{ id: 'n', vni: 5000, subnet: '10.40.0.0/16', gateway: '10.40.0.1' }],
    attachments: [{ taskId: 's', networkId: 'n', netns: task, ifname: 'eth0', cidr: '10.40.0.2/16' }],
    remotes: rs,
  });
  const sbx = sandboxName(prefix, 5000);
  for (const n of [1000, 5000]) {
    const rs = remotes(n);
    const first = reconcile(desiredState(input(rs)), { prefix, underlayNetns: node });
    t.same(first.errors.map(String), []);
    const noop = reconcile(desiredState(input(rs)), { prefix, underlayNetns: node });
    t.equal(noop.writes, 0, `no-op with ${rs.length} endpoints writes nothing`);
    const half = rs.slice(0, rs.length >> 1);
    const drop = reconcile(desiredState(input(half)), { prefix, underlayNetns: node });
    t.same(drop.errors.map(String), []);
    t.equal(drop.writes, 2 * (rs.length - half.length));
    t.equal(ipJson<{ dst?: string }[]>(sbx, 'bridge', 'fdb', 'show', 'dev', 'vx-5000').filter((e) => e.dst).length, half.length, 'kernel holds the remaining FDB entries');
    t.equal(ipJson<unknown[]>(sbx, 'neigh', 'show', 'dev', 'vx-5000').length, half.length, 'and neighbours');
    t.comment(`${rs.length} endpoints: apply ${first.ms.toFixed(0)} ms (${first.writes} writes), no-op ${noop.ms.toFixed(0)} ms, drop half ${drop.ms.toFixed(0)} ms (${drop.writes} writes)`);
    reconcile(desiredState({ ...input([]), attachments: [] }), { prefix, underlayNetns: node });
  }
  t.same(listNetns().filter((n) => n.startsWith(`${prefix}-`)), []);
});
