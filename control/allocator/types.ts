// Shapes the allocator reads and writes. Network objects are not in control/store/objects.ts yet: the
// integrator moves NetworkSpec/NetworkObject there (kind 'network') and adds the two service fields of
// AllocService to ServiceObject. Until then the allocator works on these local types.
import type { PortConfig, ServiceObject, TaskObject } from '../store/objects.js';

export interface NetworkSpec {
  name: string;
  driver: 'overlay';
  /** CIDR, e.g. "10.1.2.0/24"; absent: carved from the default address pool */
  subnet?: string;
  /** inside subnet; absent: the first host address */
  gateway?: string;
  /** CIDR inside subnet: task and VIP addresses come only from here */
  ipRange?: string;
  attachable: boolean;
  encrypted: boolean;
  mtu?: number;
  labels: Record<string, string>;
  /** the routing mesh's network (one per cluster); default subnet 10.255.0.0/16 */
  ingress?: boolean;
}

/** Filled in by the allocator, then never changed while the network exists. */
export interface NetworkAllocation {
  vni: number;
  subnet: string;
  gateway: string;
}

export interface NetworkObject {
  id: string;
  spec: NetworkSpec;
  allocated?: NetworkAllocation;
}

/** A service VIP on one network (plain address, no prefix: the network's subnet gives the prefix). */
export interface EndpointVip {
  network: string; // network id
  addr: string;
}

/** The fields the allocator adds to a service (proposed for ServiceObject). */
export interface ServiceAllocation {
  /** one VIP per attached network (and ingress when it publishes in ingress mode); VIP mode only */
  endpointVips?: EndpointVip[];
  /** ingress-mode ports this service owns cluster-wide (published 0 resolved to a dynamic port) */
  endpointPorts?: PortConfig[];
}

export type AllocService = ServiceObject & ServiceAllocation;

export type Versioned<T> = T & { meta?: { version: number } };

/** Store ops the pass emits: updates only, compare-and-set on the version read (when stored). */
export type AllocatorOp =
  | { op: 'update'; kind: 'network'; object: NetworkObject; version?: number }
  | { op: 'update'; kind: 'service'; object: AllocService; version?: number }
  | { op: 'update'; kind: 'task'; object: TaskObject; version?: number };

export interface AllocationError {
  kind: 'network' | 'service' | 'task';
  id: string;
  /** the spec field at fault, e.g. "subnet", "gateway", "ipRange", "endpoint.ports", "networks" */
  field?: string;
  message: string;
}

export interface AddressPool {
  /** CIDR to carve networks from */
  base: string;
  /** prefix length of each carved subnet (Swarm: 24) */
  size: number;
}

export interface AllocatorConfig {
  pools: AddressPool[];
  /** the ingress network's default subnet, kept out of the pools even before that network exists */
  ingressSubnet: string;
  /** VNIs given out, inclusive (Swarm: from 4096) */
  vniRange: { first: number; last: number };
  /** largest subnet accepted for a network (bitmap size): prefix length, default 16 (65,536 addresses) */
  maxSubnetPrefix: number;
  /** dynamic range for ingress ports published as 0 (Swarm: 30000-32767) */
  dynamicPorts: { first: number; last: number };
}

export const DEFAULT_CONFIG: AllocatorConfig = {
  pools: [{ base: '10.0.0.0/8', size: 24 }],
  ingressSubnet: '10.255.0.0/16',
  vniRange: { first: 4096, last: 0xffffff },
  maxSubnetPrefix: 16,
  dynamicPorts: { first: 30000, last: 32767 },
};
