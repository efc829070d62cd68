// Desired overlay dataplane: a pure function of (node config, networks, local attachments, gossip).
// Per network with at least one local attachment, a sandbox namespace "<prefix>-ov-<vni>" holds:
//   br0      bridge, up, carrying the network's gateway address (as Swarm does: the sandbox can then
//            talk to tasks itself, e.g. for health probes; tasks get no default route through it,
//            egress is a separate gateway bridge)
//   vx-<vni> vxlan, VNI, UDP 4789, local = underlay address, learning off, ARP proxy on, port of br0
//   vt<hash> one veth per local attachment, port of br0; its peer is <ifname> in the task namespace
//            with the task's address and a MAC derived from it (02:42:<ip bytes>, like Docker)
// and static FDB (MAC -> VTEP) and permanent neighbour (IP -> MAC) entries on the vxlan device for
// every remote endpoint. With learning off and no all-zero FDB entry nothing floods; ARP for a
// remote task is answered locally by the vxlan device's proxy from the neighbour table.
import { BRIDGE, VXLAN_OVERHEAD, type LinkState, type NodeState, type NsState, type OverlayInput, type OverlayNetwork } from './model.js';

export const sandboxName = (prefix: string, vni: number): string => `${prefix}-ov-${vni}`;
export const vxlanName = (vni: number): string => `vx-${vni}`;

/** MAC derived from an IPv4 address the way Docker does: 02:42 followed by the four address bytes. */
export function macFromIp(ip: string): string {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`"${ip}" is not an IPv4 address`);
  return ['02', '42', ...parts.map((p) => p.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Sandbox-side veth name: stable across restarts (so it is adopted), short enough for IFNAMSIZ,
 * and unique per (task, interface).
 */
export function vethName(taskId: string, ifname: string): string {
  let h = 0x811c9dc5; // FNV-1a 32
  for (const ch of `${taskId}/${ifname}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `vt${h.toString(16).padStart(8, '0')}`;
}

export function overlayMtu(node: { underlayMtu: number }, net: Pick<OverlayNetwork, 'mtu'>): number {
  return net.mtu ?? node.underlayMtu - VXLAN_OVERHEAD;
}

function prefixLen(cidr: string): number {
  const n = Number(cidr.split('/')[1]);
  if (!Number.isInteger(n) || n < 0 || n > 32) throw new TypeError(`"${cidr}" is not an IPv4 CIDR`);
  return n;
}

const ipOf = (cidr: string): string => cidr.split('/')[0] ?? cidr;

export function desiredState(input: OverlayInput): NodeState {
  const { node } = input;
  const out: NodeState = { netns: {}, hostLinks: [] };
  const nets = new Map(input.networks.map((n) => [n.id, n]));
  const sandboxOf = new Map<string, string>();

  // Attachments in a stable order so the result does not depend on input order.
  const atts = [...input.attachments].sort((a, b) => (a.netns + a.ifname < b.netns + b.ifname ? -1 : 1));
  for (const a of atts) {
    const net = nets.get(a.networkId);
    if (!net) continue; // network not known (yet): nothing to build
    const mtu = overlayMtu(node, net);
    const sbx = sandboxName(node.prefix, net.vni);
    let ns = out.netns[sbx];
    if (!ns) {
      const vx: LinkState = {
        kind: 'vxlan', mtu, up: true, master: BRIDGE, addrs: [],
        vxlan: { vni: net.vni, port: node.port ?? 4789, local: node.underlayAddress, learning: false, proxy: true },
      };
      ns = {
        owned: true,
        links: { [BRIDGE]: { kind: 'bridge', mtu, up: true, addrs: [`${net.gateway}/${prefixLen(net.subnet)}`] }, [vxlanName(net.vni)]: vx },
        fdb: {},
        neigh: {},
      };
      out.netns[sbx] = ns;
      sandboxOf.set(net.id, sbx);
    }
    const veth = vethName(a.taskId, a.ifname);
    ns.links[veth] = { kind: 'veth', mtu, up: true, master: BRIDGE, addrs: [], peer: `${a.netns}/${a.ifname}` };
    const task: NsState = out.netns[a.netns] ?? { owned: false, links: {}, fdb: {}, neigh: {} };
    out.netns[a.netns] = task;
    task.links[a.ifname] = { kind: 'veth', mtu, up: true, mac: macFromIp(ipOf(a.cidr)), addrs: [a.cidr], peer: `${sbx}/${veth}` };
  }

  // Remote endpoints, only for networks that have a sandbox here. Local addresses win over gossip
  // (a stale gossip entry must not shadow a task that lives here now); among remotes, a stable order.
  const localIps = new Set(atts.map((a) => `${a.networkId} ${ipOf(a.cidr)}`));
  const remotes = [...input.remotes].sort((a, b) => (a.ip + a.mac + a.vtep < b.ip + b.mac + b.vtep ? -1 : 1));
  for (const r of remotes) {
    const sbx = sandboxOf.get(r.networkId);
    const ns = sbx === undefined ? undefined : out.netns[sbx];
    if (!ns || r.vtep === node.underlayAddress || localIps.has(`${r.networkId} ${r.ip}`)) continue;
    const mac = r.mac.toLowerCase();
    ns.fdb[mac] = r.vtep;
    ns.neigh[r.ip] = mac;
  }
  return out;
}
