// The load-balancing test bed: two simulated nodes (namespaces joined by a veth underlay) with real
// overlay sandboxes (dataplane/overlay), task namespaces with TCP/UDP servers served from this
// process (native sockets opened inside them), and a client process in a client task namespace.
// The backend under test comes from MESH_LB_BACKEND (nftables by default; the vm tier sets ipvs).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { native, netnsPath } from '../../../native/index.js';
import { deleteNetns, listNetns, Rtnl } from '../../../dataplane/netlink/index.js';
import { desiredState, macFromIp, reconcile, sandboxName, type LocalAttachment, type OverlayInput, type RemoteEndpoint } from '../../../dataplane/overlay/index.js';
import { openBackend, type BackendKind, type LbBackend } from '../../../dataplane/lb/index.js';
import { tempNetns } from '../../helpers/netns.js';

export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

export const backendKind = (): BackendKind => (process.env.MESH_LB_BACKEND === 'ipvs' ? 'ipvs' : 'nftables');

export interface Hello { backend?: string; seenAs?: string; error?: string }

/** Servers answering "<name> <client address>\n" on connect and "pong" to "ping"; UDP the same. */
export async function serve(t: Teardown, netns: string, name: string, ip: string, ports: number[]): Promise<void> {
  for (const port of ports) {
    const fd = native.socketOpen(netnsPath(netns), 'tcp', ip, port, 128);
    const conns = new Set<net.Socket>();
    const server = net.createServer((s) => {
      conns.add(s);
      s.on('close', () => conns.delete(s));
      s.on('error', () => {});
      s.write(`${name} ${s.remoteAddress}\n`);
      s.on('data', (d) => { if (d.toString().includes('ping')) s.write('pong\n'); });
    });
    await new Promise<void>((r) => server.listen({ fd }, r));
    t.teardown(() => new Promise<void>((r) => { for (const c of conns) c.destroy(); server.close(() => r()); }));
    const ufd = native.socketOpen(netnsPath(netns), 'udp', ip, port, 0);
    const u = dgram.createSocket('udp4');
    await new Promise<void>((r) => u.bind({ fd: ufd }, r));
    u.on('message', (_m, rinfo) => u.send(`${name} ${rinfo.address}\n`, rinfo.port, rinfo.address));
    t.teardown(() => new Promise<void>((r) => u.close(() => r())));
  }
}

/** A client process in a namespace (see client.ts). */
export class Client {
  private p: ChildProcessWithoutNullStreams;
  private lines: readline.Interface;
  private waiting: ((l: string) => void)[] = [];

