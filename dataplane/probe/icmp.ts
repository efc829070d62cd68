// ICMP echo over a raw socket (the `raw-socket` package): reachability checks from this namespace.
// Used by `lab status` now and by overlay health probes later.
import raw from 'raw-socket';

export interface EchoResult {
  target: string;
  ok: boolean;
  rttMs?: number;
  error?: string;
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

export function echoRequest(id: number, seq: number, payloadSize: number): Buffer {
  const b = Buffer.alloc(8 + payloadSize);
  b.writeUInt8(8, 0); // echo request
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(seq, 6);
  for (let i = 8; i < b.length; i++) b[i] = i & 0xff;
  b.writeUInt16BE(checksum(b), 2);
  return b;
}

/** Pings every target once, in parallel, over one raw socket; never throws for unreachable hosts. */
export async function pingAll(targets: string[], timeoutMs = 1000, payloadSize = 56): Promise<EchoResult[]> {
  const sock = raw.createSocket({ protocol: raw.Protocol.ICMP });
  const id = process.pid & 0xffff;
  const sent = new Map<number, { target: string; at: bigint }>();
  const results = new Map<string, EchoResult>();
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      sock.close();
      resolve(targets.map((t) => results.get(t) ?? { target: t, ok: false, error: `no reply within ${timeoutMs} ms` }));
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('message', (buf: Buffer, source: string) => {
      const ihl = (buf[0]! & 0x0f) * 4; // raw IPv4 sockets deliver the IP header too
      if (buf.length < ihl + 8 || buf[ihl] !== 0 || buf.readUInt16BE(ihl + 4) !== id) return;
      const s = sent.get(buf.readUInt16BE(ihl + 6));
      if (!s || s.target !== source || results.has(source)) return;
      results.set(source, { target: source, ok: true, rttMs: Number(process.hrtime.bigint() - s.at) / 1e6 });
      if (results.size === targets.length) finish();
    });
    sock.on('error', (e: Error) => {
      for (const t of targets) if (!results.has(t)) results.set(t, { target: t, ok: false, error: e.message });
      finish();
    });
    targets.forEach((target, seq) => {
      sent.set(seq, { target, at: process.hrtime.bigint() });
      const pkt = echoRequest(id, seq, payloadSize);
      sock.send(pkt, 0, pkt.length, target, (err?: Error) => {
        if (err && !results.has(target)) results.set(target, { target, ok: false, error: err.message });
      });
    });
    if (targets.length === 0) finish();
  });
}
