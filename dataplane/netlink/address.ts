// Address and MAC helpers: parse what users and the kernel give us, fail with a clear message.
import ipaddr from 'ipaddr.js';
import { AF_INET, AF_INET6 } from './constants.js';

export interface IpBytes {
  family: number;
  bytes: Buffer;
}

export function ipToBytes(ip: string): IpBytes {
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

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function macToBytes(mac: string): Buffer {
  if (!MAC_RE.test(mac)) throw new TypeError(`"${mac}" is not a MAC address (xx:xx:xx:xx:xx:xx)`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function bytesToMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
