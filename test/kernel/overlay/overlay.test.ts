// Two simulated nodes (namespaces joined by a veth underlay), each with its own overlay sandboxes
// (prefixes mtovA / mtovB), tasks in their own namespaces; real VXLAN between them.
import t from 'tap';
import { spawn } from 'node:child_process';
import { listNetns, deleteNetns, Rtnl } from '../../../dataplane/netlink/index.js';
import { desiredState, macFromIp, reconcile, sandboxName, type OverlayInput, type RemoteEndpoint } from '../../../dataplane/overlay/index.js';
import { tempNetns, ipJson, inNetns } from '../../helpers/netns.js';

interface Fdb { mac: string; dst?: string; ifname?: string; flags?: string[]; state?: string }
interface Neigh { dst: string; lladdr?: string; state?: string[] }

const ping = (ns: string, ip: string, extra: string[] = []): boolean => {
  try {
    inNetns(ns, ['ping', '-c', '1', '-W', '1', ...extra, ip]);
    return true;
  } catch {
    return false;
  }
};

/** TCP connect from one task to a listener in another, with node itself on both sides. */
async function tcpConnect(from: string, to: string, ip: string): Promise<boolean> {
  const server = spawn('ip', ['netns', 'exec', to, process.execPath, '-e', `require('net').createServer(s=>s.end('hello')).listen(7000,()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res, rej) => {
      server.stdout.once('data', () => res());
      server.once('exit', () => rej(new Error('server exited')));
    });
    const out = inNetns(from, [process.execPath, '-e', `const s=require('net').connect(7000,'${ip}');let d='';s.on('data',b=>d+=b);s.on('end',()=>{console.log(d);process.exit(0)});s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),3000)`]);
    return out.trim() === 'hello';
  } catch {
    return false;
  } finally {
    server.kill();
  }
}

t.test('two nodes, two networks: reach, isolation, removal, no-op, leftovers', async (t) => {
  const prefixes = ['mtovA', 'mtovB'];
  const cleanup = (): void => { for (const n of listNetns()) if (prefixes.some((p) => n.startsWith(`${p}-`))) deleteNetns(n); };
  cleanup();
  t.teardown(cleanup); // registered first, runs after the task namespaces' own teardowns
  const nodeA = tempNetns(t, 'nA');
  const nodeB = tempNetns(t, 'nB');
  {
    const ra = Rtnl.open(nodeA);
    const rb = Rtnl.open(nodeB);
    ra.createVeth({ name: 'under0', peerName: 'under0', peerNetns: nodeB, mtu: 1500 });
    ra.addAddress(ra.mustLink('under0').index, '192.0.2.1/24');
    rb.addAddress(rb.mustLink('under0').index, '192.0.2.2/24');
    ra.setLink(ra.mustLink('under0').index, { up: true });
    rb.setLink(rb.mustLink('under0').index, { up: true });
    ra.close();
    rb.close();
  }
  const tA1 = tempNetns(t, 'tA1');
  const tA2 = tempNetns(t, 'tA2');
  const tB1 = tempNetns(t, 'tB1');
  const tB2 = tempNetns(t, 'tB2');
  const net1 = { id: 'n1', vni: 4097, subnet: '10.10.1.0/24', gateway: '10.10.1.1' };
  const net2 = { id: 'n2', vni: 4098, subnet: '10.10.2.0/24', gateway: '10.10.2.1' };
  const A = { underlayAddress: '192.0.2.1', underlayMtu: 1500, prefix: 'mtovA' };
  const B = { underlayAddress: '192.0.2.2', underlayMtu: 1500, prefix: 'mtovB' };
  const attA = [
    { taskId: 'a1', networkId: 'n1', netns: tA1, ifname: 'eth0', cidr: '10.10.1.2/24' },
    { taskId: 'a2', networkId: 'n1', netns: tA2, ifname: 'eth0', cidr: '10.10.1.3/24' },
    { taskId: 'a2', networkId: 'n2', netns: tA2, ifname: 'eth1', cidr: '10.10.2.3/24' },
  ];
  const attB = [
    { taskId: 'b1', networkId: 'n1', netns: tB1, ifname: 'eth0', cidr: '10.10.1.4/24' },
    { taskId: 'b2', networkId: 'n2', netns: tB2, ifname: 'eth0', cidr: '10.10.2.4/24' },
  ];
  // What gossip would tell each node: every endpoint of the other node.
  const remotes = (atts: typeof attA, vtep: string): RemoteEndpoint[] =>
    atts.map((a) => { const ip = a.cidr.split('/')[0]!; return { networkId: a.networkId, ip, mac: macFromIp(ip), vtep }; });
  const inputA = (r: RemoteEndpoint[]): OverlayInput => ({ node: A, networks: [net1, net2], attachments: attA, remotes: r });
  const inputB: OverlayInput = { node: B, networks: [net1, net2], attachments: attB, remotes: remotes(attA, A.underlayAddress) };
  const all = remotes(attB, B.underlayAddress);

  const rA = reconcile(desiredState(inputA(all)), { prefix: 'mtovA', underlayNetns: nodeA });
  const rB = reconcile(desiredState(inputB), { prefix: 'mtovB', underlayNetns: nodeB });
  t.same(rA.errors.map(String), [], 'node A reconciled without errors');
  t.same(rB.errors.map(String), [], 'node B reconciled without errors');
  t.comment(`first reconcile: A ${rA.steps.length} steps ${rA.writes} writes ${rA.ms.toFixed(1)} ms; B ${rB.steps.length} steps ${rB.writes} writes`);
  const sbxA1 = sandboxName('mtovA', 4097);

  // Kernel view from outside, with iproute2.
  const [vx] = ipJson<{ mtu: number; linkinfo: { info_data: { id: number; port: number; learning: boolean; proxy?: boolean; local: string } } }[]>(sbxA1, '-d', 'link', 'show', 'vx-4097');
  t.equal(vx!.mtu, 1450, 'vxlan MTU = underlay - 50');
  t.match(vx!.linkinfo.info_data, { id: 4097, port: 4789, learning: false, proxy: true, local: '192.0.2.1' });
  const [eth0] = ipJson<{ address: string; mtu: number; addr_info: { local: string }[] }[]>(tA1, 'addr', 'show', 'eth0');
  t.equal(eth0!.address, '02:42:0a:0a:01:02', 'task MAC derived from its IP');
  t.equal(eth0!.mtu, 1450);
  t.ok(eth0!.addr_info.some((a) => a.local === '10.10.1.2'));
  const fdb = (): Fdb[] => ipJson<Fdb[]>(sbxA1, 'bridge', 'fdb', 'show', 'dev', 'vx-4097').filter((e) => e.dst);
  const neigh = (): Neigh[] => ipJson<Neigh[]>(sbxA1, 'neigh', 'show', 'dev', 'vx-4097');
  t.same(fdb().map((e) => [e.mac, e.dst]), [['02:42:0a:0a:01:04', '192.0.2.2']], 'one FDB entry: the remote task of net1');
  t.same(neigh().map((n) => [n.dst, n.lladdr, n.state]), [['10.10.1.4', '02:42:0a:0a:01:04', ['PERMANENT']]]);

  t.ok(ping(tA1, '10.10.1.4'), 'A1 pings B1 over VXLAN');
  t.ok(ping(tA1, '10.10.1.3'), 'A1 pings A2 on the same node');
  t.ok(ping(tA1, '10.10.1.4', ['-M', 'do', '-s', '1372']), '1400-byte ping with DF crosses');
  t.notOk(ping(tA1, '10.10.1.4', ['-M', 'do', '-s', '1423']), 'above the overlay MTU does not (DF)');
  t.ok(await tcpConnect(tA1, tB1, '10.10.1.4'), 'TCP connect A1 -> B1');
  t.ok(ping(tA2, '10.10.2.4'), 'A2 (on both networks) reaches B2 on net2 through eth1');
  // Isolation: even with a route and a hand-made neighbour entry, A1's frames stay in VNI 4097.
  inNetns(tA1, ['ip', 'route', 'add', '10.10.2.0/24', 'dev', 'eth0']);
  inNetns(tA1, ['ip', 'neigh', 'replace', '10.10.2.4', 'lladdr', macFromIp('10.10.2.4'), 'dev', 'eth0', 'nud', 'permanent']);
  t.notOk(ping(tA1, '10.10.2.4'), 'net1 task cannot reach net2 task');

  const noop = reconcile(desiredState(inputA(all)), { prefix: 'mtovA', underlayNetns: nodeA });
  t.equal(noop.steps.length, 0, 'nothing to do');
  t.equal(noop.writes, 0, 'restart with nothing changed: zero netlink writes');
  t.equal(noop.netnsOps, 0);
  t.comment(`no-op reconcile: ${noop.writes} writes, ${noop.ms.toFixed(1)} ms`);
  // Node B has one task per network: the task ends (eth0, same ifindex in each task namespace) and the
  // sandbox ends (same ifindex in each sandbox) repeat, so pairing by index alone is ambiguous.
  const noopB = reconcile(desiredState(inputB), { prefix: 'mtovB', underlayNetns: nodeB });
  t.same([noopB.steps.length, noopB.writes], [0, 0], `no-op with repeating ifindexes: ${noopB.steps.map((s) => s.op).join(', ') || 'nothing'}`);

  // Gossip drops B1: its entries go.
  const withoutB1 = all.filter((r) => r.ip !== '10.10.1.4');
  const rm = reconcile(desiredState(inputA(withoutB1)), { prefix: 'mtovA', underlayNetns: nodeA });
  t.same(rm.errors.map(String), []);
  t.same(rm.steps.map((s) => s.op).sort(), ['del-fdb', 'del-neigh']);
  t.equal(rm.writes, 2, 'one message per removed entry');
  t.same(fdb(), [], 'FDB entry removed');
  t.same(neigh(), [], 'neighbour entry removed');
  t.notOk(ping(tA1, '10.10.1.4'), 'B1 unreachable without its entries (nothing floods)');
  t.equal(reconcile(desiredState(inputA(all)), { prefix: 'mtovA', underlayNetns: nodeA }).errors.length, 0);
  t.ok(ping(tA1, '10.10.1.4'), 'back');

  // Crash-like leftover: a wrong vxlan device under our name (learning on, no proxy, not enslaved).
  {
    const r = Rtnl.open(sbxA1);
    r.deleteLink('vx-4097');
    r.close();
    const h = Rtnl.open(nodeA);
    h.createVxlan({ name: 'mtovA-vx-4097', vni: 4097, local: '192.0.2.1', learning: true });
    h.moveLink(h.mustLink('mtovA-vx-4097').index, sbxA1, 'vx-4097');
    h.close();
  }
  // A2 leaves net2 (its eth1): the last local task there, so net2's sandbox goes.
  const attA12 = attA.slice(0, 2);
  const dropped = reconcile(desiredState({ ...inputA(all), attachments: attA12 }), { prefix: 'mtovA', underlayNetns: nodeA });
  t.same(dropped.errors.map(String), [], 'stale vxlan replaced without "file exists"');
  t.notOk(listNetns().includes(sandboxName('mtovA', 4098)), 'last local task left net2: its sandbox is gone');
  t.notOk(ipJson<{ ifname: string }[]>(tA2, 'link', 'show').some((l) => l.ifname === 'eth1'), 'its task interface went with it');
  t.match(ipJson<{ linkinfo: { info_data: { learning: boolean } } }[]>(sbxA1, '-d', 'link', 'show', 'vx-4097')[0], { linkinfo: { info_data: { learning: false, proxy: true } } }, 'stale vxlan replaced');
  t.ok(ping(tA1, '10.10.1.4'), 'A1 reaches B1 again');
  // A Swarm-style leftover in the underlay namespace holding net2's VNI: creating it would be EEXIST.
  {
    const h = Rtnl.open(nodeA);
    h.createVxlan({ name: 'mtovA-vx-4098', vni: 4098, local: '192.0.2.1' });
    h.close();
  }
  const back = reconcile(desiredState(inputA(all)), { prefix: 'mtovA', underlayNetns: nodeA });
  t.same(back.errors.map(String), [], 'net2 sandbox re-created');
  t.ok(ping(tA2, '10.10.2.4'), 'A2 reaches B2 again');
  t.equal(reconcile(desiredState(inputA(all)), { prefix: 'mtovA', underlayNetns: nodeA }).writes, 0, 'and then zero writes again');

  // Everything leaves: both sandboxes go.
  const empty = reconcile(desiredState({ ...inputA([]), attachments: [] }), { prefix: 'mtovA', underlayNetns: nodeA });
  t.same(empty.errors.map(String), []);
  t.same(listNetns().filter((n) => n.startsWith('mtovA-')), [], 'no sandbox left on A');
});
