// An independent structural check of a reply to a query (for the fuzzers): it walks every section
// itself rather than trusting our codec, and returns what is wrong, or null.
const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

function walkName(b: Uint8Array, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= b.length) throw new Error('name past the end');
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= b.length) throw new Error('pointer past the end');
      const target = ((len & 0x3f) << 8) | b[off + 1]!;
      if (target >= off) throw new Error('forward pointer');
      walkName(b, target);
      return off + 2;
    }
    if (len > 63) throw new Error('reserved label type');
    off += 1 + len;
  }
  throw new Error('too many labels');
}

export function checkReply(query: Uint8Array, reply: Uint8Array, transport: 'udp' | 'tcp'): string | null {
  try {
    if (reply.length < 12) return 'shorter than a header';
    if (transport === 'udp' && reply.length > 4096) return `UDP reply of ${reply.length} bytes`;
    if (transport === 'tcp' && reply.length > 65535) return 'TCP reply over 64 KiB';
    if (query.length >= 2 && u16(reply, 0) !== u16(query, 0)) return 'ID not echoed';
    const flags = u16(reply, 2);
    if (!(flags & 0x8000)) return 'QR not set';
    if (query.length >= 3 && ((flags >> 11) & 0xf) !== ((query[2]! >> 3) & 0xf)) return 'opcode not echoed';
    const rcode = flags & 0xf;
    const qd = u16(reply, 4), an = u16(reply, 6), ns = u16(reply, 8), ar = u16(reply, 10);
    if (qd > 1) return `qdcount ${qd}`;
    if (flags & 0x0200 && an !== 0) return 'TC with answers';
    if (rcode !== 0 && an !== 0) return `rcode ${rcode} with answers`;
    let off = 12;
    let qtype = -1;
    if (qd === 1) {
      const end = walkName(reply, off);
      if (end + 4 > reply.length) return 'question cut';
      // The question is echoed byte for byte (case too: 0x20 randomisation).
      const asked = query.subarray(12, end + 4);
      if (!Buffer.from(asked).equals(Buffer.from(reply.subarray(12, end + 4)))) return 'question not echoed as asked';
      qtype = u16(reply, end);
      off = end + 4;
    }
    let opts = 0;
    for (let i = 0; i < an + ns + ar; i++) {
      off = walkName(reply, off);
      if (off + 10 > reply.length) return 'record header cut';
      const type = u16(reply, off);
      const rdlen = u16(reply, off + 8);
      if (i < an && qtype !== 255 && type !== qtype) return `answer of type ${type} to a question of type ${qtype}`;
      if (type === 41) {
        if (i < an + ns) return 'OPT outside the additional section';
        opts++;
      }
      off += 10 + rdlen;
      if (off > reply.length) return 'rdata past the end';
    }
    if (off !== reply.length) return `${reply.length - off} trailing bytes`;
    if (opts > 1) return 'two OPT records';
    if (transport === 'udp' && opts === 0 && reply.length > 512) return `${reply.length} bytes over UDP without EDNS`;
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
