// Strict DNS wire codec for the hot path: parse a query, build a response from pre-encoded records.
//
// Why not dns2's Packet here: measured on this machine, Packet.parse costs ~42 us per query and
// Packet#toBuffer ~87 us for a single A answer and ~27 ms for 100 answers (its bit-array writer
// re-materialises the whole message after every record: quadratic). It also swallows section errors
// (a qdcount=1 query with no question parses as "no questions", a truncated OPT vanishes) and throws
// RangeError on short headers, so it cannot tell us when to send FORMERR. dns2 stays the reference
// decoder: the tests decode every response we build with Packet.parse and compare.
import { Packet } from 'dns2';
import { presentName } from './names.js';

export const TYPE = {
  A: Packet.TYPE.A,
  NS: Packet.TYPE.NS,
  SOA: Packet.TYPE.SOA,
  PTR: Packet.TYPE.PTR,
  AAAA: Packet.TYPE.AAAA,
  SRV: Packet.TYPE.SRV,
  OPT: Packet.TYPE.EDNS,
  DS: 43,
  DNSKEY: Packet.TYPE.DNSKEY,
  ANY: Packet.TYPE.ANY,
} as const;

export const CLASS_IN = Packet.CLASS.IN;
export const CLASS_ANY = Packet.CLASS.ANY;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (12-bit) rcode, carried half in the OPT record (RFC 6891 6.1.3). */
  BADVERS: 16,
} as const;

export const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS',
};

export const HEADER_LEN = 12;
/** Classic UDP limit without EDNS (RFC 1035 4.2.1). */
export const UDP_DEFAULT_LIMIT = 512;
/** What we advertise and the most we send over UDP: queries arrive over loopback, where 4096 never
 * fragments; clients that advertise less get less. */
export const UDP_MAX_PAYLOAD = 4096;
export const TCP_MAX_MESSAGE = 65535;

export interface Edns {
  /** Requestor's UDP payload size, raised to 512 when it advertises less (RFC 6891 6.2.5). */
  payload: number;
  version: number;
  dnssecOk: boolean;
}

export interface ParsedQuery {
  id: number;
  opcode: number;
  rd: boolean;
  cd: boolean;
  /** Presentation form, lower-cased, no trailing dot; "" is the root. Odd bytes are \DDD-escaped. */
  name: string;
  qtype: number;
  qclass: number;
  /** The question exactly as asked (name, type, class): echoed so 0x20 case randomisation survives. */
  question: Buffer;
  edns: Edns | null;
}

/** A query we must not answer normally: drop it, or reply with an error built from what we could read. */
export type ParseFailure =
  | { kind: 'drop'; reason: 'short' | 'response' }
  | { kind: 'error'; rcode: number; id: number; opcode: number; rd: boolean; question: Buffer | null; edns: Edns | null };

export type ParseResult = { kind: 'query'; query: ParsedQuery } | ParseFailure;

class Malformed extends Error {}

/** Walks a name at `off` (pointers allowed only to earlier bytes, so no loops) and returns the end offset. */
function skipName(b: Uint8Array, off: number, allowPointers: boolean): number {
  let total = 1;
  for (;;) {
    if (off >= b.length) throw new Malformed('name runs past the end');
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) {
      if (!allowPointers || off + 1 >= b.length) throw new Malformed('bad compression pointer');
      const target = ((len & 0x3f) << 8) | b[off + 1]!;
      if (target >= off) throw new Malformed('forward compression pointer');
      return off + 2;
    }
    if (len & 0xc0) throw new Malformed('reserved label type');
    total += len + 1;
    if (total > 255) throw new Malformed('name longer than 255 octets');
    off += len + 1;
  }
}

/** Reads the first name of a message (which cannot hold pointers: nothing precedes it but the header). */
function readQuestionName(b: Uint8Array, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let total = 1;
  for (;;) {
    if (off >= b.length) throw new Malformed('question name runs past the end');
    const len = b[off]!;
    if (len === 0) return { name: labels.join('.'), end: off + 1 };
    if (len & 0xc0) throw new Malformed('pointer or reserved label in question');
    total += len + 1;
    if (total > 255) throw new Malformed('name longer than 255 octets');
    if (off + 1 + len > b.length) throw new Malformed('label runs past the end');
    labels.push(presentName(b, off + 1, len));
    off += len + 1;
  }
}

function u16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

