// Address and MAC helpers: parse what users and the kernel give us, fail with a clear message.
import ipaddr from 'ipaddr.js';
import { AF_INET, AF_INET6 } from './constants.js';

export interface IpBytes {
  family: number;
  bytes: Buffer;
}

// Dotted-quad fast path: FDB/neighbour programming parses tens of thousands of these.
function ipv4Bytes(ip: string): Buffer | undefined {
  const b = Buffer.allocUnsafe(4);
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; // '.' ends the last octet
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // no leading zeros
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      b[part++] = octet;
      octet = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  return part === 4 ? b : undefined;
}

export function ipToBytes(ip: string): IpBytes {
  const v4 = ipv4Bytes(ip);
  if (v4) return { family: AF_INET, bytes: v4 };
  if (!ipaddr.isValid(ip)) throw new TypeError(`"${ip}" is not an IP address`);
  const a = ipaddr.parse(ip);
  return { family: a.kind() === 'ipv4' ? AF_INET : AF_INET6, bytes: Buffer.from(a.toByteArray()) };
}

export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length === 16) return ipaddr.fromByteArray([...b]).toString();
  throw new TypeError(`an IP address has 4 or 16 bytes, not ${b.length}`);
}

/** "10.0.0.1/24" -> address and prefix length. */
export function parseCidr(cidr: string): { ip: string; prefixLen: number; family: number } {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) throw new TypeError(`"${cidr}" is not ADDRESS/PREFIXLEN`);
  const { family } = ipToBytes(m[1]!);
  const prefixLen = Number(m[2]);
  if (prefixLen > (family === AF_INET ? 32 : 128)) throw new TypeError(`"${cidr}": prefix length too long`);
  return { ip: m[1]!, prefixLen, family };
}

function hexNibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export function macToBytes(mac: string): Buffer {
  const b = Buffer.allocUnsafe(6);
  if (mac.length === 17) {
    let ok = true;
    for (let i = 0; i < 6 && ok; i++) {
      const hi = hexNibble(mac.charCodeAt(i * 3));
      const lo = hexNibble(mac.charCodeAt(i * 3 + 1));
      if (hi < 0 || lo < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== 58)) ok = false;
      b[i] = (hi << 4) | lo;
    }
    if (ok) return b;
  }
  throw new TypeError(`"${mac}" is not a MAC address (xx:xx:xx:xx:xx:xx)`);
}

export function bytesToMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
