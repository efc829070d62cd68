// The Raft log: stable storage plus the unstable tail, with the commit and applied marks.
import type { Storage } from './storage.js';
import { Unstable } from './unstable.js';
import type { Entry, Snapshot } from './types.js';
import { RaftError } from './types.js';

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be on a quorum. */
  committed: number;
  /** Highest index handed to the application for applying. */
  applied: number;
  /** Bytes of committed entries handed out in one Ready (flow control for the apply loop). */
  private readonly maxApplyBytes: number;

  constructor(storage: Storage, maxApplyBytes = Number.MAX_SAFE_INTEGER) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.maxApplyBytes = maxApplyBytes;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t === null) throw new RaftError('unexpected compaction of last entry');
    return t;
  }

  /** Term of entry i: null if compacted away, 0 if beyond the last index. */
  term(i: number): number | null {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) return null;
    if (i > this.lastIndex()) return 0;
    const u = this.unstable.maybeTerm(i);
    if (u !== null) return u;
    return this.storage.term(i);
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Entries [lo, hi) limited to about maxBytes (always at least one); null if lo was compacted. */
  slice(lo: number, hi: number, maxBytes = Number.MAX_SAFE_INTEGER): Entry[] | null {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return null;
    if (hi > this.lastIndex() + 1) throw new RaftError(`slice [${lo},${hi}) out of bound last ${this.lastIndex()}`);
    let out: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      const s = this.storage.entries(lo, Math.min(hi, uoff));
      if (s === null) return null;
      out = s;
    }
    if (hi > uoff) out = out.concat(this.unstable.slice(Math.max(lo, uoff), hi));
    return limitSize(out, maxBytes);
  }

  entries(from: number, maxBytes = Number.MAX_SAFE_INTEGER): Entry[] | null {
    if (from > this.lastIndex()) return [];
    return this.slice(from, this.lastIndex() + 1, maxBytes);
  }

  /** Candidate's log (lastTerm, lastIndex) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Index of the first entry that conflicts with ours (or is new); 0 if all are already present. */
  findConflict(es: readonly Entry[]): number {
    for (const e of es) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * Largest index <= i whose term is <= t, with its term: where our log can agree with a log whose entry
   * at i has term t. Lets the leader skip a whole term of conflicting entries per round trip.
   */
  findConflictByTerm(i: number, t: number): [number, number] {
    for (; i > 0; i--) {
      const ours = this.term(i);
      if (ours === null) return [i, 0];
      if (ours <= t) return [i, ours];
    }
    return [0, 0];
  }

  /** AppendEntries consistency check and append; returns the last new index, or null on mismatch. */
  maybeAppend(index: number, logTerm: number, commit: number, es: readonly Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + es.length;
    const ci = this.findConflict(es);
    if (ci !== 0) {
      if (ci <= this.committed) throw new RaftError(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(es.slice(ci - (index + 1)));
    }
    // only up to lastNew: entries past it may still belong to an old leader
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  append(es: readonly Entry[]): number {
    if (es.length === 0) return this.lastIndex();
    const after = es[0]!.index - 1;
    if (after < this.committed) throw new RaftError(`append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(es);
    return this.lastIndex();
  }

  commitTo(c: number): void {
    if (this.committed >= c) return;
    if (c > this.lastIndex()) throw new RaftError(`commit ${c} out of range [last ${this.lastIndex()}]`);
    this.committed = c;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) throw new RaftError(`applied ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }

  /** Leader: commit `maxIndex` if it is from the current term (§5.4.2: never count replicas of old terms). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  hasNextCommittedEnts(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  nextCommittedEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    return this.slice(off, this.committed + 1, this.maxApplyBytes) ?? [];
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replace the whole log with a snapshot from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }
}

export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

export function limitSize(es: Entry[], maxBytes: number): Entry[] {
  if (es.length === 0) return es;
  let size = entrySize(es[0]!);
  let n = 1;
  for (; n < es.length; n++) {
    size += entrySize(es[n]!);
    if (size > maxBytes) break;
  }
  return n === es.length ? es : es.slice(0, n);
}
