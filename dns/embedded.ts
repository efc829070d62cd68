// The embedded DNS as the daemon uses it: one object per node holding the table, the upstream
// forwarder and the per-task listeners. Everything the daemon needs goes through here; the pieces
// stay exported for tests and tools.
//
// Feeding: call the upsert/remove methods on every gossip or store event (they are idempotent and
// cheap: an unchanged record is a no-op and keeps its cached encoding), or setTable() with the whole
// state after a resync. The snapshot is rebuilt lazily at the next query, once per burst of changes,
// re-encoding only the services whose records changed (1000 services x 5 tasks: a few ms).
import type { NetworkRecord, ServiceRecord, TaskRecord, TtlPolicy } from './model.js';
import { DnsTable } from './table.js';
import { DEFAULT_TTL } from './ttl.js';
import { Forwarder, type ForwarderOptions, type ForwardStats } from './upstream.js';
import { readResolvConf, type Upstream } from './resolvconf.js';
import { DnsServer, type DnsServerOptions } from './server.js';
import type { DnsCounters } from './counters.js';

export interface EmbeddedDnsOptions {
  /** The node's resolvers for non-cluster names. Default: the nameservers of the host's /etc/resolv.conf. */
  upstreams?: readonly Upstream[];
  /** Record TTLs (default DEFAULT_TTL: 10 s for VIPs, 5 s for task-derived records; see ttl.ts). */
  ttl?: TtlPolicy;
  /** Forwarding limits: attempt timeout, deadline, concurrency cap, failover (see upstream.ts). */
  forwarding?: Omit<ForwarderOptions, 'upstreams'>;
  /** Per-listener TCP limits (see server.ts). */
  tcp?: Omit<DnsServerOptions, 'table' | 'forwarder'>;
}

export interface EmbeddedDnsStats {
  table: { networks: number; services: number; tasks: number; version: number };
  listeners: number;
  server: DnsCounters;
  forwarding: ForwardStats;
}

export class EmbeddedDns {
  readonly table: DnsTable;
  readonly forwarder: Forwarder;
  readonly server: DnsServer;
  /** Per task: the namespace it is attached in, and the attach/detach chain (they never interleave). */
  private readonly attached = new Map<string, string>();
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(opts: EmbeddedDnsOptions = {}) {
    this.table = new DnsTable(opts.ttl ?? DEFAULT_TTL);
    this.forwarder = new Forwarder({ ...opts.forwarding, upstreams: opts.upstreams ?? readResolvConf() });
    this.server = new DnsServer({ ...opts.tcp, table: this.table, forwarder: this.forwarder });
  }

  // --- the table -----------------------------------------------------------------------------

  /** Makes the table exactly this state; returns whether anything changed. */
  setTable(networks: Iterable<NetworkRecord>, services: Iterable<ServiceRecord>, tasks: Iterable<TaskRecord>): boolean {
    return this.table.replaceAll(networks, services, tasks);
  }

  upsertNetwork(n: NetworkRecord): boolean {
    return this.table.setNetwork(n);
  }

  removeNetwork(id: string): boolean {
    return this.table.deleteNetwork(id);
  }

  upsertService(s: ServiceRecord): boolean {
    return this.table.setService(s);
  }

  removeService(id: string): boolean {
    return this.table.deleteService(id);
  }

  /** A task's endpoint (only running tasks: remove it when its endpoint leaves gossip). */
  upsertTask(t: TaskRecord): boolean {
    return this.table.setTask(t);
  }

  removeTask(id: string): boolean {
    return this.table.deleteTask(id);
  }

  // --- listeners -----------------------------------------------------------------------------

  /**
   * Serves 127.0.0.11:53 (UDP and TCP) inside the task's network namespace, answering with the names
   * of `networkIds` (primary first). Idempotent: attaching an attached task to the same namespace
   * only updates its networks (e.g. after a meshd restart adopts running tasks). Rejects with the
   * errno (ENOENT: no such namespace, EADDRINUSE: something else serves 127.0.0.11:53 there).
   */
  attach(taskId: string, netnsPath: string, networkIds: readonly string[]): Promise<void> {
    return this.serial(taskId, async () => {
      const cur = this.attached.get(taskId);
      if (cur === netnsPath) return this.server.setNetworks(taskId, networkIds);
      if (cur !== undefined) await this.server.removeListener(taskId);
      this.attached.delete(taskId);
      await this.server.addListener(taskId, { nsPath: netnsPath, networks: networkIds });
      this.attached.set(taskId, netnsPath);
    });
  }

  /** The task joined or left a network: what it may resolve changes at once. */
  setTaskNetworks(taskId: string, networkIds: readonly string[]): void {
    this.server.setNetworks(taskId, networkIds);
  }

  /** Closes the task's listeners and connections. Safe to call twice or for an unknown task. */
  detach(taskId: string): Promise<boolean> {
    return this.serial(taskId, async () => {
      this.attached.delete(taskId);
      return this.server.removeListener(taskId);
    });
  }

  attachedTasks(): string[] {
    return [...this.attached.keys()];
  }

  // --- upstreams, stats, shutdown ------------------------------------------------------------

  /** New resolvers (resolv.conf changed, or configuration); in-flight queries finish on the old list. */
  setUpstreams(upstreams: readonly Upstream[]): void {
    this.forwarder.setUpstreams(upstreams);
  }

  stats(): EmbeddedDnsStats {
    return {
      table: { ...this.table.size, version: this.table.current },
      listeners: this.server.listenerIds().length,
      server: this.server.counters,
      forwarding: this.forwarder.stats,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.chains.values()].map((p) => p.catch(() => undefined)));
    this.attached.clear();
    await this.server.close();
    this.forwarder.close();
  }

  private serial<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(taskId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.chains.set(taskId, next);
    const clear = (): void => {
      if (this.chains.get(taskId) === next) this.chains.delete(taskId);
    };
    next.then(clear, clear);
    return next;
  }
}
