// Shapes the allocator reads and writes: the store's objects (control/store/objects.ts).
import type { EndpointVip, NetworkObject, NodeObject, PortConfig, ServiceObject, TaskObject } from '../store/objects.js';

export type { EndpointVip, NetworkAllocation, NetworkObject, NetworkSpec } from '../store/objects.js';

/** The fields the allocator adds to a service. */
export type ServiceAllocation = Pick<ServiceObject, 'endpointVips' | 'endpointPorts'>;

export type AllocService = ServiceObject;

export type Versioned<T> = T & { meta?: { version: number } };

/** Store ops the pass emits: updates only, compare-and-set on the version read (when stored). */
export type AllocatorOp =
  | { op: 'update'; kind: 'network'; object: NetworkObject; version?: number }
  | { op: 'update'; kind: 'service'; object: AllocService; version?: number }
  | { op: 'update'; kind: 'task'; object: TaskObject; version?: number }
  | { op: 'update'; kind: 'node'; object: NodeObject; version?: number };

export interface AllocationError {
  kind: 'network' | 'service' | 'task' | 'node';
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
