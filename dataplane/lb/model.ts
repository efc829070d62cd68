// The load-balancing dataplane as plain data. Desired state (./desired) and what a backend reads
// back from the kernel (LbBackend.observe) share one shape, LbState, so planning is a diff of two
// values (./plan) and can be tested without a kernel. Everything is keyed by what survives a meshd
// restart (addresses, protocols, ports), never by kernel handles.

export type Proto = 'tcp' | 'udp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp'];

// ---- inputs of the desired-state function ---------------------------------------------------------

export interface BackendSpec {
  /** the task's address on the network (no prefix length) */
  ip: string;
  /** relative share of new connections; 0 = draining: keeps its connections, gets no new ones */
  weight: number;
}

export interface PortSpec {
  proto: Proto;
  port: number;
  /** port on the task; default: the same port */
  targetPort?: number;
}

export interface VipService {
  /** for error messages only */
  name?: string;
  vip: string;
  /**
   * Absent or empty: every TCP and UDP port of the VIP goes to the same port of a task (Swarm's VIP
   * semantics: a service needs no declared ports to be reachable). Otherwise only these ports.
   */
  ports?: PortSpec[];
  backends: BackendSpec[];
}

export interface NetworkLb {
  /** the overlay sandbox namespace of the network on this node (dataplane/overlay: <prefix>-ov-<vni>) */
  netns: string;
  services: VipService[];
}

export interface IngressPort {
  name?: string;
  proto: Proto;
  publishedPort: number;
  targetPort: number;
  /** task addresses on the ingress network, on any node */
  backends: BackendSpec[];
}

export interface IngressLb {
  /** this node's ingress sandbox namespace */
  netns: string;
  /**
   * Source address given to ingress connections on their way to a task: this node's own address on
   * the ingress network (unique per node: replies from a task on another node must come back here).
   * Ingress needs it because a task answers an outside client through its default route, not the
   * ingress network; internal VIPs keep the client's address instead (see topology.ts).
   */
  snatAddress: string;
  ports: IngressPort[];
}

export interface LbInput {
  networks: NetworkLb[];
  ingress?: IngressLb;
}

// ---- the state of one namespace -------------------------------------------------------------------

/**
 * What a frontend matches. addr "0.0.0.0" = any local address (ingress: the published port on the
 * sandbox); proto/port 0 = every TCP and UDP port of addr (VIP semantics).
 */
export interface FrontendMatch {
  addr: string;
  proto: Proto | 'any';
  port: number;
}

export interface Frontend {
  match: FrontendMatch;
  /** destination port on the backend; 0 = the packet's own port */
  targetPort: number;
  /** source NAT for this frontend's connections (ingress); absent = keep the client's address */
  snat?: string;
  /** backend IP -> weight (0 = draining) */
  backends: Record<string, number>;
}

export interface LbState {
  /** frontends by key (frontendKey(match)) */
  frontends: Record<string, Frontend>;
}

export const ANY_ADDR = '0.0.0.0';

/** Canonical key of a frontend: "10.0.1.5 any 0", "10.0.1.5 tcp 80", "0.0.0.0 udp 53". */
export const frontendKey = (m: FrontendMatch): string => `${m.addr} ${m.proto} ${m.port}`;

export function parseFrontendKey(key: string): FrontendMatch {
  const [addr, proto, port] = key.split(' ');
  if (addr === undefined || (proto !== 'tcp' && proto !== 'udp' && proto !== 'any') || port === undefined) throw new TypeError(`"${key}" is not a frontend key`);
  return { addr, proto, port: Number(port) };
}

// ---- changes ---------------------------------------------------------------------------------------

/**
 * One change per touched frontend, carrying what a backend needs whichever way it programs: the
 * per-backend deltas (IPVS: one message each) and the frontend's final state (nftables: one chain
 * rewritten). `removed` lists backends that leave: their connections are flushed after the change.
 */
export type LbChange =
  | { op: 'add-frontend'; key: string; frontend: Frontend }
  | { op: 'del-frontend'; key: string; frontend: Frontend }
  | {
      op: 'set-backends';
      key: string;
      frontend: Frontend;
      added: Record<string, number>;
      reweighted: Record<string, number>;
      removed: string[];
    };

/** How one apply went: kernel writes (nft transactions or netlink messages) and conntrack flushes. */
export interface ApplyResult {
  writes: number;
  flushed: number;
  ms: number;
  /** of ms, the time spent flushing connections of removed backends */
  flushMs?: number;
  /** of ms, the time the kernel took to take the write (nftables: the netlink transaction) */
  commitMs?: number;
  /** CPU time of that write (our thread, mostly in the kernel): what it costs without contention */
  commitCpuMs?: number;
}

/**
 * A load-balancing backend bound to one namespace. observe() reads what the kernel holds under our
 * names (our nftables table, IPVS services marked as ours); apply() programs changes as one batch.
 */
export interface LbBackend {
  readonly kind: 'nftables' | 'ipvs';
  readonly netns: string;
  observe(): Promise<LbState>;
  /**
   * What the backend believes the kernel holds after its last observe() or apply(), without
   * reading it; undefined when it must observe (first use, after an error, or a repair pending).
   * Shared with the backend: do not modify.
   */
  known(): LbState | undefined;
  apply(changes: LbChange[]): Promise<ApplyResult>;
  /** removes everything of ours from the namespace */
  clear(): Promise<void>;
  /** total kernel writes since this backend was created */
  readonly writes: number;
  close(): void;
}
