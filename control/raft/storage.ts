// Stable storage as seen by the Raft core: everything here has been persisted by the application
// (entries, hard state, latest snapshot). The core only reads it; the application writes it while
// handling a Ready. MemoryStorage is the in-memory mirror that the WAL recovers into.
import type { ConfState, Entry, HardState, NodeId, Snapshot } from './types.js';
import { EMPTY_CONF, EMPTY_HARD_STATE, RaftError, encodeConfChange } from './types.js';

export interface Storage {
  initialState(): { hardState: HardState; conf: ConfState };
  /** Entries [lo, hi); null if lo was compacted. Caller guarantees hi <= lastIndex()+1. */
  entries(lo: number, hi: number): Entry[] | null;
  /** Term of entry i; null if compacted (i < firstIndex()-1) or not yet present (i > lastIndex()). */
  term(i: number): number | null;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export class MemoryStorage implements Storage {
  hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = { meta: { index: 0, term: 0, conf: EMPTY_CONF }, data: new Uint8Array(0) };
  // ents[0] is a dummy standing for the snapshot point: its index and term are the snapshot's.
  private ents: Entry[] = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.hardState, conf: this.snap.meta.conf };
  }

  setHardState(h: HardState): void {
    this.hardState = h;
  }

  private get offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  term(i: number): number | null {
    const off = this.offset;
    if (i < off || i > this.lastIndex()) return null;
    return this.ents[i - off]!.term;
  }

  entries(lo: number, hi: number): Entry[] | null {
    const off = this.offset;
    if (lo <= off) return null;
    if (hi > this.lastIndex() + 1) throw new RaftError(`entries hi ${hi} beyond last ${this.lastIndex()}`);
    return this.ents.slice(lo - off, hi - off);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** All stored entries after the snapshot point (for the WAL and tests). */
  allEntries(): Entry[] {
    return this.ents.slice(1);
  }

  /** Install a snapshot received from the leader (or recovered); drops the whole log. */
  applySnapshot(s: Snapshot): void {
    if (s.meta.index < this.snap.meta.index) throw new RaftError('snapshot out of date');
    this.snap = s;
    this.ents = [{ index: s.meta.index, term: s.meta.term, type: 'normal', data: new Uint8Array(0) }];
  }

  /** Make a snapshot of the application state at applied index i (i must be in the log). */
  createSnapshot(i: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.meta.index) return this.snap;
    const t = this.term(i);
    if (t === null) throw new RaftError(`snapshot index ${i} out of range`);
    this.snap = { meta: { index: i, term: t, conf }, data };
    return this.snap;
  }

  /** Drop entries up to and including i (i must not exceed the latest snapshot or applied index). */
  compact(i: number): void {
    const off = this.offset;
    if (i <= off) return;
    if (i > this.lastIndex()) throw new RaftError(`compact ${i} beyond last ${this.lastIndex()}`);
    const dummy = this.ents[i - off]!;
    this.ents = [{ index: dummy.index, term: dummy.term, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(i - off + 1)];
  }

  /** Append persisted entries, overwriting any conflicting suffix. */
  append(es: readonly Entry[]): void {
    if (es.length === 0) return;
    const first = this.firstIndex();
    let list = es;
    // entries already compacted away are committed and identical: skip them
    if (list[0]!.index < first) {
      list = list.slice(first - list[0]!.index);
      if (list.length === 0) return;
    }
    const at = list[0]!.index - this.offset;
    if (at > this.ents.length) throw new RaftError(`missing log entry [last: ${this.lastIndex()}, append at: ${list[0]!.index}]`);
    this.ents = this.ents.slice(0, at).concat(list);
  }
}

/**
 * Seed a brand-new cluster member's storage with the founding membership as committed conf-change
 * entries of term 1 (every founding member must use the same list). Nodes that join later start empty
 * and receive these entries, or a snapshot, from the leader.
 */
export function bootstrapStorage(s: MemoryStorage, voters: readonly NodeId[]): void {
  if (s.lastIndex() !== 0) throw new RaftError('bootstrap on non-empty storage');
  s.append(voters.map((node, i) => ({ index: i + 1, term: 1, type: 'conf' as const, data: encodeConfChange({ type: 'addVoter', node }) })));
  s.setHardState({ term: 1, vote: '', commit: voters.length });
}
