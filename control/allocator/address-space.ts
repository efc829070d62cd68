// The addresses of one network's subnet: which are held, and the lowest free one in the allocatable
// range. Rebuilt every pass from the objects (gateway, VIPs, live tasks' addresses), so it cannot drift
// from the store: an address is free exactly when no object holds it.
import { Bitmap } from './bitmap.js';
import { containsIp, intToIp, ipToInt, last, type Cidr } from './ipv4.js';

export class AddressSpace {
  private readonly bits: Bitmap;
  /** offsets (from subnet base) of the allocatable range, inclusive */
  private readonly lo: number;
  private readonly hi: number;
  /** nothing below this offset is free: allocations in one pass only move it up */
  private cursor: number;
  private held = 0;

  constructor(readonly subnet: Cidr, range: Cidr | undefined, gateway: number) {
    const n = 2 ** (32 - subnet.prefix);
    this.bits = new Bitmap(n);
    // network and broadcast addresses are never given out (/31 and /32 have neither, but a network
    // that small is refused before we get here)
    this.bits.set(0);
    this.bits.set(n - 1);
    this.bits.set(gateway - subnet.base);
    const r = range ?? subnet;
    this.lo = Math.max(1, r.base - subnet.base);
    this.hi = Math.min(n - 2, last(r) - subnet.base);
    this.cursor = this.lo;
    const g = gateway - subnet.base;
    if (g >= this.lo && g <= this.hi) this.held = 1; // the gateway is not free for tasks
  }

  /** How many addresses of the allocatable range are still free (for messages and tests). */
  get free(): number {
    return this.hi - this.lo + 1 - this.held;
  }

  /**
   * Marks an address as held by an existing object. Returns why it cannot be (outside the subnet,
   * the gateway, or held already) or undefined. Addresses outside the ip-range but inside the subnet
   * are accepted: they were valid when given (or set by hand) and still route.
   */
  reserve(addr: string): string | undefined {
    const ip = ipToInt(addr);
    if (ip === undefined) return `"${addr}" is not an IPv4 address`;
    if (!containsIp(this.subnet, ip)) return `${addr} is outside the network's subnet`;
    const off = ip - this.subnet.base;
    if (this.bits.has(off)) return `${addr} is already in use`;
    this.bits.set(off);
    if (off >= this.lo && off <= this.hi) this.held++;
    return undefined;
  }

  /** The lowest free address of the range, now held; undefined when the range is exhausted. */
  take(): string | undefined {
    const off = this.bits.firstClear(this.cursor, this.hi);
    if (off < 0) {
      this.cursor = this.hi + 1;
      return undefined;
    }
    this.bits.set(off);
    this.held++;
    this.cursor = off + 1;
    return intToIp(this.subnet.base + off);
  }
}
