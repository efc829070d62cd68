// Name forms: the one key every lookup uses (lower-case presentation, no trailing dot) and reverse names.
import ipaddr from 'ipaddr.js';

/**
 * One wire label in presentation form, lower-cased (DNS compares ASCII case-insensitively, RFC 4343).
 * '.', '\' and bytes outside printable ASCII are written \DDD, so a label holding a dot can never be
 * mistaken for two labels and match a name it is not.
 */
export function presentName(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = off; i < off + len; i++) {
    const c = b[i]!;
    if (c >= 0x41 && c <= 0x5a) s += String.fromCharCode(c | 0x20);
    else if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) s += String.fromCharCode(c);
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s;
}

/** The lookup key for a configured name: lower-case, no trailing dot. */
export function nameKey(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

/** The reverse-lookup owner name of an address: 4.3.2.1.in-addr.arpa or nibbles under ip6.arpa. */
export function reverseName(ip: string): string {
  const a = ipaddr.parse(ip);
  const bytes = a.toByteArray();
  if (a.kind() === 'ipv4') return `${bytes.slice().reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = bytes.length - 1; i >= 0; i--) {
    const v = bytes[i]!;
    nibbles.push((v & 0xf).toString(16), (v >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

/**
 * The address bytes a reverse name stands for, possibly a prefix ("10.in-addr.arpa" -> [10]);
 * null when it is not a reverse name. Nibble names with an odd count keep the last whole byte.
 */
export function reverseBytes(name: string): { v6: boolean; bytes: number[] } | null {
  if (name.endsWith('.in-addr.arpa')) {
    const labels = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length > 4) return null;
    const bytes: number[] = [];
    for (let i = labels.length - 1; i >= 0; i--) {
      const l = labels[i]!;
      if (!/^(0|[1-9][0-9]{0,2})$/.test(l) || Number(l) > 255) return null;
      bytes.push(Number(l));
    }
    return { v6: false, bytes };
  }
  if (name.endsWith('.ip6.arpa')) {
    const labels = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (labels.length > 32) return null;
    const nibbles: number[] = [];
    for (let i = labels.length - 1; i >= 0; i--) {
      const l = labels[i]!;
      if (!/^[0-9a-f]$/.test(l)) return null;
      nibbles.push(parseInt(l, 16));
    }
    const bytes: number[] = [];
    for (let i = 0; i + 1 < nibbles.length; i += 2) bytes.push((nibbles[i]! << 4) | nibbles[i + 1]!);
    return { v6: true, bytes };
  }
  return null;
}

/** Canonical text of an address (so '010.0.0.1'-style spellings never become two keys). */
export function canonicalIp(ip: string): { ip: string; v6: boolean; bytes: number[] } {
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) {
    const a = ipaddr.IPv4.parse(ip);
    return { ip: a.toString(), v6: false, bytes: a.toByteArray() };
  }
  if (ipaddr.IPv6.isValid(ip)) {
    const a = ipaddr.IPv6.parse(ip);
    if (a.isIPv4MappedAddress()) throw new TypeError(`"${ip}": use the IPv4 form`);
    return { ip: a.toString(), v6: true, bytes: a.toByteArray() };
  }
  throw new TypeError(`"${ip}" is not an IP address`);
}
