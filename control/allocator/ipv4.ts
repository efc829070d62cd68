// IPv4 as unsigned 32-bit numbers: subnets and ranges become integer intervals, so overlap and
// containment are comparisons and a subnet's addresses index a bitmap. Parsing goes through ipaddr.js
// (strict dotted quads; it rejects "1.2.3" shorthands and octal that a hand parser might accept).
import ipaddr from 'ipaddr.js';

export interface Cidr {
  /** network address (host bits zero) */
  base: number;
  prefix: number;
}

export function ipToInt(s: string): number | undefined {
  if (!ipaddr.IPv4.isValidFourPartDecimal(s)) return undefined;
  const b = ipaddr.IPv4.parse(s).octets;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** Last address of the subnet. */
export function last(c: Cidr): number {
  return c.base + size(c) - 1;
}

/** Why the text is not an IPv4 CIDR with host bits zero, or the parsed subnet. */
export function parseCidr(s: string): Cidr | string {
  const slash = s.indexOf('/');
  if (slash < 0) return `"${s}" is not in CIDR form (ADDRESS/PREFIX)`;
  const ip = ipToInt(s.slice(0, slash));
  if (ip === undefined) return `"${s}" is not an IPv4 address`;
  const pt = s.slice(slash + 1);
  const prefix = /^\d{1,2}$/.test(pt) ? Number(pt) : NaN;
  if (!(prefix >= 0 && prefix <= 32)) return `"${s}" has a bad prefix length`;
  const base = prefix === 0 ? 0 : ((ip >>> (32 - prefix)) << (32 - prefix)) >>> 0;
  if (base !== ip) return `"${s}" has host bits set (did you mean ${intToIp(base)}/${prefix}?)`;
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= last(b) && b.base <= last(a);
}

/** Is `inner` entirely inside `outer`? */
export function within(inner: Cidr, outer: Cidr): boolean {
  return inner.base >= outer.base && last(inner) <= last(outer);
}

export function containsIp(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= last(c);
}
