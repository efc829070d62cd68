// Anti-replay sliding window per sender (as IPsec's): sequence numbers older than the window or
// already seen are rejected. Senders are kept in a bounded LRU so a flood of senders cannot grow memory;
// an evicted sender's old packets are still stopped by the seal's timestamp age check.

export class ReplayWindow {
  private top = -1;
  private readonly bits: Uint8Array;

  constructor(private readonly size = 1024) {
    this.bits = new Uint8Array(size >> 3);
  }

  fresh(seq: number): boolean {
    if (seq > this.top) return true;
    if (this.top - seq >= this.size) return false;
    const i = seq % this.size;
    return ((this.bits[i >> 3] as number) & (1 << (i & 7))) === 0;
  }

  mark(seq: number): void {
    if (seq > this.top) {
      const gap = Math.min(seq - this.top, this.size);
      for (let s = seq - gap + 1; s <= seq; s++) {
        const i = s % this.size;
        this.bits[i >> 3] = (this.bits[i >> 3] as number) & ~(1 << (i & 7));
      }
      this.top = seq;
    }
    const i = seq % this.size;
    this.bits[i >> 3] = (this.bits[i >> 3] as number) | (1 << (i & 7));
  }
}

export class ReplayGuard {
  private readonly senders = new Map<string, ReplayWindow>();

  constructor(private readonly maxSenders = 4096, private readonly windowSize = 1024) {}

  /** True (and recorded) if (sender, seq) was not seen before. */
  accept(sender: string, seq: number): boolean {
    let w = this.senders.get(sender);
    if (w) {
      // LRU: move to the back.
      this.senders.delete(sender);
      this.senders.set(sender, w);
    } else {
      w = new ReplayWindow(this.windowSize);
      this.senders.set(sender, w);
      if (this.senders.size > this.maxSenders) {
        const oldest = this.senders.keys().next().value;
        if (oldest !== undefined) this.senders.delete(oldest);
      }
    }
    if (!w.fresh(seq)) return false;
    w.mark(seq);
    return true;
  }

  get size(): number {
    return this.senders.size;
  }
}
