// Tunables. Defaults follow hashicorp/memberlist's LAN profile, faster where a LAN allows it: Swarm's
// users complain that node failures take ~24 s to notice, and LAN round trips are well under 1 ms.
// All durations are milliseconds.

export interface MeshConfig {
  /** SWIM probe period (memberlist LAN: 1000). 500: twice as fast detection; ~2 pings/s per node is cheap. */
  probeInterval: number;
  /** Wait for a direct ack before going indirect (memberlist LAN: 500). A LAN answers in < 10 ms. */
  probeTimeout: number;
  /** Relays asked for an indirect probe (memberlist: 3). */
  indirectChecks: number;
  /** Also probe over TCP when UDP fails (memberlist does): survives UDP-only filtering and heavy loss. */
  tcpFallback: boolean;
  /** Piggyback gossip period and fan-out (memberlist LAN: 200 ms, 3 nodes). */
  gossipInterval: number;
  gossipNodes: number;
  /** Keep gossiping to nodes this long after they are dead, so they can learn it and refute (memberlist: 30 s). */
  gossipToTheDead: number;
  /** Each broadcast is sent retransmitMult * ceil(log10(n + 1)) times (memberlist: 4). */
  retransmitMult: number;
  /** Suspicion timeout min = suspicionMult * max(1, log10(n)) * probeInterval (memberlist: 4). */
  suspicionMult: number;
  /** Suspicion timeout starts at maxMult * min and shrinks towards min with confirmations (memberlist: 6). */
  suspicionMaxMult: number;
  /** Lifeguard: the probe interval is scaled by (health + 1), health in [0, awarenessMax) (memberlist: 8). */
  awarenessMax: number;
  /** Full-state TCP sync period, scaled up above 32 nodes (memberlist LAN: 30 s). 20 s: faster catch-up. */
  pushPullInterval: number;
  /** How often to try a push/pull with one dead (not left) member, so healed partitions merge (serf: 30 s). */
  reconnectInterval: number;
  /** Forget dead members after this long (serf reconnect_timeout: 24 h); left members after gossipToTheDead. */
  deadReclaim: number;
  /** UDP payload budget for one packet before sealing (memberlist: 1400 bytes incl. its overhead). */
  packetBudget: number;
  /** Table tombstones (and entries of departed owners) are kept this long, then reaped (Swarm: 30 min). */
  tombstoneReap: number;
  /** Table-level full sync with one random member of each network (libnetwork networkdb: 30 s). */
  tableSyncInterval: number;
}

export const DEFAULT_CONFIG: Readonly<MeshConfig> = Object.freeze({
  probeInterval: 500,
  probeTimeout: 200,
  indirectChecks: 3,
  tcpFallback: true,
  gossipInterval: 200,
  gossipNodes: 3,
  gossipToTheDead: 30_000,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxMult: 6,
  awarenessMax: 8,
  pushPullInterval: 20_000,
  reconnectInterval: 15_000,
  deadReclaim: 24 * 3600_000,
  packetBudget: 1350,
  tombstoneReap: 30 * 60_000,
  tableSyncInterval: 30_000,
});

export function withDefaults(c: Partial<MeshConfig> = {}): MeshConfig {
  return { ...DEFAULT_CONFIG, ...c };
}

/** memberlist's retransmitLimit. */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** memberlist's pushPullScale: above 32 nodes, back off logarithmically so total sync load stays flat-ish. */
export function pushPullScale(interval: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return interval;
  const mult = Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1;
  return interval * mult;
}

/** Lifeguard suspicion bounds for a cluster of n members. */
export function suspicionTimeouts(c: MeshConfig, n: number): { min: number; max: number } {
  const scale = Math.max(1, Math.log10(Math.max(1, n)));
  const min = c.suspicionMult * scale * c.probeInterval;
  return { min, max: c.suspicionMaxMult * min };
}
