// A fixed-size bitmap over 32-bit words. Finding a clear bit skips full words (0xffffffff) whole, so a
// /16 (2,048 words) is scanned in microseconds, and allocation with a moving cursor is amortised O(1).
export class Bitmap {
  private readonly words: Uint32Array;

  constructor(readonly length: number) {
    this.words = new Uint32Array(Math.ceil(length / 32));
  }

  has(i: number): boolean {
    return ((this.words[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }

  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** The lowest clear bit in [from, to] (inclusive), or -1. */
  firstClear(from: number, to: number): number {
    if (from > to) return -1;
    let i = from;
    while (i <= to) {
      const w = this.words[i >>> 5]!;
      if (w === 0xffffffff) {
        i = ((i >>> 5) + 1) << 5; // whole word taken: next word
        continue;
      }
      // the lowest clear bit at or above i within this word
      const free = ~w & (0xffffffff << (i & 31));
      if (free === 0) {
        i = ((i >>> 5) + 1) << 5;
        continue;
      }
      const bit = ((i >>> 5) << 5) + (31 - Math.clz32(free & -free));
      return bit <= to ? bit : -1;
    }
    return -1;
  }
}