/** Parses a query strictly: anything a well-behaved client would not send becomes FORMERR or a drop. */
export function parseQuery(msg: Uint8Array): ParseResult {
  if (msg.length < HEADER_LEN) return { kind: 'drop', reason: 'short' };
  const b = msg;
  const id = u16(b, 0);
  const flags = u16(b, 2);
  // Never answer a response: that is how two servers ping-pong forever, or how we get used to reflect.
  if (flags & 0x8000) return { kind: 'drop', reason: 'response' };
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & 0x0100) !== 0;
  const cd = (flags & 0x0010) !== 0;
  const qd = u16(b, 4), an = u16(b, 6), ns = u16(b, 8), ar = u16(b, 10);
  const fail = (rcode: number, question: Buffer | null, edns: Edns | null): ParseFailure =>
    ({ kind: 'error', rcode, id, opcode, rd, question, edns });
  if (opcode !== 0) return fail(RCODE.NOTIMP, null, null);
  if (qd !== 1) return fail(RCODE.FORMERR, null, null);
  let question: Buffer | null = null;
  let edns: Edns | null = null;
  try {
    const { name, end } = readQuestionName(b, HEADER_LEN);
    if (end + 4 > b.length) throw new Malformed('question type/class missing');
    const qtype = u16(b, end), qclass = u16(b, end + 2);
    question = Buffer.from(b.buffer, b.byteOffset + HEADER_LEN, end + 4 - HEADER_LEN);
    let off = end + 4;
    let ednsVersion = 0;
    for (let i = 0; i < an + ns + ar; i++) {
      const owner = off;
      off = skipName(b, off, true);
      if (off + 10 > b.length) throw new Malformed('record header runs past the end');
      const type = u16(b, off), rrClass = u16(b, off + 2);
      const rdlen = u16(b, off + 8);
      const rdata = off + 10;
      off = rdata + rdlen;
      if (off > b.length) throw new Malformed('rdata runs past the end');
      if (type !== TYPE.OPT) continue;
      // RFC 6891 6.1.1: one OPT, in the additional section, owned by the root.
      if (i < an + ns || edns || b[owner] !== 0) throw new Malformed('misplaced or repeated OPT');
      for (let o = rdata; o < off; ) {
        if (o + 4 > off) throw new Malformed('EDNS option header runs past the rdata');
        o += 4 + u16(b, o + 2);
        if (o > off) throw new Malformed('EDNS option runs past the rdata');
      }
      ednsVersion = b[owner + 6]!;
      edns = { payload: Math.max(rrClass, UDP_DEFAULT_LIMIT), version: 0, dnssecOk: (b[owner + 7]! & 0x80) !== 0 };
    }
    if (off !== b.length) throw new Malformed('trailing bytes');
    if (edns && ednsVersion !== 0) return fail(RCODE.BADVERS, question, edns);
    return { kind: 'query', query: { id, opcode, rd, cd, name, qtype, qclass, question, edns } };
  } catch (e) {
    if (e instanceof Malformed) return fail(RCODE.FORMERR, question, edns);
    throw e;
  }
}

export interface ResponseHead {
  id: number;
  opcode: number;
  rd: boolean;
  cd: boolean;
  rcode: number;
  /** Authoritative: set for cluster names, which only we know. */
  aa: boolean;
  question: Buffer | null;
  edns: Edns | null;
}

const OPT_LEN = 11;

