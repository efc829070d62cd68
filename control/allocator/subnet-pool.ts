// Carves fixed-size subnets out of the default address pools, skipping every subnet already used by a
// network (or reserved, like the ingress range). The used space is kept as sorted disjoint intervals,
// so finding the next free block is a binary search plus jumps over used intervals, not a scan of all
// 65,536 /24s of 10.0.0.0/8.
import { last, size, type Cidr } from './ipv4.js';

interface Interval {
  lo: number;
  hi: number;
}

export class SubnetPool {
  /** union of used space, sorted, disjoint */
  private used: Interval[] = [];
  /** per pool: nothing below this is free (allocation only moves it up within a pass) */
  private readonly cursors: number[];

  constructor(private readonly pools: readonly { base: Cidr; size: number }[]) {
    this.cursors = pools.map((p) => p.base.base);
  }

  /** Marks a subnet as used. */
  reserve(c: Cidr): void {
    let lo = c.base;
    let hi = last(c);
    // merge with every interval it touches or overlaps
    const keep: Interval[] = [];
    let at = -1;
    for (const iv of this.used) {
      if (iv.hi + 1 < lo || iv.lo > hi + 1) {
        if (iv.lo > hi && at < 0) at = keep.length;
        keep.push(iv);
      } else {
        lo = Math.min(lo, iv.lo);
        hi = Math.max(hi, iv.hi);
      }
    }
    keep.splice(at < 0 ? keep.length : at, 0, { lo, hi });
    this.used = keep;
  }

  /** The first used interval ending at or after x, or undefined. */
  private nextUsed(x: number): Interval | undefined {
    let a = 0;
    let b = this.used.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.used[m]!.hi < x) a = m + 1;
      else b = m;
    }
    return this.used[a];
  }

  /** Does the subnet touch used space? (a binary search, so checking n networks is not O(n^2)) */
  isUsed(c: Cidr): boolean {
    const u = this.nextUsed(c.base);
    return u !== undefined && u.lo <= last(c);
  }

  /** The lowest free block of the first pool that has one, now used; undefined when all are full. */
  take(): Cidr | undefined {
    for (let i = 0; i < this.pools.length; i++) {
      const p = this.pools[i]!;
      const blk = 2 ** (32 - p.size);
      const end = last(p.base);
      let c = this.cursors[i]!;
      while (c + blk - 1 <= end) {
        const u = this.nextUsed(c);
        if (!u || u.lo > c + blk - 1) {
          const got = { base: c, prefix: p.size };
          this.cursors[i] = c + blk;
          this.reserve(got);
          return got;
        }
        // jump past the used interval, to the next block boundary of this pool
        c = p.base.base + Math.ceil((u.hi + 1 - p.base.base) / blk) * blk;
      }
      this.cursors[i] = c;
    }
    return undefined;
  }

  /** How many blocks the pools hold in all (for the exhaustion message). */
  capacity(): number {
    return this.pools.reduce((n, p) => n + size(p.base) / 2 ** (32 - p.size), 0);
  }
}
