// The leader's view of each follower: how far its log matches, what to send next, and how much may be
// in flight. Three modes, as in etcd: probe (one append at a time until we find where the logs agree),
// replicate (pipelined appends, bounded by Inflights), snapshot (wait for a snapshot to be applied).

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Bounded window of in-flight appends, identified by the last index each one carried. */
export class Inflights {
  private buf: number[] = [];
  constructor(readonly size: number) {}

  add(last: number): void {
    this.buf.push(last);
  }

  /** Free every append whose last index is <= to (acknowledged). */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n]! <= to) n++;
    if (n) this.buf = this.buf.slice(n);
  }

  freeFirstOne(): void {
    this.buf.shift();
  }

  full(): boolean {
    return this.buf.length >= this.size;
  }

  count(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf = [];
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe: an append was sent and not yet answered (cleared by a response or heartbeat response). */
  probeSent = false;
  /** In snapshot: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Ticks spent in snapshot state: a lost snapshot must not stall the follower forever. */
  snapshotTicks = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(s: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = s;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // the snapshot may have been applied: resume right after it
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapIndex;
  }

  /** An append was acknowledged up to n; returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is where our logs may agree.
   * Returns false for stale rejections (already superseded).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** Account for an append carrying entries up to `last` (or none). */
  sentEntries(count: number, last: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflights.add(last);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }
}
