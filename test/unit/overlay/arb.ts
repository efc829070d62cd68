// Random overlay inputs and random "what the kernel holds" states for the property tests.
import fc from 'fast-check';
import type { LinkState, LocalAttachment, NodeState, OverlayInput, OverlayNetwork, RemoteEndpoint } from '../../../dataplane/overlay/index.js';
import { desiredState, macFromIp } from '../../../dataplane/overlay/index.js';

const NETS: OverlayNetwork[] = [1, 2, 3].map((i) => ({ id: `n${i}`, vni: 4096 + i, subnet: `10.${i}.0.0/24`, gateway: `10.${i}.0.1` }));

export const arbInput: fc.Arbitrary<OverlayInput> = fc
  .record({
    // per task namespace: which networks it joins (eth0, eth1, ... in that order)
    tasks: fc.array(fc.subarray([0, 1, 2], { minLength: 1 }), { maxLength: 4 }),
    remotes: fc.array(fc.record({ net: fc.integer({ min: 0, max: 2 }), host: fc.integer({ min: 2, max: 30 }), vtep: fc.constantFrom('192.0.2.1', '192.0.2.2', '192.0.2.3') }), { maxLength: 8 }),
    mtu: fc.constantFrom(1500, 9000),
    generation: fc.constantFrom('a', 'b'),
  })
  .map(({ tasks, remotes, mtu, generation }) => {
    const attachments: LocalAttachment[] = tasks.flatMap((nets, ti) =>
      nets.map((n, k) => ({ taskId: `${generation}${ti}`, networkId: NETS[n]!.id, netns: `task${ti}`, ifname: `eth${k}`, cidr: `10.${n + 1}.0.${100 + ti}/24` })),
    );
    const rs: RemoteEndpoint[] = remotes.map((r) => {
      const ip = `10.${r.net + 1}.0.${r.host}`;
      return { networkId: NETS[r.net]!.id, ip, mac: macFromIp(ip), vtep: r.vtep };
    });
    return { node: { underlayAddress: '192.0.2.1', underlayMtu: mtu, prefix: 'msh' }, networks: NETS, attachments, remotes: rs };
  });

type Mutation = (s: NodeState, pick: number) => void;

const links = (s: NodeState): [string, string, LinkState][] =>
  Object.entries(s.netns).flatMap(([ns, n]) => Object.entries(n.links).map(([name, l]): [string, string, LinkState] => [ns, name, l]));

function unpair(s: NodeState, l: LinkState): void {
  if (!l.peer) return;
  const i = l.peer.lastIndexOf('/');
  const p = s.netns[l.peer.slice(0, i)]?.links[l.peer.slice(i + 1)];
  if (p) delete p.peer;
  delete l.peer;
}

// Each is something a crash, a manual `ip` command or an older meshd could leave behind.
const MUTATIONS: Mutation[] = [
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) { unpair(s, x[2]); delete s.netns[x[0]]!.links[x[1]]; } },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) x[2].mtu = 1280; },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) x[2].up = !x[2].up; },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) delete x[2].master; },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) x[2].addrs = [...x[2].addrs, '192.168.9.9/24'].sort(); },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) x[2].addrs = []; },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x) unpair(s, x[2]); },
  (s, k) => { const x = links(s)[k % Math.max(1, links(s).length)]; if (x?.[2].mac) x[2].mac = '02:42:00:00:00:01'; },
  (s, k) => { const x = links(s).filter((l) => l[2].vxlan)[k % 3]; if (x?.[2].vxlan) x[2].vxlan.learning = true; },
  (s, k) => { const x = links(s).filter((l) => l[2].vxlan)[k % 3]; if (x?.[2].vxlan) x[2].vxlan.proxy = false; },
  (s, k) => { const n = Object.values(s.netns).filter((n) => n.owned)[k % 3]; if (n) n.links['junk0'] = { kind: 'dummy', mtu: 1500, up: true, addrs: [] }; },
  (s, k) => { const n = Object.values(s.netns).filter((n) => n.owned)[k % 3]; if (n) { n.fdb['02:42:0a:09:09:09'] = '192.0.2.9'; n.neigh['10.9.9.9'] = '02:42:0a:09:09:09'; } },
  (s, k) => { const n = Object.values(s.netns).filter((n) => n.owned)[k % 3]; if (n) { const m = Object.keys(n.fdb)[0]; if (m) n.fdb[m] = '192.0.2.77'; const ip = Object.keys(n.neigh)[0]; if (ip) delete n.neigh[ip]; } },
  (s) => { s.netns['msh-ov-999'] = { owned: true, links: { br0: { kind: 'bridge', mtu: 1500, up: true, addrs: [] } }, fdb: {}, neigh: {} }; },
  (s) => { s.hostLinks = [...s.hostLinks, 'msh-vx-4097']; },
  (s, k) => { const n = Object.values(s.netns).filter((n) => !n.owned)[k % 4]; if (n) n.links['eth7'] = { kind: 'veth', mtu: 1500, up: true, addrs: [] }; },
];

/** A kernel state: some desired state, damaged by a few random mutations. */
export const arbActual: fc.Arbitrary<NodeState> = fc
  .record({ input: arbInput, muts: fc.array(fc.tuple(fc.integer({ min: 0, max: MUTATIONS.length - 1 }), fc.nat(50)), { maxLength: 6 }) })
  .map(({ input, muts }) => {
    const s = desiredState(input);
    for (const [m, k] of muts) MUTATIONS[m]!(s, k);
    return s;
  });