function writeHeader(out: Buffer, h: ResponseHead, tc: boolean, an: number): void {
  out.writeUInt16BE(h.id, 0);
  // QR, opcode, AA, TC, RD, RA (we recurse for the task by forwarding), CD echoed, low 4 rcode bits.
  const flags = 0x8000 | (h.opcode << 11) | (h.aa ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (h.rd ? 0x0100 : 0) | 0x0080 |
    (h.cd ? 0x0010 : 0) | (h.rcode & 0xf);
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(h.question ? 1 : 0, 4);
  out.writeUInt16BE(an, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(h.edns ? 1 : 0, 10);
}

function writeOpt(out: Buffer, off: number, h: ResponseHead): void {
  out[off] = 0; // root owner
  out.writeUInt16BE(TYPE.OPT, off + 1);
  out.writeUInt16BE(UDP_MAX_PAYLOAD, off + 3);
  out[off + 5] = (h.rcode >> 4) & 0xff; // extended rcode
  out[off + 6] = 0; // version
  out[off + 7] = h.edns?.dnssecOk ? 0x80 : 0; // DO is echoed (RFC 3225 3)
  out[off + 8] = 0;
  out.writeUInt16BE(0, off + 9); // no options
}

/**
 * Builds a response: header, the question as asked, `answers` (pre-encoded records whose owner is a
 * pointer to the question name at offset 12), and an OPT when the query had one. When the records do
 * not fit in `limit`, UDP gets an empty answer with TC set (clients retry over TCP and must discard
 * partial UDP answers anyway, RFC 2181 9); TCP (tc=false) gets as many whole records as fit.
 */
export function buildResponse(h: ResponseHead, answers: readonly Buffer[], limit: number, start = 0, truncateWithTc = true): { bytes: Buffer; truncated: boolean } {
  const fixed = HEADER_LEN + (h.question ? h.question.length : 0) + (h.edns ? OPT_LEN : 0);
  let size = fixed;
  let count = 0;
  for (let i = 0; i < answers.length; i++) {
    const rr = answers[(start + i) % answers.length]!;
    if (size + rr.length > limit) break;
    size += rr.length;
    count++;
  }
  let truncated = false;
  if (count < answers.length) {
    truncated = true;
    if (truncateWithTc) {
      count = 0;
      size = fixed;
    }
  }
  const out = Buffer.allocUnsafe(size);
  writeHeader(out, h, truncated && truncateWithTc, count);
  let off = HEADER_LEN;
  if (h.question) off += h.question.copy(out, off);
  for (let i = 0; i < count; i++) off += answers[(start + i) % answers.length]!.copy(out, off);
  if (h.edns) writeOpt(out, off, h);
  return { bytes: out, truncated };
}

/** The UDP size limit for a query: 512 without EDNS, else the client's payload up to what we advertise. */
export function udpLimit(edns: Edns | null): number {
  return edns ? Math.min(edns.payload, UDP_MAX_PAYLOAD) : UDP_DEFAULT_LIMIT;
}

/**
 * Cuts an upstream response that is too big for the client's UDP limit down to header + question
 * (+ OPT when the client used EDNS) with TC set, so the client retries over TCP.
 */
export function truncateResponse(resp: Buffer, q: ParsedQuery, limit: number): Buffer {
  if (resp.length <= limit) return resp;
  const rcode = resp.length >= 4 ? resp[3]! & 0xf : RCODE.SERVFAIL;
  const { bytes } = buildResponse({ id: q.id, opcode: q.opcode, rd: q.rd, cd: q.cd, rcode, aa: false, question: q.question, edns: q.edns }, [], limit);
  bytes[2] = (bytes[2]! | 0x02) & 0xfb; // TC on, AA off
  return bytes;
}

/** An error reply (SERVFAIL, REFUSED, ...) for a parsed query. */
export function errorResponse(q: ParsedQuery, rcode: number): Buffer {
  return buildResponse({ id: q.id, opcode: q.opcode, rd: q.rd, cd: q.cd, rcode, aa: false, question: q.question, edns: q.edns }, [], TCP_MAX_MESSAGE).bytes;
}

/** The reply for a query that failed to parse (FORMERR, NOTIMP, BADVERS). */
export function failureResponse(f: Extract<ParseFailure, { kind: 'error' }>): Buffer {
  return buildResponse({ id: f.id, opcode: f.opcode, rd: f.rd, cd: false, rcode: f.rcode, aa: false, question: f.question, edns: f.edns }, [], TCP_MAX_MESSAGE).bytes;
}

/** Encodes a name in wire form (no compression) from presentation labels; used for PTR targets. */
export function encodeName(name: string): Buffer {
  const bytes = Buffer.from(name, 'latin1');
  const out = Buffer.allocUnsafe(bytes.length + 2);
  let len = 0; // wire length so far
  let labelStart = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x2e) continue;
    const l = i - labelStart;
    if (l > 63) throw new RangeError(`a label of "${name}" is longer than 63 octets`);
    if (l > 0) {
      out[len] = l;
      bytes.copy(out, len + 1, labelStart, i);
      len += l + 1;
    }
    labelStart = i + 1;
  }
  out[len++] = 0;
  if (len > 255) throw new RangeError(`name "${name}" longer than 255 octets`);
  return out.subarray(0, len);
}

/** A record owned by the question name (pointer 0xC00C), ready to copy into any response. */
export function encodeRecord(type: number, ttl: number, rdata: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(12 + rdata.length);
  out.writeUInt16BE(0xc00c, 0);
  out.writeUInt16BE(type, 2);
  out.writeUInt16BE(CLASS_IN, 4);
  out.writeUInt32BE(ttl >>> 0, 6);
  out.writeUInt16BE(rdata.length, 10);
  Buffer.from(rdata.buffer, rdata.byteOffset, rdata.length).copy(out, 12);
  return out;
}

/** Builds a query (tests, the bench and the fuzzer's seeds). */
export function buildQuery(opts: { id?: number; name: string; type: number; qclass?: number; rd?: boolean; edns?: { payload: number; dnssecOk?: boolean; version?: number } }): Buffer {
  const name = encodeName(opts.name);
  const hasOpt = opts.edns !== undefined;
  const out = Buffer.alloc(HEADER_LEN + name.length + 4 + (hasOpt ? OPT_LEN : 0));
  out.writeUInt16BE(opts.id ?? 0x1234, 0);
  out.writeUInt16BE(opts.rd === false ? 0 : 0x0100, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(hasOpt ? 1 : 0, 10);
  let off = HEADER_LEN + name.copy(out, HEADER_LEN);
  out.writeUInt16BE(opts.type, off);
  out.writeUInt16BE(opts.qclass ?? CLASS_IN, off + 2);
  off += 4;
  if (opts.edns) {
    out[off] = 0;
    out.writeUInt16BE(TYPE.OPT, off + 1);
    out.writeUInt16BE(opts.edns.payload, off + 3);
    out[off + 6] = opts.edns.version ?? 0;
    out[off + 7] = opts.edns.dnssecOk ? 0x80 : 0;
  }
  return out;
}
