// The namespace lab's layout as a pure function of (prefix, node count, subnet): every name and
// address the lab uses comes from here, so `up`, `down` and `status` agree, and `down` can find
// everything by name even when no state survived a crash.
import ipaddr from 'ipaddr.js';

export interface LabOptions {
  prefix: string;
  nodes: number;
  /** IPv4 CIDR inside 198.18.0.0/15 (the benchmarking range reserved for labs). */
  subnet: string;
  mtu: number;
}

export interface LabNodePlan {
  /** short name used on the command line: n1, n2, ... */
  name: string;
  netns: string;
  ifname: string; // inside the node
  underlayPort: string; // its veth end on the underlay bridge
  address: string;
  cidr: string;
}

export interface LabPlan {
  prefix: string;
  underlayNetns: string;
  bridge: string;
  hostLink: string; // in the root namespace
  hostPeer: string; // its end on the underlay bridge
  hostAddress: string;
  hostCidr: string;
  subnet: string;
  prefixLen: number;
  mtu: number;
  nodes: LabNodePlan[];
}

export const LAB_DEFAULTS: LabOptions = { prefix: 'mesh', nodes: 3, subnet: '198.18.0.0/24', mtu: 1500 };
const LAB_RANGE = ipaddr.parseCIDR('198.18.0.0/15');
const PREFIX_RE = /^[a-z][a-z0-9]{0,10}$/;
const FIRST_NODE_OFFSET = 10; // .1 is the host side; nodes start at .11

/** A lab operation that cannot go on (what is missing, what to run). */
export class LabError extends Error {
  override name = 'LabError';
}

export class LabConfigError extends Error {
  override name = 'LabConfigError';
}

export function planLab(o: LabOptions): LabPlan {
  if (!PREFIX_RE.test(o.prefix)) {
    throw new LabConfigError(`lab prefix "${o.prefix}" must be 1-11 lowercase letters or digits, starting with a letter (it prefixes interface names, which the kernel limits to 15 characters)`);
  }
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 200) throw new LabConfigError(`--nodes must be a whole number from 1 to 200, not ${o.nodes}`);
  if (!Number.isInteger(o.mtu) || o.mtu < 1280 || o.mtu > 9000) throw new LabConfigError(`--mtu must be from 1280 to 9000, not ${o.mtu}`);
  let net: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    net = ipaddr.parseCIDR(o.subnet);
  } catch {
    throw new LabConfigError(`--subnet "${o.subnet}" is not an IPv4 CIDR such as 198.18.0.0/24`);
  }
  const [base, len] = net;
  if (base.kind() !== 'ipv4' || !(base as ipaddr.IPv4).match(LAB_RANGE as [ipaddr.IPv4, number]) || len < 15) {
    throw new LabConfigError(`--subnet ${o.subnet} must lie inside 198.18.0.0/15, the range reserved for labs`);
  }
  const start = ipv4ToInt(ipaddr.IPv4.networkAddressFromCIDR(o.subnet).toString());
  const size = 2 ** (32 - len);
  if (FIRST_NODE_OFFSET + o.nodes + 1 >= size) throw new LabConfigError(`--subnet ${o.subnet} has room for ${Math.max(0, size - FIRST_NODE_OFFSET - 2)} nodes, not ${o.nodes}`);
  const nodes: LabNodePlan[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const address = intToIpv4(start + FIRST_NODE_OFFSET + i);
    nodes.push({ name: `n${i}`, netns: `${o.prefix}-n${i}`, ifname: 'eth0', underlayPort: `n${i}`, address, cidr: `${address}/${len}` });
  }
  const hostAddress = intToIpv4(start + 1);
  return {
    prefix: o.prefix,
    underlayNetns: `${o.prefix}-ul`,
    bridge: 'br0',
    hostLink: `${o.prefix}-h`,
    hostPeer: 'host',
    hostAddress,
    hostCidr: `${hostAddress}/${len}`,
    subnet: `${intToIpv4(start)}/${len}`,
    prefixLen: len,
    mtu: o.mtu,
    nodes,
  };
}

/** Every namespace name a lab of this prefix may have made, any node count. */
export function isLabNetns(prefix: string, name: string): boolean {
  // node namespaces, and what those nodes' daemons made: task namespaces (PREFIX-nN-t-ID), overlay
  // sandboxes (PREFIX-nN-ov-VNI) and ingress sandboxes (PREFIX-nN-isbx)
  return name === `${prefix}-ul` || new RegExp(`^${prefix}-n\\d+(-t-[A-Za-z0-9_.-]+|-ov-\\d+|-isbx)?$`).test(name);
}

/** Accepts "n2", "2" or "PREFIX-n2". */
export function resolveNode(plan: LabPlan, arg: string): LabNodePlan {
  const short = arg.startsWith(`${plan.prefix}-`) ? arg.slice(plan.prefix.length + 1) : /^\d+$/.test(arg) ? `n${arg}` : arg;
  const n = plan.nodes.find((x) => x.name === short);
  if (!n) throw new LabConfigError(`no node "${arg}" in lab ${plan.prefix} (nodes: ${plan.nodes.map((x) => x.name).join(', ')})`);
  return n;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
