// A scripted upstream resolver for the tests, on 127.0.0.x over UDP and TCP, plus dead ones.
import dgram from 'node:dgram';
import net from 'node:net';
import { Packet } from 'dns2';
import { parseQuery, buildResponse, encodeRecord, RCODE, TYPE } from '../../../dns/wire.js';

export interface TestResolver {
  address: string;
  port: number;
  /** Queries seen, by transport. */
  seen: { udp: string[]; tcp: string[] };
  close(): Promise<void>;
}

/** Names it knows: NAME -> A 192.0.2.1; big.test: TC over UDP, 60 records over TCP; slow.test: never
 * answers; fail.test: SERVFAIL; spoof.test: a wrong-ID reply first, then the real one. */
function answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer[] {
  const p = parseQuery(msg);
  if (p.kind !== 'query') return [];
  const q = p.query;
  const head = { id: q.id, opcode: 0, rd: q.rd, cd: false, rcode: RCODE.NOERROR, aa: false, question: q.question, edns: q.edns };
  if (q.name === 'slow.test') return [];
  if (q.name === 'fail.test') return [buildResponse({ ...head, rcode: RCODE.SERVFAIL }, [], 512).bytes];
  if (q.name === 'nx.test') return [buildResponse({ ...head, rcode: RCODE.NXDOMAIN }, [], 512).bytes];
  if (q.name === 'big.test') {
    const rrs = Array.from({ length: 60 }, (_, i) => encodeRecord(TYPE.A, 60, Uint8Array.from([192, 0, 2, i + 1])));
    return [buildResponse(head, rrs, transport === 'tcp' ? 65535 : 512).bytes];
  }
  const ok = buildResponse(head, [encodeRecord(TYPE.A, 60, Uint8Array.from([192, 0, 2, 1]))], 512).bytes;
  if (q.name === 'spoof.test') {
    const fake = Buffer.from(ok);
    fake.writeUInt16BE((q.id + 1) & 0xffff, 0);
    fake[fake.length - 1] = 66;
    return [fake, ok];
  }
  return [ok];
}

export function loopbackAddress(): string {
  return `127.0.${Math.floor(Math.random() * 200) + 20}.${Math.floor(Math.random() * 200) + 20}`;
}

export async function startTestResolver(opts: { dead?: boolean; address?: string } = {}): Promise<TestResolver> {
  const address = opts.address ?? loopbackAddress();
  const udp = dgram.createSocket('udp4');
  const seen = { udp: [] as string[], tcp: [] as string[] };
  await new Promise<void>((ok) => udp.bind(0, address, ok));
  const port = udp.address().port;
  udp.on('message', (m, rinfo) => {
    seen.udp.push(Packet.parse(m).questions[0]?.name ?? '?');
    if (opts.dead) return;
    for (const r of answer(m, 'udp')) udp.send(r, rinfo.port, rinfo.address);
  });
  const conns = new Set<net.Socket>();
  const tcp = net.createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + m.length);
        seen.tcp.push(Packet.parse(m).questions[0]?.name ?? '?');
        if (opts.dead) continue;
        for (const r of answer(m, 'tcp')) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          s.write(Buffer.concat([len, r]));
        }
      }
    });
  });
  await new Promise<void>((ok, fail) => {
    tcp.once('error', fail);
    tcp.listen(port, address, ok);
  });
  return {
    address, port, seen,
    close: async () => {
      udp.close();
      for (const c of conns) c.destroy();
      await new Promise<void>((ok) => tcp.close(() => ok()));
    },
  };
}

/** An address and port where nothing listens: connected UDP gets ICMP port unreachable at once. */
export async function closedPort(): Promise<{ address: string; port: number }> {
  const address = loopbackAddress();
  const s = dgram.createSocket('udp4');
  await new Promise<void>((ok) => s.bind(0, address, ok));
  const port = s.address().port;
  await new Promise<void>((ok) => s.close(ok));
  return { address, port };
}
