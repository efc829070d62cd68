// The mutable DNS table one node keeps: services, tasks and networks, keyed by ID. Every change bumps
// the version; snapshot() rebuilds the immutable view lazily, once per version, so a burst of gossip
// events costs one rebuild at the next query. Records are treated as immutable: replace a record with
// set*() rather than mutating it in place (encodings are cached by object identity, see snapshot.ts).
//
// Setting a record equal to the one held is a no-op that keeps the held object: whoever feeds the
// table may rebuild fresh objects from gossip or the store on every event (or call replaceAll with
// the whole state) without invalidating the per-service encoding cache or forcing a rebuild.
import type { NetworkRecord, ServiceRecord, TaskRecord, TtlPolicy } from './model.js';
import { buildSnapshot, type Snapshot } from './snapshot.js';
import { DEFAULT_TTL } from './ttl.js';
import { validateNetwork, validateService, validateTask } from './validate.js';

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export function sameNetwork(a: NetworkRecord, b: NetworkRecord): boolean {
  return a.id === b.id && a.name === b.name && sameList(a.subnets, b.subnets);
}

export function sameService(a: ServiceRecord, b: ServiceRecord): boolean {
  return a.id === b.id && a.name === b.name && a.mode === b.mode && a.networks.length === b.networks.length &&
    a.networks.every((x, i) => {
      const y = b.networks[i]!;
      return x.network === y.network && sameList(x.vips, y.vips) && sameList(x.aliases, y.aliases);
    });
}

export function sameTask(a: TaskRecord, b: TaskRecord): boolean {
  return a.id === b.id && a.serviceId === b.serviceId && a.slot === b.slot && a.networks.length === b.networks.length &&
    a.networks.every((x, i) => {
      const y = b.networks[i]!;
      return x.network === y.network && sameList(x.addresses, y.addresses) && sameList(x.aliases, y.aliases);
    });
}

export class DnsTable {
  private readonly networks = new Map<string, NetworkRecord>();
  private readonly services = new Map<string, ServiceRecord>();
  private readonly tasks = new Map<string, TaskRecord>();
  private version = 0;
  private cached: Snapshot | null = null;

  constructor(private readonly ttl: TtlPolicy = DEFAULT_TTL) {}

  /** Returns whether anything changed; throws TypeError for a record it could not serve (validate.ts). */
  setNetwork(n: NetworkRecord): boolean {
    validateNetwork(n);
    return put(this.networks, n, sameNetwork) && this.changed();
  }

  deleteNetwork(id: string): boolean {
    return this.networks.delete(id) && this.changed();
  }

  setService(s: ServiceRecord): boolean {
    validateService(s);
    return put(this.services, s, sameService) && this.changed();
  }

  /** Removes a service; its tasks stay (they may still be draining) but become nameless. */
  deleteService(id: string): boolean {
    return this.services.delete(id) && this.changed();
  }

  setTask(t: TaskRecord): boolean {
    validateTask(t);
    return put(this.tasks, t, sameTask) && this.changed();
  }

  deleteTask(id: string): boolean {
    return this.tasks.delete(id) && this.changed();
  }

  /**
   * Makes the table hold exactly these records (a full resync, e.g. after a gossip push-pull or a
   * store snapshot). Unchanged records keep their cached encodings; returns whether anything changed.
   * Everything is validated first: a bad record throws and leaves the table as it was.
   */
  replaceAll(networks: Iterable<NetworkRecord>, services: Iterable<ServiceRecord>, tasks: Iterable<TaskRecord>): boolean {
    const ns = [...networks], ss = [...services], ts = [...tasks];
    // Only what differs from the held record needs checking (a resync is mostly equal records).
    const check = <T extends { id: string }>(m: Map<string, T>, xs: T[], same: (a: T, b: T) => boolean, validate: (x: T) => void): void => {
      for (const x of xs) {
        const cur = m.get(x.id);
        if (!cur || (cur !== x && !same(cur, x))) validate(x);
      }
    };
    check(this.networks, ns, sameNetwork, validateNetwork);
    check(this.services, ss, sameService, validateService);
    check(this.tasks, ts, sameTask, validateTask);
    const a = sync(this.networks, ns, sameNetwork);
    const b = sync(this.services, ss, sameService);
    const c = sync(this.tasks, ts, sameTask);
    return (a || b || c) && this.changed();
  }

  get size(): { networks: number; services: number; tasks: number } {
    return { networks: this.networks.size, services: this.services.size, tasks: this.tasks.size };
  }

  /** The table's version: bumped by every change. */
  get current(): number {
    return this.version;
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

function put<T extends { id: string }>(m: Map<string, T>, v: T, same: (a: T, b: T) => boolean): boolean {
  const cur = m.get(v.id);
  if (cur && (cur === v || same(cur, v))) return false;
  m.set(v.id, v);
  return true;
}

function sync<T extends { id: string }>(m: Map<string, T>, next: Iterable<T>, same: (a: T, b: T) => boolean): boolean {
  let changed = false;
  const keep = new Set<string>();
  for (const v of next) {
    keep.add(v.id);
    if (put(m, v, same)) changed = true;
  }
  for (const id of m.keys()) {
    if (!keep.has(id)) {
      m.delete(id);
      changed = true;
    }
  }
  return changed;
}
