// What the DNS table holds: the slice of cluster state the embedded resolver needs. Fed from the
// network-scoped gossip tables (endpoints) and the store (services, networks); the table holds only
// live tasks: whoever feeds it removes a task when its endpoint leaves gossip.

export type EndpointMode = 'vip' | 'dnsrr';

export interface NetworkRecord {
  id: string;
  name: string;
  /** CIDRs of the network: reverse lookups inside them are ours (NXDOMAIN when unknown) and never leak
   * upstream. */
  subnets: readonly string[];
}

export interface ServiceAttachment {
  network: string;
  /** Service VIPs on this network (IPv4 and/or IPv6); unused in dnsrr mode. */
  vips: readonly string[];
  /** Network aliases of the service (`--network name=app,alias=db`): they resolve like the service name. */
  aliases: readonly string[];
}

export interface ServiceRecord {
  id: string;
  name: string;
  mode: EndpointMode;
  networks: readonly ServiceAttachment[];
}

export interface TaskAttachment {
  network: string;
  addresses: readonly string[];
  /** Aliases of this task alone on the network: they resolve to its addresses. */
  aliases: readonly string[];
}

export interface TaskRecord {
  id: string;
  serviceId: string;
  /** Replica slot, or the node ID for global services (as Docker names them). */
  slot: number | string;
  networks: readonly TaskAttachment[];
}

/** TTLs in seconds. See ttl.ts for the choice. */
export interface TtlPolicy {
  /** A service VIP and its PTR: stable across task churn and rolling updates. */
  vip: number;
  /** Anything derived from tasks (dnsrr, tasks.<service>, task names, their PTRs). */
  task: number;
}

export function taskName(service: string, t: Pick<TaskRecord, 'slot' | 'id'>): string {
  return `${service}.${t.slot}.${t.id}`;
}