  constructor(t: Teardown, readonly netns: string) {
    const script = fileURLToPath(new URL('./client.js', import.meta.url));
    this.p = spawn('nsenter', [`--net=${netnsPath(netns)}`, '--', process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.p.stderr.on('data', (d: Buffer) => process.stderr.write(`[client ${netns}] ${d.toString()}`));
    this.lines = readline.createInterface({ input: this.p.stdout });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
    t.teardown(() => { this.p.stdin.end(); this.p.kill(); });
  }

  private send<T>(cmd: object): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${this.netns}: no answer to ${JSON.stringify(cmd)}`)), 60_000);
      this.waiting.push((l) => { clearTimeout(timer); resolve(JSON.parse(l) as T); });
      this.p.stdin.write(JSON.stringify(cmd) + '\n');
    });
  }

  probe(addr: string, port: number, n: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<Hello[]> {
    return this.send({ op: 'probe', addr, port, n, proto });
  }
  open(addr: string, port: number, n: number): Promise<Hello[]> {
    return this.send({ op: 'open', addr, port, n });
  }
  check(): Promise<string[]> {
    return this.send({ op: 'check' });
  }
}

export const countBy = (hs: Hello[]): Record<string, number> => {
  const c: Record<string, number> = {};
  for (const h of hs) { const k = h.backend ?? `error:${h.error}`; c[k] = (c[k] ?? 0) + 1; }
  return c;
};

export interface Bed {
  nodeA: string;
  nodeB: string;
  /** overlay sandboxes per node for net1 (VIPs) and net2 (ingress) */
  sbxA1: string;
  sbxB1: string;
  sbxA2: string;
  tasks: Record<string, { netns: string; ip: string }>;
  backendFor(netns: string): LbBackend;
}

const NET1 = { id: 'n1', vni: 4101, subnet: '10.10.1.0/24', gateway: '10.10.1.1' };
const NET2 = { id: 'n2', vni: 4102, subnet: '10.10.2.0/24', gateway: '10.10.2.1' };
export const INGRESS_SNAT_A = '10.10.2.250';

/**
 * Node A: client c1 and backend a1 on net1; ingress task ia on net2. Node B: backends b1, b2 and
 * client c2 on net1; ingress task ib on net2. Sandboxes use the prefixes mtlA/mtlB (+pid).
 */
export async function buildBed(t: Teardown): Promise<Bed> {
  const pid = process.pid % 100000;
  const pA = `mtl${pid}A`;
  const pB = `mtl${pid}B`;
  const cleanup = (): void => { for (const n of listNetns()) if (n.startsWith(`${pA}-`) || n.startsWith(`${pB}-`)) deleteNetns(n); };
  cleanup();
  t.teardown(cleanup);
  const nodeA = tempNetns(t, 'lA');
  const nodeB = tempNetns(t, 'lB');
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
  const spec: Record<string, { node: 'A' | 'B'; net: 'n1' | 'n2'; ip: string }> = {
    c1: { node: 'A', net: 'n1', ip: '10.10.1.2' },
    a1: { node: 'A', net: 'n1', ip: '10.10.1.3' },
    b1: { node: 'B', net: 'n1', ip: '10.10.1.4' },
    b2: { node: 'B', net: 'n1', ip: '10.10.1.5' },
    c2: { node: 'B', net: 'n1', ip: '10.10.1.6' },
    ia: { node: 'A', net: 'n2', ip: '10.10.2.3' },
    ib: { node: 'B', net: 'n2', ip: '10.10.2.4' },
  };
  const tasks: Bed['tasks'] = {};
  const atts: Record<'A' | 'B', LocalAttachment[]> = { A: [], B: [] };
  for (const [name, s] of Object.entries(spec)) {
    const ns = tempNetns(t, name);
    tasks[name] = { netns: ns, ip: s.ip };
    atts[s.node].push({ taskId: name, networkId: s.net, netns: ns, ifname: 'eth0', cidr: `${s.ip}/24` });
  }
  const remotesOf = (node: 'A' | 'B', vtep: string): RemoteEndpoint[] =>
    atts[node].map((a) => { const ip = a.cidr.split('/')[0]!; return { networkId: a.networkId, ip, mac: macFromIp(ip), vtep }; });
  const A = { underlayAddress: '192.0.2.1', underlayMtu: 1500, prefix: pA };
  const B = { underlayAddress: '192.0.2.2', underlayMtu: 1500, prefix: pB };
  const inA: OverlayInput = { node: A, networks: [NET1, NET2], attachments: atts.A, remotes: remotesOf('B', B.underlayAddress) };
  const rA = reconcile(desiredState(inA), { prefix: pA, underlayNetns: nodeA });
  if (rA.errors.length) throw rA.errors[0];
  const sbxA2 = sandboxName(pA, NET2.vni);
  // Node A's ingress source address must be reachable from tasks on B, like any endpoint: gossip
  // would carry it with the MAC of A's ingress sandbox bridge.
  const brMac = Rtnl.open(sbxA2);
  const mac = brMac.mustLink('br0').mac!;
  brMac.close();
  const inB: OverlayInput = {
    node: B, networks: [NET1, NET2], attachments: atts.B,
    remotes: [...remotesOf('A', A.underlayAddress), { networkId: 'n2', ip: INGRESS_SNAT_A, mac, vtep: A.underlayAddress }],
  };
  const rB = reconcile(desiredState(inB), { prefix: pB, underlayNetns: nodeB });
  if (rB.errors.length) throw rB.errors[0];
  const kind = backendKind();
  return {
    nodeA, nodeB, tasks, sbxA2,
    sbxA1: sandboxName(pA, NET1.vni),
    sbxB1: sandboxName(pB, NET1.vni),
    backendFor: (netns) => openBackend(kind, netns),
  };
}
