// Packet generator for the fuzzers (CI test and the 1M bench): valid queries of many shapes, then
// random bytes and mutations of them. Seeded, so a failure can be replayed.
import { buildQuery, TYPE } from '../../../dns/wire.js';

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    // xorshift32
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const NAMES = ['web', 'WEB.', 'tasks.web', 'db', 'database', 'tasks.db', 'big', 'tasks.BIG', 'web.1.webtask1', 'www', 'web-primary',
  'nosuch', 'example.com', '2.1.0.10.in-addr.arpa', '11.1.0.10.in-addr.arpa', '99.1.0.10.in-addr.arpa', '21.2.0.10.in-addr.arpa',
  '1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.0.0.0.0.0.d.f.ip6.arpa', '', 'com', 'a.b.c.d.e.f.g', 'x'.repeat(63)];
const TYPES = [TYPE.A, TYPE.A, TYPE.AAAA, TYPE.PTR, TYPE.ANY, TYPE.SRV, TYPE.NS, TYPE.SOA, TYPE.OPT, 0, 65535];

export function seedQuery(r: Rng): Buffer {
  const edns = r.int(2) ? { payload: r.pick([0, 512, 1232, 1800, 4096, 65535]), dnssecOk: r.int(2) === 1, version: r.int(16) === 0 ? 1 : 0 } : undefined;
  const q = buildQuery({ id: r.int(65536), name: r.pick(NAMES), type: r.pick(TYPES), qclass: r.pick([1, 1, 1, 1, 3, 255, 0]), rd: r.int(4) !== 0, ...(edns ? { edns } : {}) });
  // Now and then an EDNS option (cookie-sized) in the OPT, fixing its RDLENGTH.
  if (edns && r.int(4) === 0) {
    const opt = Buffer.from([0, 10, 0, 8, ...Array.from({ length: 8 }, () => r.int(256))]);
    const out = Buffer.concat([q, opt]);
    out.writeUInt16BE(opt.length, q.length - 2);
    return out;
  }
  return q;
}

function mutate(r: Rng, b: Buffer): Buffer {
  let out = Buffer.from(b);
  const n = 1 + r.int(4);
  for (let i = 0; i < n; i++) {
    switch (r.int(8)) {
      case 0: // bit flip
        if (out.length) out[r.int(out.length)]! ^= 1 << r.int(8);
        break;
      case 1: // random byte
        if (out.length) out[r.int(out.length)] = r.int(256);
        break;
      case 2: // truncate
        out = out.subarray(0, r.int(out.length + 1));
        break;
      case 3: // extend
        out = Buffer.concat([out, Buffer.from(Array.from({ length: 1 + r.int(40) }, () => r.int(256)))]);
        break;
      case 4: // section counts
        if (out.length >= 12) out.writeUInt16BE(r.pick([0, 1, 2, 255, 65535]), 4 + 2 * r.int(4));
        break;
      case 5: // a compression pointer anywhere
        if (out.length >= 2) out.writeUInt16BE(0xc000 | r.int(out.length + 8), r.int(out.length - 1));
        break;
      case 6: // flags: QR, opcode, TC ...
        if (out.length >= 4) out.writeUInt16BE(r.int(65536), 2);
        break;
      default: // duplicate a slice (a second question, a second OPT)
        if (out.length > 12) {
          const s = 12 + r.int(out.length - 12);
          out = Buffer.concat([out, out.subarray(s, s + r.int(30))]);
        }
    }
  }
  return out;
}

/** One fuzz packet: a quarter pure random bytes, a quarter valid queries of many shapes (so every
 * answer path is encoded: truncation, rotation, PTR, NODATA, BADVERS), half mutated valid queries. */
export function fuzzPacket(r: Rng): Buffer {
  const k = r.int(4);
  if (k === 0) return Buffer.from(Array.from({ length: r.int(r.int(8) === 0 ? 5000 : 80) }, () => r.int(256)));
  if (k === 1) return seedQuery(r);
  return mutate(r, seedQuery(r));
}
