// The node's upstream resolvers, from resolv.conf. Forwarding runs from meshd's own namespace (the
// host's), so a loopback stub such as systemd-resolved's 127.0.0.53 is reachable and kept; only our
// own 127.0.0.11 is dropped, since asking ourselves would loop.
import fs from 'node:fs';
import net from 'node:net';

export interface Upstream {
  address: string;
  port: number;
}

export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)$/.exec(line);
    if (!m) continue;
    const address = m[1]!.replace(/%.*$/, ''); // drop an IPv6 zone: sockets here are not scoped
    if (!net.isIP(address) || address === '127.0.0.11') continue;
    if (!out.some((u) => u.address === address)) out.push({ address, port: 53 });
  }
  return out;
}

/** Upstreams from a resolv.conf file; none when it is missing or empty (then every forward is SERVFAIL). */
export function readResolvConf(path = '/etc/resolv.conf'): Upstream[] {
  try {
    return parseResolvConf(fs.readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}
