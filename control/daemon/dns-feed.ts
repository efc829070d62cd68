// Feeds the node's embedded DNS (dns/) from what the overlay agent sees: the endpoint records of
// every network this node takes part in (gossip) and the networks' allocations (dispatcher), and keeps
// one 127.0.0.11 listener in each local task. The ingress network serves no names (as in Swarm).
import { EmbeddedDns, type NetworkRecord, type ServiceRecord, type TaskRecord, type Upstream } from '../../dns/index.js';
import type { NetworkObject } from '../store/objects.js';
import type { EndpointRecord } from './endpoints.js';

/** "IP" or "IP:PORT" ("[v6]:PORT" for IPv6), as --dns-upstream and the API take it. */
export function parseUpstream(s: string): Upstream {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(s) ?? /^([0-9.]+)(?::(\d+))?$/.exec(s) ?? /^([0-9a-fA-F:]+)()$/.exec(s);
  const port = m?.[2] ? Number(m[2]) : 53;
  if (!m || !m[1] || !(port > 0 && port < 65536)) throw new TypeError(`"${s}" is not a resolver address (IP, IP:PORT or [IPv6]:PORT)`);
  return { address: m[1], port };
}

export class DnsFeed {
  readonly dns: EmbeddedDns;

  constructor(
    private readonly log: (l: string) => void,
    upstreams?: readonly Upstream[],
  ) {
    this.dns = new EmbeddedDns(upstreams ? { upstreams } : {});
  }

  /** The whole table from one networking pass (unchanged records cost nothing). */
  sync(seen: ReadonlyMap<string, readonly EndpointRecord[]>, networks: ReadonlyMap<string, NetworkObject>): void {
    const nets: NetworkRecord[] = [];
    const services = new Map<string, { id: string; name: string; mode: 'vip' | 'dnsrr'; networks: Map<string, { network: string; vips: string[]; aliases: string[] }> }>();
    const tasks = new Map<string, { id: string; serviceId: string; slot: number | string; networks: { network: string; addresses: string[]; aliases: string[] }[] }>();
    for (const [netId, records] of seen) {
      const n = networks.get(netId);
      if (!n?.allocated || n.spec.ingress) continue;
      nets.push({ id: n.id, name: n.spec.name, subnets: [n.allocated.subnet] });
      for (const r of records) {
        if (r.kind !== 'task' || r.draining) continue; // a task being stopped leaves DNS first
        let s = services.get(r.service);
        if (!s) services.set(r.service, (s = { id: r.service, name: r.serviceName, mode: r.mode, networks: new Map() }));
        if (!s.networks.has(netId)) s.networks.set(netId, { network: netId, vips: r.vip && r.mode === 'vip' ? [r.vip] : [], aliases: r.aliases });
        let t = tasks.get(r.task);
        if (!t) tasks.set(r.task, (t = { id: r.task, serviceId: r.service, slot: r.slot, networks: [] }));
        t.networks.push({ network: netId, addresses: [r.ip], aliases: [] });
      }
    }
    const svcs: ServiceRecord[] = [...services.values()].map((s) => ({ id: s.id, name: s.name, mode: s.mode, networks: [...s.networks.values()] }));
    try {
      this.dns.setTable(nets, svcs, [...tasks.values()] as TaskRecord[]);
    } catch (e) {
      // one malformed record from a peer: say so, keep serving the last good table
      this.log(`dns: table not updated: ${(e as Error).message}`);
    }
  }

  /** A local task: its listener at 127.0.0.11:53, scoped to its networks (first = primary). */
  async attach(taskId: string, netns: string, networkIds: readonly string[]): Promise<void> {
    await this.dns.attach(taskId, netns.startsWith('/') ? netns : `/run/netns/${netns}`, networkIds);
  }

  private chain: Promise<void> = Promise.resolve();

  /**
   * Exactly these local tasks have listeners (adopted tasks get theirs after a restart, stopped ones
   * lose theirs), each scoped to its current networks. Runs after the previous call finished.
   */
  ensure(local: ReadonlyMap<string, { netns: string; networks: readonly string[] }>): Promise<void> {
    this.chain = this.chain.then(async () => {
      const attached = new Set(this.dns.attachedTasks());
      for (const id of attached) {
        if (!local.has(id)) await this.dns.detach(id).catch((e: Error) => this.log(`dns: detach ${id}: ${e.message}`));
      }
      for (const [id, l] of local) {
        if (attached.has(id)) this.dns.setTaskNetworks(id, l.networks);
        else await this.attach(id, l.netns, l.networks).catch((e: Error) => this.log(`dns: listener for task ${id}: ${e.message}`));
      }
    });
    return this.chain;
  }

  close(): Promise<void> {
    return this.dns.close();
  }
}
