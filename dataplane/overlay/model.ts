// The overlay dataplane as plain data. Desired state (./desired) and what the kernel holds
// (./observe) share one shape, so the reconciler is a diff of two values (./diff) and can be tested
// without a kernel. Everything is keyed by name, never by ifindex: indexes are an artefact of one
// kernel run, names are what survive a meshd restart and what we adopt.

export interface VxlanParams {
  vni: number;
  port: number;
  local: string;
  learning: boolean;
  /** ARP proxy: the vxlan device answers ARP from its neighbour table, so ARP never floods. */
  proxy: boolean;
}

export interface LinkState {
  kind: string;
  mtu: number;
  up: boolean;
  /** name of the bridge this link is a port of */
  master?: string;
  /** compared only when the desired state names one */
  mac?: string;
  /** IPv4 CIDRs, sorted */
  addrs: string[];
  vxlan?: VxlanParams;
  /** veth: the other end as "netns/ifname" (observed: only when both ends point at each other) */
  peer?: string;
}

export interface NsState {
  /** Owned namespaces (sandboxes) are created and deleted by us; task namespaces are not. */
  owned: boolean;
  links: Record<string, LinkState>;
  /** vxlan FDB: MAC -> remote VTEP (on the namespace's vxlan device) */
  fdb: Record<string, string>;
  /** permanent neighbours on the vxlan device: IP -> MAC */
  neigh: Record<string, string>;
}

export interface NodeState {
  netns: Record<string, NsState>;
  /** Our links left in the underlay namespace (e.g. by a crashed daemon): always stale. */
  hostLinks: string[];
}

// ---- inputs of the desired-state function ---------------------------------------------------------

export interface NodeConfig {
  /** this node's VTEP: the underlay address VXLAN packets leave from */
  underlayAddress: string;
  underlayMtu: number;
  /** prefix of every kernel object we own, e.g. "msh" */
  prefix: string;
  /** VXLAN UDP port; default 4789 */
  port?: number;
}

export interface OverlayNetwork {
  id: string;
  vni: number;
  /** CIDR, e.g. 10.0.1.0/24 */
  subnet: string;
  gateway: string;
  /** not handled yet: ESP/XFRM is a later step; the MTU does not subtract ESP overhead yet */
  encrypted?: boolean;
  /** per-network override; default underlay MTU - 50 (VXLAN over IPv4) */
  mtu?: number;
}

export interface LocalAttachment {
  taskId: string;
  networkId: string;
  /** the task's network namespace, by name (/run/netns/NAME) */
  netns: string;
  /** eth0, eth1, ... inside the task */
  ifname: string;
  /** the task's address with the network's prefix length, e.g. 10.0.1.5/24 */
  cidr: string;
}

export interface RemoteEndpoint {
  networkId: string;
  ip: string;
  mac: string;
  /** underlay address of the node the endpoint lives on */
  vtep: string;
}

export interface OverlayInput {
  node: NodeConfig;
  networks: OverlayNetwork[];
  attachments: LocalAttachment[];
  remotes: RemoteEndpoint[];
}

export const VXLAN_OVERHEAD = 50; // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
export const BRIDGE = 'br0';
