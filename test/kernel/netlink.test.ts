// Real kernel objects in throwaway namespaces, checked from outside with iproute2's JSON output.
import t from 'tap';
import { Rtnl, NetlinkError, listNetns, createNetns, deleteNetns, C } from '../../dataplane/netlink/index.js';
import { tempNetns, ipJson, inNetns, uniqueName } from '../helpers/netns.js';

interface IpLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  flags: string[];
  address?: string;
  master?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}

function open(t: { teardown(fn: () => void): void }, ns: string): Rtnl {
  const r = Rtnl.open(ns);
  t.teardown(() => r.close());
  return r;
}

t.test('named namespaces are visible to ip netns and removable', async (t) => {
  const name = uniqueName('ns');
  createNetns(name);
  t.teardown(() => void deleteNetns(name));
  t.ok(listNetns().includes(name));
  t.match(inNetns(name, ['ip', '-j', 'link', 'show', 'lo']), /"ifname":"lo"/);
  t.throws(() => createNetns(name), { code: 'EEXIST', message: new RegExp(`create netns ${name}`) });
  t.equal(deleteNetns(name), true);
  t.notOk(listNetns().includes(name));
  t.equal(deleteNetns(name), false, 'deleting a missing namespace reports false, does not throw');
  t.throws(() => createNetns('bad/name'), TypeError);
});

t.test('veth pair across namespaces, addresses, link up, MTU', async (t) => {
  const a = tempNetns(t, 'a');
  const b = tempNetns(t, 'b');
  const ra = open(t, a);
  const rb = open(t, b);
  ra.createVeth({ name: 'ethA', peerName: 'ethB', peerNetns: b, mtu: 1400, mac: '02:00:00:00:aa:01', peerMac: '02:00:00:00:bb:01' });
  const la = ra.mustLink('ethA');
  const lb = rb.mustLink('ethB');
  t.equal(la.kind, 'veth');
  ra.addAddress(la.index, '198.18.200.1/24');
  rb.addAddress(lb.index, '198.18.200.2/24');
  ra.setLink(la.index, { up: true });
  rb.setLink(lb.index, { up: true, mtu: 1400 });

  const [ia] = ipJson<IpLink[]>(a, '-d', 'link', 'show', 'ethA');
  const [ib] = ipJson<IpLink[]>(b, '-d', 'link', 'show', 'ethB');
  t.equal(ia!.mtu, 1400);
  t.equal(ia!.address, '02:00:00:00:aa:01');
  t.equal(ib!.address, '02:00:00:00:bb:01');
  t.ok(ia!.flags.includes('UP'));
  t.equal(ia!.linkinfo?.info_kind, 'veth');
  t.ok(ib!.link_netnsid !== undefined, 'peer lives in another namespace');
  const addrs = ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>(a, 'addr', 'show', 'ethA');
  t.same(addrs[0]!.addr_info.map((x) => `${x.local}/${x.prefixlen}`).filter((x) => x.startsWith('198.')), ['198.18.200.1/24']);
  t.same(ra.addresses(la.index).filter((x) => x.family === C.AF_INET).map((x) => `${x.address}/${x.prefixLen}`), ['198.18.200.1/24']);
  // The pair really carries traffic.
  t.match(inNetns(a, ['ping', '-c', '1', '-W', '2', '198.18.200.2']), /1 received/);
  ra.setLink(la.index, { up: false });
  t.notOk(ipJson<IpLink[]>(a, 'link', 'show', 'ethA')[0]!.flags.includes('UP'));
  t.equal(ra.mustLink('ethA').up, false);
  ra.deleteAddress(la.index, '198.18.200.1/24');
  t.same(ra.addresses(la.index).filter((x) => x.family === C.AF_INET), []);
});

