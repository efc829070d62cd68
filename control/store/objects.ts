// Cluster objects kept in Raft. Plain JSON data: the store versions them, Raft replicates them.
export type NodeRole = 'manager' | 'worker';
export type Availability = 'active' | 'pause' | 'drain';
export type NodeState = 'unknown' | 'ready' | 'down';

export interface Meta {
  /** Raft index of the last change: a cluster-wide, monotonic version. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface ClusterObject {
  id: string;
  name: string;
  /** Settings an operator changes with `swarm update`. */
  spec: ClusterSpec;
  /** Join tokens and the managers' shared key (encrypted at rest with the security issue). */
  secrets?: { tokens: { worker: string; manager: string }; clusterKey: string };
}

export interface ClusterSpec {
  heartbeatPeriodMs: number;
  /** Missed heartbeats before a node is marked down. */
  heartbeatGrace: number;
  electionTickMs: number;
  heartbeatTickMs: number;
}

export interface NodeObject {
  id: string;
  hostname: string;
  role: NodeRole;
  availability: Availability;
  labels: Record<string, string>;
  /** Address other nodes reach this node at (its 2377 listener for managers). */
  addr: string;
  state: NodeState;
  /** Managers: the Raft member id (equal to the node id) and reachability as the leader sees it. */
  manager?: { raftAddr: string; reachable?: boolean };
}

/** A named blob (like `docker config`, but updatable in place, like a Kubernetes ConfigMap). */
export interface ConfigObject {
  id: string;
  name: string;
  /** base64 */
  data: string;
  labels: Record<string, string>;
}

export interface KindMap {
  cluster: ClusterObject;
  node: NodeObject;
  config: ConfigObject;
}
export type Kind = keyof KindMap;
export const KINDS: readonly Kind[] = ['cluster', 'node', 'config'];

export type Stored<K extends Kind> = KindMap[K] & { meta: Meta };
