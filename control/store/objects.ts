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
  /** Gossip keys (base64, oldest first) and which is primary; rotated by the leader. */
  gossip?: { keys: string[]; primary: number; rotatedAt: string };
  /**
   * Join tokens, the root CA (its key signs node certificates) and, with autolock on, the unlock key.
   * Only managers hold the store, and its WAL and snapshots are encrypted at rest.
   */
  secrets?: { tokens: { worker: string; manager: string }; ca: { cert: string; key: string }; unlockKey?: string };
  /** Removed nodes: their certificates issued up to `at` are refused; entries go after `until`. */
  removedNodes?: Record<string, { at: string; until: string }>;
}

export interface ClusterSpec {
  heartbeatPeriodMs: number;
  /** Missed heartbeats before a node is marked down. */
  heartbeatGrace: number;
  electionTickMs: number;
  heartbeatTickMs: number;
  /** How often the leader rotates the gossip key (Swarm: 12 h). */
  gossipKeyRotationMs?: number;
  /** Lifetime of node certificates (Swarm: 90 days); nodes renew at 50-80% of it. */
  certExpiryMs?: number;
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
  /**
   * The node's own address on the ingress network (its ingress sandbox), from the allocator: the
   * routing mesh forwards through it and overlay health probes are sent from and to it.
   */
  ingressAddr?: string;
}

/** A named blob (like `docker config`, but updatable in place, like a Kubernetes ConfigMap). */
export interface ConfigObject {
  id: string;
  name: string;
  /** base64 */
  data: string;
  labels: Record<string, string>;
}

// ---- services and tasks (swarmkit's model) ----

export type RestartCondition = 'none' | 'on-failure' | 'any';
export type FailureAction = 'pause' | 'continue' | 'rollback';
export type UpdateOrder = 'stop-first' | 'start-first';

export interface UpdateConfig {
  parallelism: number; // tasks replaced at once; 0 = all
  delayMs: number; // between batches
  failureAction: FailureAction;
  monitorMs: number; // how long a new task must keep running to count as a success
  maxFailureRatio: number; // 0..1 of updated tasks that may fail before failureAction
  order: UpdateOrder;
}

export interface PortConfig {
  published: number;
  target: number;
  protocol: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
}

export interface TaskSpec {
  runtime: 'netns' | 'docker';
  /** netns: argv of the command; docker: optional command override */
  command?: string[];
  image?: string; // docker
  /** bumped to replace every task although nothing else changed (Docker's ForceUpdate) */
  forceUpdate?: number;
  env?: Record<string, string>;
  /** reservations the scheduler accounts for */
  resources?: { nanoCpus?: number; memoryBytes?: number };
  restart: { condition: RestartCondition; delayMs: number; maxAttempts: number; windowMs: number };
  placement: {
    /** e.g. "node.labels.zone==a", "node.role!=manager", "node.hostname==n1", "node.id==ID" */
    constraints: string[];
    /** spread over the values of a node label, e.g. "node.labels.zone" */
    preferences: { spread: string }[];
  };
}

export interface ServiceSpec {
  name: string;
  mode: 'replicated' | 'global';
  replicas: number; // replicated mode
  task: TaskSpec;
  networks: { target: string; aliases: string[] }[];
  endpoint: { mode: 'vip' | 'dnsrr'; ports: PortConfig[] };
  update: UpdateConfig;
  rollback: UpdateConfig;
}

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface ServiceObject {
  id: string;
  spec: ServiceSpec;
  /** from the allocator: one VIP per attached network (and ingress when published there); VIP mode only */
  endpointVips?: EndpointVip[];
  /** from the allocator: ingress-mode ports this service owns cluster-wide (published 0 resolved) */
  endpointPorts?: PortConfig[];
  /** the spec before the last update: what `service rollback` returns to */
  previousSpec?: ServiceSpec;
  /** bumps on every spec change; tasks record the version they were made from */
  specVersion: number;
  updateStatus?: { state: UpdateState; startedAt: string; completedAt?: string; message: string };
}

export type TaskState =
  | 'new' | 'pending' | 'assigned' | 'accepted' | 'preparing' | 'starting' | 'running'
  | 'complete' | 'failed' | 'shutdown' | 'rejected' | 'orphaned';

export interface TaskObject {
  id: string;
  serviceId: string;
  /** replicated services: the replica slot (1..replicas); global: 0 */
  slot: number;
  /** set by the scheduler (replicated) or at creation (global) */
  nodeId?: string;
  specVersion: number;
  spec: TaskSpec;
  desiredState: 'running' | 'shutdown' | 'remove';
  status: { state: TaskState; message: string; timestamp: string; exitCode?: number; err?: string };
  /** why a pending task could not be placed */
  pendingReason?: string;
  /** addresses on each network, from the allocator */
  networks: { network: string; addresses: string[] }[];
  /**
   * A standalone task on attachable networks (`meshctl run --network`), like a `docker run` container
   * on an attachable overlay: no service (serviceId is ""), pinned to the node that asked for it.
   */
  attachment?: { name: string };
  createdAt: string;
}

// ---- overlay networks ----

export interface NetworkSpec {
  name: string;
  driver: 'overlay';
  /** CIDR, e.g. "10.1.2.0/24"; absent: carved from the default address pool */
  subnet?: string;
  /** inside subnet; absent: the first host address */
  gateway?: string;
  /** CIDR inside subnet: task and VIP addresses come only from here */
  ipRange?: string;
  /** standalone tasks (`meshctl run --network`) may join */
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
  /** why the allocator could not allocate it (pool exhausted, overlap): shown by `network inspect` */
  error?: string;
}

/** A service VIP on one network (plain address; the network's subnet gives the prefix). */
export interface EndpointVip {
  network: string; // network id
  addr: string;
}

export interface KindMap {
  cluster: ClusterObject;
  network: NetworkObject;
  node: NodeObject;
  config: ConfigObject;
  service: ServiceObject;
  task: TaskObject;
}
export type Kind = keyof KindMap;
export const KINDS: readonly Kind[] = ['cluster', 'node', 'config', 'network', 'service', 'task'];

export type Stored<K extends Kind> = KindMap[K] & { meta: Meta };
