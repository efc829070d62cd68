// The cluster store: objects applied from committed Raft entries, in log order, on every manager.
// apply() is deterministic (no clock, no randomness), so every replica holds the same objects.
import { EventEmitter } from 'node:events';
import { decodeCommand, type Command, type Op } from './commands.js';
import { KINDS, type Kind, type KindMap, type Meta, type Stored } from './objects.js';

export type ChangeType = 'create' | 'update' | 'delete';

export interface StoreEvent<K extends Kind = Kind> {
  kind: K;
  type: ChangeType;
  object: Stored<K>;
  version: number;
}

export type ApplyResult = { ok: true; version: number } | { ok: false; version: number; error: string; code: 'conflict' | 'not-found' | 'exists' | 'invalid' };

export interface StoreSnapshot {
  version: number;
  objects: { [K in Kind]: Stored<K>[] };
}

export class Store {
  private tables = new Map<Kind, Map<string, Stored<Kind>>>(KINDS.map((k) => [k, new Map()]));
  /** kind -> unique name -> id, kept in step with the tables at apply/restore (no scans per write) */
  private names = new Map<Kind, Map<string, string>>(KINDS.map((k) => [k, new Map()]));
  /** Raft index of the last applied entry (changing anything or not). */
  appliedIndex = 0;
  private events = new EventEmitter();

  constructor() {
    this.events.setMaxListeners(0);
  }

  get<K extends Kind>(kind: K, id: string): Stored<K> | undefined {
    return this.table(kind).get(id) as Stored<K> | undefined;
  }

  list<K extends Kind>(kind: K): Stored<K>[] {
    return [...this.table(kind).values()] as unknown as Stored<K>[];
  }

  /** The object of a kind whose names are unique (service, config, network), by name: no scan. */
  byName<K extends 'service' | 'config' | 'network'>(kind: K, name: string): Stored<K> | undefined {
    const id = this.names.get(kind)!.get(name);
    return id === undefined ? undefined : this.get(kind, id);
  }

  private table(kind: Kind): Map<string, Stored<Kind>> {
    const t = this.tables.get(kind);
    if (!t) throw new Error(`unknown object kind "${kind}"`);
    return t;
  }

  /** Applies one committed entry's command; a failing transaction changes nothing. */
  applyEntry(index: number, data: Uint8Array): ApplyResult & { requestId?: string } {
    this.appliedIndex = index;
    if (data.length === 0) return { ok: true, version: index }; // leader's empty entry at term start
    let cmd: Command;
    try {
      cmd = decodeCommand(data);
    } catch (e) {
      return { ok: false, version: index, error: (e as Error).message, code: 'invalid' };
    }
    return { ...this.apply(index, cmd, true), requestId: cmd.requestId };
  }

  /** `owned`: the command's objects were just decoded and nobody else holds them (no copy needed). */
  apply(index: number, cmd: Command, owned = false): ApplyResult {
    this.appliedIndex = Math.max(this.appliedIndex, index);
    const check = this.check(cmd.ops);
    if (check) return { ok: false, version: index, ...check };
    const events: StoreEvent[] = [];
    for (const op of cmd.ops) {
      const t = this.table(op.kind);
      if (op.op === 'delete') {
        const old = t.get(op.id)!;
        t.delete(op.id);
        this.unindex(op.kind, old);
        events.push({ kind: op.kind, type: 'delete', object: { ...old, meta: { ...old.meta, version: index, updatedAt: cmd.at } }, version: index });
        continue;
      }
      const old = t.get(op.object.id);
      const meta: Meta = { version: index, createdAt: old?.meta.createdAt ?? cmd.at, updatedAt: cmd.at };
      const stored = { ...(owned ? op.object : structuredClone(op.object)), meta } as Stored<Kind>;
      if (old) this.unindex(op.kind, old);
      t.set(op.object.id, stored);
      this.index(op.kind, stored);
      events.push({ kind: op.kind, type: op.op, object: stored, version: index });
    }
    for (const e of events) this.events.emit('change', e);
    return { ok: true, version: index };
  }

  private index(kind: Kind, o: KindMap[Kind]): void {
    const name = Store.uniqueName(kind, o);
    if (name !== undefined) this.names.get(kind)!.set(name, o.id);
  }

