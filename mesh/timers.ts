// A min-heap of one-shot timers for the pure state machine: the shell asks nextWake() and calls
// tick(now) then; nothing here reads a clock.

interface Timer {
  at: number;
  id: number;
  fn: (now: number) => void;
}

export class Timers {
  private heap: Timer[] = [];
  private ids = 0;

  at(at: number, fn: (now: number) => void): void {
    const t: Timer = { at, id: this.ids++, fn };
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i] as Timer, h[p] as Timer)) break;
      [h[i], h[p]] = [h[p] as Timer, h[i] as Timer];
      i = p;
    }
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
    const last = h.pop() as Timer;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && less(h[l] as Timer, h[m] as Timer)) m = l;
      if (r < h.length && less(h[r] as Timer, h[m] as Timer)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
      i = m;
    }
  }
}

function less(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}
