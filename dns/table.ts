// The mutable DNS table one node keeps: services, tasks and networks, keyed by ID. Every change bumps
// the version; snapshot() rebuilds the immutable view lazily, once per version, so a burst of gossip
// events costs one rebuild at the next query. Records are treated as immutable: replace a record with
// set*() rather than mutating it in place (encodings are cached by object identity, see snapshot.ts).
import type { NetworkRecord, ServiceRecord, TaskRecord, TtlPolicy } from './model.js';
import { buildSnapshot, type Snapshot } from './snapshot.js';
import { DEFAULT_TTL } from './ttl.js';

export class DnsTable {
  private readonly networks = new Map<string, NetworkRecord>();
  private readonly services = new Map<string, ServiceRecord>();
  private readonly tasks = new Map<string, TaskRecord>();
  private version = 0;
  private cached: Snapshot | null = null;

  constructor(private readonly ttl: TtlPolicy = DEFAULT_TTL) {}

  setNetwork(n: NetworkRecord): void {
    this.networks.set(n.id, n);
    this.changed();
  }

  deleteNetwork(id: string): boolean {
    return this.networks.delete(id) && this.changed();
  }

  setService(s: ServiceRecord): void {
    this.services.set(s.id, s);
    this.changed();
  }

  /** Removes a service; its tasks stay (they may still be draining) but become nameless. */
  deleteService(id: string): boolean {
    return this.services.delete(id) && this.changed();
  }

  setTask(t: TaskRecord): void {
    this.tasks.set(t.id, t);
    this.changed();
  }

  deleteTask(id: string): boolean {
    return this.tasks.delete(id) && this.changed();
  }

  get size(): { networks: number; services: number; tasks: number } {
    return { networks: this.networks.size, services: this.services.size, tasks: this.tasks.size };
  }

  snapshot(): Snapshot {
    if (!this.cached || this.cached.version !== this.version) {
      this.cached = buildSnapshot(this.version, this.networks.values(), this.services.values(), this.tasks.values(), this.ttl);
    }
    return this.cached;
  }

  private changed(): true {
    this.version++;
    return true;
  }
}