  private unindex(kind: Kind, o: KindMap[Kind]): void {
    const name = Store.uniqueName(kind, o);
    if (name !== undefined && this.names.get(kind)!.get(name) === o.id) this.names.get(kind)!.delete(name);
  }

  /** Names that must be unique per kind (checked at apply time, so concurrent creates cannot race). */
  private static uniqueName(kind: Kind, o: KindMap[Kind]): string | undefined {
    if (kind === 'service') return (o as KindMap['service']).spec?.name;
    if (kind === 'config') return (o as KindMap['config']).name;
    if (kind === 'network') return (o as KindMap['network']).spec?.name;
    return undefined;
  }

  // Validates the ops in sequence against a view that includes the earlier ops of the same
  // transaction, so that e.g. deleting one object twice is refused before anything changes.
  private check(ops: Op[]): { error: string; code: 'conflict' | 'not-found' | 'exists' | 'invalid' } | undefined {
    const view = new Map<string, number | null>(); // kind/id -> version within this transaction (null: deleted)
    const names = new Map<string, string>(); // kind/name -> id, for names created in this transaction
    for (const op of ops) {
      if (!KINDS.includes(op.kind)) return { error: `unknown object kind "${op.kind}"`, code: 'invalid' };
      const id = op.op === 'delete' ? op.id : op.object?.id;
      if (typeof id !== 'string' || id === '') return { error: `${op.kind} op without an id`, code: 'invalid' };
      const key = `${op.kind}/${id}`;
      const cur = view.has(key) ? view.get(key)! : (this.table(op.kind).get(id)?.meta.version ?? null);
      if (op.op === 'create' && cur !== null) return { error: `${op.kind} ${id} already exists`, code: 'exists' };
      if (op.op !== 'delete') {
        const name = Store.uniqueName(op.kind, op.object);
        if (name !== undefined) {
          const holder = this.names.get(op.kind)!.get(name);
        const clash = holder !== undefined && holder !== id && view.get(`${op.kind}/${holder}`) !== null;
          const inTx = names.get(`${op.kind}/${name}`);
          if (clash || (inTx !== undefined && inTx !== id)) return { error: `a ${op.kind} named "${name}" already exists`, code: 'exists' };
          names.set(`${op.kind}/${name}`, id);
        }
      }
      if (op.op !== 'create' && cur === null) return { error: `${op.kind} ${id} not found`, code: 'not-found' };
      if (op.op !== 'create' && op.version !== undefined && cur !== op.version) {
        return { error: `${op.kind} ${id} changed (version ${cur}, expected ${op.version}): read it again and retry`, code: 'conflict' };
      }
      view.set(key, op.op === 'delete' ? null : -1); // -1: written in this transaction
    }
    return undefined;
  }

  /** Calls fn for every change from now on; returns the unsubscribe function. */
  watch(fn: (e: StoreEvent) => void, kinds?: readonly Kind[]): () => void {
    const h = (e: StoreEvent): void => {
      if (!kinds || kinds.includes(e.kind)) fn(e);
    };
    this.events.on('change', h);
    return () => this.events.off('change', h);
  }

  snapshot(): StoreSnapshot {
    const objects = Object.fromEntries(KINDS.map((k) => [k, this.list(k)])) as StoreSnapshot['objects'];
    return { version: this.appliedIndex, objects: structuredClone(objects) };
  }

  encodeSnapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.snapshot()), 'utf8');
  }

  /** Replaces everything with a snapshot (from Raft); watchers see the difference as events. */
  restore(data: Uint8Array): void {
    const snap = JSON.parse(Buffer.from(data).toString('utf8')) as StoreSnapshot;
    const events: StoreEvent[] = [];
    for (const k of KINDS) {
      const t = this.table(k);
      const incoming = new Map((snap.objects[k] ?? []).map((o) => [o.id, o as Stored<Kind>]));
      for (const [id, old] of t) if (!incoming.has(id)) events.push({ kind: k, type: 'delete', object: old, version: snap.version });
      for (const [id, o] of incoming) {
        const old = t.get(id);
        if (!old || old.meta.version !== o.meta.version) events.push({ kind: k, type: old ? 'update' : 'create', object: o, version: snap.version });
      }
      this.tables.set(k, incoming);
      this.names.set(k, new Map());
      for (const o of incoming.values()) this.index(k, o);
    }
    this.appliedIndex = snap.version;
    for (const e of events) this.events.emit('change', e);
  }
}

export type { KindMap };