t.test('bridge and VXLAN device (VNI, port 4789, local, learning off)', async (t) => {
  const a = tempNetns(t, 'x');
  const r = open(t, a);
  r.createBridge('br0', { mtu: 1450 });
  r.createVxlan({ name: 'vx0', vni: 4097, local: '198.18.201.1', mtu: 1450 });
  const br = r.mustLink('br0');
  const vx = r.mustLink('vx0');
  r.setLink(vx.index, { master: br.index, up: true });
  r.setLink(br.index, { up: true });
  const [j] = ipJson<IpLink[]>(a, '-d', 'link', 'show', 'vx0');
  const d = j!.linkinfo!.info_data!;
  t.equal(j!.linkinfo!.info_kind, 'vxlan');
  t.equal(d.id, 4097);
  t.equal(d.port, 4789);
  t.equal(d.local, '198.18.201.1');
  t.equal(d.learning, false);
  t.equal(j!.master, 'br0');
  t.equal(j!.mtu, 1450);
  t.same(r.mustLink('vx0').vxlan, { vni: 4097, port: 4789, learning: false, local: '198.18.201.1' });
  t.equal(ipJson<IpLink[]>(a, '-d', 'link', 'show', 'br0')[0]!.linkinfo!.info_kind, 'bridge');
  t.throws(() => r.createVxlan({ name: 'vx1', vni: 0 }), TypeError);
  const err = t.throws(() => r.createVxlan({ name: 'vx0', vni: 5000 }), { code: 'EEXIST', message: /create vxlan vx0 in netns/ });
  t.ok(err instanceof NetlinkError, 'kernel errors are typed');
  t.equal(r.deleteLink('vx0'), true);
  t.equal(r.deleteLink('vx0'), false);
  t.same(ipJson<IpLink[]>(a, 'link', 'show', 'type', 'vxlan'), []);
});

t.test('FDB entries (MAC -> VTEP) and permanent neighbours, with dumps', async (t) => {
  const a = tempNetns(t, 'f');
  const r = open(t, a);
  r.createBridge('br0');
  r.createVxlan({ name: 'vx0', vni: 4098, local: '198.18.202.1' });
  const vx = r.mustLink('vx0');
  const br = r.mustLink('br0');
  r.setLink(vx.index, { master: br.index, up: true });
  const entries = Array.from({ length: 50 }, (_, i) => ({
    mac: `02:42:0a:00:00:${(i + 2).toString(16).padStart(2, '0')}`,
    ip: `10.0.0.${i + 2}`,
    vtep: `198.18.202.${(i % 5) + 2}`,
  }));
  const res = r.apply([
    ...entries.map((e) => ({ op: 'add-fdb' as const, entry: { index: vx.index, mac: e.mac, dst: e.vtep } })),
    ...entries.map((e) => ({ op: 'add-neigh' as const, entry: { index: br.index, ip: e.ip, mac: e.mac } })),
  ]);
  t.same(res.errors, []);
  const fdb = ipJson<{ mac: string; dst?: string; flags: string[]; state: string }[]>(a, 'bridge', 'fdb', 'show', 'dev', 'vx0');
  const remote = fdb.filter((f) => f.dst);
  t.equal(remote.length, 50);
  for (const e of entries) {
    const f = remote.find((x) => x.mac === e.mac);
    t.equal(f?.dst, e.vtep, `fdb ${e.mac}`);
    t.ok(f?.flags.includes('self'));
    t.equal(f?.state, 'permanent');
  }
  const neigh = ipJson<{ dst: string; lladdr: string; state: string[] }[]>(a, 'neigh', 'show', 'dev', 'br0');
  t.equal(neigh.length, 50);
  t.ok(neigh.every((n) => n.state.includes('PERMANENT')));
  // Our own dumps agree with iproute2's.
  t.same(new Set(r.fdb(vx.index).filter((f) => f.dst).map((f) => `${f.mac}>${f.dst}`)), new Set(entries.map((e) => `${e.mac}>${e.vtep}`)));
  t.same(new Set(r.neighbors(C.AF_INET, br.index).map((n) => `${n.ip}=${n.mac}`)), new Set(entries.map((e) => `${e.ip}=${e.mac}`)));
  // Replace moves an entry to a new VTEP; delete removes it.
  r.addFdb({ index: vx.index, mac: entries[0]!.mac, dst: '198.18.202.99' });
  t.equal(r.fdb(vx.index).find((f) => f.mac === entries[0]!.mac)?.dst, '198.18.202.99');
  r.deleteFdb({ index: vx.index, mac: entries[0]!.mac, dst: '198.18.202.99' });
  r.deleteNeighbor({ index: br.index, ip: entries[0]!.ip, mac: entries[0]!.mac });
  t.equal(ipJson<unknown[]>(a, 'bridge', 'fdb', 'show', 'dev', 'vx0').filter((f) => (f as { dst?: string }).dst).length, 49);
  t.equal(ipJson<unknown[]>(a, 'neigh', 'show', 'dev', 'br0').length, 49);
});

