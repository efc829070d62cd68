// A min-heap of one-shot timers for the pure state machine: the shell asks nextWake() and calls
// tick(now) then; nothing here reads a clock. Timers can be cancelled (removed from the heap at
// once, so a cancelled timer neither holds memory nor causes a wake-up).

export interface TimerHandle {
  readonly at: number;
}

interface Timer extends TimerHandle {
  at: number;
  id: number;
  fn: (now: number) => void;
  /** Position in the heap; -1 once run or cancelled. */
  idx: number;
}

export class Timers {
  private heap: Timer[] = [];
  private ids = 0;

  at(at: number, fn: (now: number) => void): TimerHandle {
    const t: Timer = { at, id: this.ids++, fn, idx: this.heap.length };
    this.heap.push(t);
    this.up(t.idx);
    return t;
  }

  /** Removes a pending timer; a no-op for one that already ran or was cancelled. */
  cancel(handle: TimerHandle): void {
    const t = handle as Timer;
    const i = t.idx;
    const h = this.heap;
    if (i < 0 || h[i] !== t) return;
    t.idx = -1;
    const last = h.pop() as Timer;
    if (i === h.length) return;
    h[i] = last;
    last.idx = i;
    this.down(i);
    this.up(last.idx);
  }

  next(): number {
    return this.heap[0]?.at ?? Infinity;
  }

  /** Runs every timer due at or before `now`, in time order (ties by creation order). */
  run(now: number): void {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.at > now) return;
      this.pop();
      top.fn(now);
    }
  }

  get size(): number {
    return this.heap.length;
  }

  private pop(): void {
    const h = this.heap;
    (h[0] as Timer).idx = -1;
    const last = h.pop() as Timer;
    if (h.length === 0) return;
    h[0] = last;
    last.idx = 0;
    this.down(0);
  }

  private up(i: number): void {
    const h = this.heap;
    const t = h[i] as Timer;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = h[p] as Timer;
      if (!less(t, pt)) break;
      h[i] = pt; pt.idx = i;
      i = p;
    }
    h[i] = t; t.idx = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const t = h[i] as Timer;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = l;
      if (l >= n) break;
      if (r < n && less(h[r] as Timer, h[l] as Timer)) m = r;
      const mt = h[m] as Timer;
      if (!less(mt, t)) break;
      h[i] = mt; mt.idx = i;
      i = m;
    }
    h[i] = t; t.idx = i;
  }
}

function less(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}
