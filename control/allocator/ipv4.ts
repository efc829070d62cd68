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
  const fast = canonicalToInt(s);
  if (fast !== undefined) return fast;
  if (!ipaddr.IPv4.isValidFourPartDecimal(s)) return undefined;
  const b = ipaddr.IPv4.parse(s).octets;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

// Every pass re-reads every task's addresses, which we wrote ourselves in canonical dotted-quad form:
// a char-code scan of that form is ~20x faster than the general parser. Anything else (leading zeros,
// odd forms) returns undefined and takes the ipaddr.js path.
function canonicalToInt(s: string): number | undefined {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return n * 256 + part;
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
