// Entries (and possibly one incoming snapshot) that the core has accepted but the application has not
// yet persisted. They shadow stable storage from `offset` on until the application acknowledges them.
import type { Entry, Snapshot } from './types.js';

export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | null {
    return this.snapshot ? this.snapshot.meta.index + 1 : null;
  }

  maybeLastIndex(): number | null {
    if (this.entries.length) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.meta.index : null;
  }

  maybeTerm(i: number): number | null {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return null;
    }
    const last = this.maybeLastIndex();
    if (last === null || i > last) return null;
    return this.entries[i - this.offset]!.term;
  }

  /** The application persisted entries up to (i, t): forget them unless they were overwritten since. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === null || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(es: readonly Entry[]): void {
    if (es.length === 0) return;
    const after = es[0]!.index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(es);
    } else if (after <= this.offset) {
      // replaces everything unstable; storage's conflicting suffix is overwritten when persisted
      this.offset = after;
      this.entries = es.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(es);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
