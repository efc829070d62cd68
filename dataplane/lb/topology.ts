// The namespace an internal VIP lives in, and why it is shaped this way.
//
// Load balancing runs in each overlay network's sandbox (dataplane/overlay: namespace
// <prefix>-ov-<vni>, bridge br0 with the gateway address, a vxlan port, one veth per local task),
// once per node and network, never per task:
//
//   * Each VIP is a /32 on the sandbox's `lo`. Linux answers ARP on br0 for any local address
//     (arp_ignore=0), so a task's ARP for the VIP is answered by its own node's sandbox; with
//     learning off and no flood entry on the vxlan device, that ARP never crosses VXLAN. The VIP
//     costs no address per node, and lo is outside what the overlay reconciler manages on br0.
//   * A task's packet to the VIP reaches the sandbox's IP stack (its destination MAC is br0's),
//     is DNATed (nftables) or scheduled (IPVS-NAT) to a task address, and routed out of br0 again,
//     to a local veth or over VXLAN. The source address is untouched: the backend sees the client.
//   * The reply goes backend -> client directly, and is *bridged* (same subnet): on its own it
//     would never meet the NAT that rewrote the request, and the client would get an answer from
//     the task's address instead of the VIP. br_netfilter with bridge-nf-call-iptables=1 in the
//     sandbox sends bridged IPv4 through the netfilter IP hooks, so conntrack (nftables) or
//     IPVS's FORWARD hook undoes the NAT on the reply. For a backend on another node the reply
//     comes back over VXLAN into the client's node's sandbox and is undone there. This is the
//     same reason Kubernetes needs br_netfilter for hairpin traffic through a bridge.
//   * The sandbox forwards (ip_forward=1) and sends no ICMP redirects: the request leaves br0 the
//     way it came in, and a redirect would tell the client to bypass the VIP.
//
// Ingress differs: a client outside the cluster is answered by a task through its default route,
// not the ingress network, so ingress connections are source-NATed to the node's own address on
// the ingress network (IngressLb.snatAddress), and no bridged un-NAT is involved.
import fs from 'node:fs';
import { native, netnsPath } from '../../native/index.js';
import { Rtnl, type Change } from '../netlink/index.js';
import { execIn } from './exec.js';

export interface SandboxOptions {
  /** the sandbox bridge (dataplane/overlay's BRIDGE) */
  bridge?: string;
  /** IPVS sysctls too (the ipvs backend) */
  ipvs?: boolean;
}

export interface SandboxResult {
  /** kernel writes: sysctl files and netlink messages */
  writes: number;
  steps: string[];
}

/** Sysctls a load-balancing sandbox needs, with the values it needs. */
export function sandboxSysctls(opts: SandboxOptions = {}): Record<string, string> {
  const br = opts.bridge ?? 'br0';
  const s: Record<string, string> = {
    'net/ipv4/ip_forward': '1',
    'net/ipv4/conf/all/send_redirects': '0',
    'net/ipv4/conf/default/send_redirects': '0',
    [`net/ipv4/conf/${br}/send_redirects`]: '0',
    'net/bridge/bridge-nf-call-iptables': '1',
  };
  if (opts.ipvs) {
    // conntrack=1: IPVS connections keep conntrack entries, so source NAT (ingress) and the
    //   bridged reply path see them. expire_nodest_conn=1: a removed backend's connections are
    //   dropped on their next packet (the client gets a reset) rather than blackholed.
    s['net/ipv4/vs/conntrack'] = '1';
    s['net/ipv4/vs/expire_nodest_conn'] = '1';
  }
  return s;
}

/** br_netfilter is a module on most distributions (built in here): load it when it is missing. */
export async function ensureBridgeNetfilter(): Promise<void> {
  if (fs.existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) return;
  const r = await execIn(null, ['modprobe', 'br_netfilter']);
  if (!fs.existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
    throw new Error(`br_netfilter is not available (modprobe br_netfilter: ${r.stderr.trim() || `exit ${r.code}`}): internal VIPs need it so that bridged replies are un-NATed`);
  }
}

/** The current values (undefined: no such sysctl), read in the namespace without a process. */
function readSysctls(netns: string, keys: string[]): Map<string, string | undefined> {
  const vals = native.readFilesInNetns(netnsPath(netns), keys.map((k) => `/proc/sys/${k}`));
  return new Map(keys.map((k, i) => [k, vals[i]?.trim()]));
}

const isVip = (a: { address: string; prefixLen: number; family: number }): boolean => a.family === 2 && a.prefixLen === 32 && !a.address.startsWith('127.');

/**
 * Makes the namespace a load-balancing sandbox: the sysctls above and exactly these VIPs on lo
 * (other /32s on lo are ours from an earlier run and go). Reads first, writes only what differs,
 * so a second call writes nothing.
 */
export async function prepareSandbox(netns: string, vips: readonly string[], opts: SandboxOptions = {}): Promise<SandboxResult> {
  const res: SandboxResult = { writes: 0, steps: [] };
  await ensureBridgeNetfilter();
  const want = sandboxSysctls(opts);
  const have = readSysctls(netns, Object.keys(want));
  for (const [k, v] of Object.entries(want)) {
    const cur = have.get(k);
    if (cur === v) continue;
    // A bridge that does not exist yet (the overlay creates it) has no conf entry: "all" covers
    // redirects until then, and the next call sets it.
    if (cur === undefined && k.startsWith('net/ipv4/conf/') && !k.includes('/all/') && !k.includes('/default/')) continue;
    if (cur === undefined) throw new Error(`sysctl ${k.replace(/\//g, '.')} does not exist in namespace ${netns}${k.includes('/vs/') ? ' (is ip_vs loaded?)' : ''}`);
    native.writeFileInNetns(netnsPath(netns), `/proc/sys/${k}`, v);
    res.writes++;
    res.steps.push(`sysctl ${k.replace(/\//g, '.')}=${v}`);
  }
  const r = Rtnl.open(netns);
  try {
    const lo = r.mustLink('lo');
    const changes: Change[] = [];
    if (!lo.up) changes.push({ op: 'set-link', index: lo.index, up: true });
    const cur = new Set(r.addresses(lo.index).filter(isVip).map((a) => a.address));
    const wanted = new Set(vips);
    for (const v of wanted) if (!cur.has(v)) changes.push({ op: 'add-addr', index: lo.index, cidr: `${v}/32` });
    for (const v of cur) if (!wanted.has(v)) changes.push({ op: 'del-addr', index: lo.index, cidr: `${v}/32` });
    if (changes.length) {
      r.applyOrThrow(changes);
      res.writes += changes.length;
      for (const c of changes) res.steps.push(c.op === 'set-link' ? 'lo up' : `${c.op} ${(c as { cidr: string }).cidr} on lo`);
    }
  } finally {
    r.close();
  }
  return res;
}