t.test('a batch reports each failure by name and still applies the rest', async (t) => {
  const a = tempNetns(t, 'e');
  const r = open(t, a);
  r.createBridge('br0');
  const br = r.mustLink('br0');
  const res = r.apply([
    { op: 'add-neigh', entry: { index: br.index, ip: '10.1.0.1', mac: '02:00:00:00:00:01' } },
    { op: 'add-neigh', entry: { index: 9999, ip: '10.1.0.2', mac: '02:00:00:00:00:02' } },
    { op: 'add-neigh', entry: { index: br.index, ip: '10.1.0.3', mac: '02:00:00:00:00:03' } },
    { op: 'del-neigh', entry: { index: br.index, ip: '10.1.0.9', mac: '02:00:00:00:00:09' } },
  ]);
  t.equal(res.errors.length, 2);
  t.match(res.errors[0]!.message, /add neighbour 10\.1\.0\.2 .* ifindex 9999 in netns .*: ENODEV/);
  t.match(res.errors[1]!.message, /delete neighbour 10\.1\.0\.9/);
  t.equal(res.errors[1]!.code, 'ENOENT');
  t.same(r.neighbors(C.AF_INET, br.index).map((n) => n.ip).sort(), ['10.1.0.1', '10.1.0.3']);
  t.throws(() => r.addNeighbor({ index: br.index, ip: 'nope', mac: '02:00:00:00:00:01' }), TypeError);
  t.throws(() => r.addNeighbor({ index: br.index, ip: '10.1.0.4', mac: 'zz' }), /not a MAC address/);
  t.throws(() => r.mustLink('nothere'), { code: 'ENODEV', message: /find link nothere in netns/ });
});

t.test('routes: connected, default via gateway, dumps', async (t) => {
  const a = tempNetns(t, 'r');
  const b = tempNetns(t, 'q');
  const r = open(t, a);
  r.createVeth({ name: 'e0', peerName: 'e1', peerNetns: b });
  const e0 = r.mustLink('e0');
  r.addAddress(e0.index, '198.18.203.1/24');
  r.setLink(e0.index, { up: true });
  r.addRoute({ dst: 'default', gateway: '198.18.203.254' });
  r.addRoute({ dst: '10.77.0.0/16', oif: e0.index });
  const routes = ipJson<{ dst: string; gateway?: string; dev: string }[]>(a, 'route', 'show');
  t.ok(routes.some((x) => x.dst === 'default' && x.gateway === '198.18.203.254' && x.dev === 'e0'));
  t.ok(routes.some((x) => x.dst === '10.77.0.0/16' && x.dev === 'e0'));
  const ours = r.routes();
  t.ok(ours.some((x) => x.dst === 'default' && x.gateway === '198.18.203.254' && x.oif === e0.index));
  t.ok(ours.some((x) => x.dst === '198.18.203.0/24' && x.protocol === C.RTPROT_KERNEL));
  r.deleteRoute({ dst: '10.77.0.0/16', oif: e0.index });
  t.notOk(ipJson<{ dst: string }[]>(a, 'route', 'show').some((x) => x.dst === '10.77.0.0/16'));
  t.throws(() => r.addRoute({ dst: '10.78.0.0/16', gateway: '203.0.113.1' }), { code: 'ENETUNREACH', message: /add route 10\.78\.0\.0\/16 via 203\.0\.113\.1/ });
});

t.test('moving a link into another namespace', async (t) => {
  const a = tempNetns(t, 'm');
  const b = tempNetns(t, 'o');
  const r = open(t, a);
  r.createVeth({ name: 'mv0', peerName: 'mv1' });
  r.moveLink(r.mustLink('mv1').index, b, 'eth0');
  t.notOk(r.link('mv1'));
  t.equal(ipJson<IpLink[]>(b, 'link', 'show', 'eth0')[0]!.ifname, 'eth0');
});
