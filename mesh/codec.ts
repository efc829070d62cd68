// Compact binary codec. Packet = [version u8][count u8] then per message [len varint][kind u8][body].
// Integers are big-endian; lengths and counts are LEB128 varints. The decoder never throws and never
// allocates more than the input can justify: every length and count is checked against what remains.
import type { Addr, MemberRecord, MemberStatus, Message, NetEvent, TableEntry } from './messages.js';

export const WIRE_VERSION = 1;
export const LIMITS = {
  /** Messages in one packet. */
  msgs: 255,
  name: 255,
  host: 255,
  key: 1024,
  value: 64 * 1024,
  meta: 512,
  /** Push/pull bodies travel over TCP and may be large, but not unbounded. */
  message: 32 * 1024 * 1024,
} as const;

const KIND = {
  ping: 1, 'ping-req': 2, ack: 3, nack: 4, alive: 5, suspect: 6, dead: 7, net: 8, table: 9, 'push-pull': 10,
} as const satisfies Record<Message['t'], number>;
const STATUS: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];
const U48 = 2 ** 48;

/**
 * Writes into a buffer sized exactly by the size functions below (one allocation per packet, no
 * intermediate frames); strings take an ASCII fast path and fall back to TextEncoder.
 */
class Writer {
  pos = 0;
  constructor(public buf: Uint8Array) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('codec: size mismatch (encoder bug)');
  }
  u8(v: number): void { this.need(1); this.buf[this.pos++] = v & 0xff; }
  u16(v: number): void { this.need(2); this.buf[this.pos++] = (v >>> 8) & 0xff; this.buf[this.pos++] = v & 0xff; }
  u32(v: number): void {
    this.need(4);
    this.buf[this.pos++] = (v >>> 24) & 0xff; this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff; this.buf[this.pos++] = v & 0xff;
  }
  u48(v: number): void {
    checkU48(v);
    this.u16(Math.floor(v / 2 ** 32)); this.u32(v >>> 0);
  }
  varint(v: number): void {
    checkVarint(v);
    while (v >= 0x80) { this.u8((v & 0x7f) | 0x80); v >>>= 7; }
    this.u8(v);
  }
  bytes(b: Uint8Array, max: number): void {
    if (b.length > max) throw new RangeError(`field too long: ${b.length} > ${max}`);
    this.varint(b.length); this.need(b.length); this.buf.set(b, this.pos); this.pos += b.length;
  }
  str(s: string, max: number): void {
    const n = s.length;
    if (!isAscii(s)) { this.bytes(enc.encode(s), max); return; }
    if (n > max) throw new RangeError(`field too long: ${n} > ${max}`);
    this.varint(n); this.need(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }
  addr(a: Addr): void { this.str(a.host, LIMITS.host); this.u16(a.port); }
  bool(b: boolean): void { this.u8(b ? 1 : 0); }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}
function checkU48(v: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= U48) throw new RangeError(`u48 out of range: ${v}`);
}
function checkVarint(v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0x0fffffff) throw new RangeError(`varint out of range: ${v}`);
}

// ---- sizes: exactly what the Writer will write, with the same range checks (so they throw alike) --

function varintLen(v: number): number {
  checkVarint(v);
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4;
}
function bytesLen(b: Uint8Array, max: number): number {
  if (b.length > max) throw new RangeError(`field too long: ${b.length} > ${max}`);
  return varintLen(b.length) + b.length;
}
function strLen(s: string, max: number): number {
  const n = isAscii(s) ? s.length : Buffer.byteLength(s, 'utf8');
  if (n > max) throw new RangeError(`field too long: ${n} > ${max}`);
  return varintLen(n) + n;
}
function addrLen(a: Addr): number { return strLen(a.host, LIMITS.host) + 2; }
function netLen(m: Omit<NetEvent, 't'>): number {
  checkU48(m.ltime);
  return strLen(m.node, LIMITS.name) + strLen(m.network, LIMITS.name) + 6 + 1;
}
function entryLen(e: TableEntry): number {
  checkU48(e.version);
  return strLen(e.network, LIMITS.name) + strLen(e.table, LIMITS.name) + strLen(e.key, LIMITS.key) +
    bytesLen(e.deleted ? EMPTY : e.value, LIMITS.value) + strLen(e.owner, LIMITS.name) + 6 + 1;
}
function memberLen(m: MemberRecord): number {
  return strLen(m.name, LIMITS.name) + addrLen(m.addr) + 4 + 1 + bytesLen(m.meta, LIMITS.meta);
}

function bodyLen(m: Message): number {
  switch (m.t) {
    case 'ping': return 1 + 4 + strLen(m.target, LIMITS.name) + strLen(m.source, LIMITS.name) + addrLen(m.sourceAddr);
    case 'ping-req':
      return 1 + 4 + strLen(m.target, LIMITS.name) + addrLen(m.targetAddr) + 1 + strLen(m.source, LIMITS.name) + addrLen(m.sourceAddr);
    case 'ack': case 'nack': return 1 + 4;
    case 'alive': return 1 + strLen(m.node, LIMITS.name) + 4 + addrLen(m.addr) + bytesLen(m.meta, LIMITS.meta);
    case 'suspect': case 'dead': return 1 + strLen(m.node, LIMITS.name) + 4 + strLen(m.from, LIMITS.name);
    case 'net': return 1 + netLen(m);
    case 'table': return 1 + entryLen(m);
    case 'push-pull': {
      let n = 1 + 1 + 1 + strLen(m.source, LIMITS.name) + addrLen(m.sourceAddr);
      n += varintLen(m.members.length); for (const x of m.members) n += memberLen(x);
      n += varintLen(m.nets.length); for (const x of m.nets) n += netLen(x);
      n += varintLen(m.entries.length); for (const x of m.entries) n += entryLen(x);
      return n;
    }
    default: throw new RangeError(`unknown message kind: ${(m as { t: unknown }).t}`);
  }
}

/** Encoded size of one message as a frame (length prefix included), without encoding it. */
export function messageSize(m: Message): number {
  const n = bodyLen(m);
  return varintLen(n) + n;
}

/** Encoded size of a packet of `msgs` (what encodePacket(msgs).length would be), without encoding it. */
export function packetSize(msgs: readonly Message[]): number {
  if (msgs.length > LIMITS.msgs) throw new RangeError('too many messages in one packet');
  let n = PACKET_OVERHEAD;
  for (const m of msgs) n += messageSize(m);
  return n;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** Thrown only inside the decoder and always caught there. */
class Malformed extends Error {}

class Reader {
  pos: number;
  constructor(private readonly b: Uint8Array, start: number, private readonly end: number) { this.pos = start; }
  get left(): number { return this.end - this.pos; }
  private take(n: number): number {
    if (n > this.end - this.pos) throw new Malformed('truncated');
    const p = this.pos; this.pos += n; return p;
  }
  u8(): number { return this.b[this.take(1)] as number; }
  u16(): number { const p = this.take(2); return ((this.b[p] as number) << 8) | (this.b[p + 1] as number); }
  u32(): number {
    const p = this.take(4);
    return (((this.b[p] as number) << 24) | ((this.b[p + 1] as number) << 16) | ((this.b[p + 2] as number) << 8) | (this.b[p + 3] as number)) >>> 0;
  }
  u48(): number { const hi = this.u16(); return hi * 2 ** 32 + this.u32(); }
  varint(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const x = this.u8();
      v |= (x & 0x7f) << (7 * i);
      if (!(x & 0x80)) return v >>> 0;
    }
    throw new Malformed('varint too long');
  }
  bytes(max: number): Uint8Array {
    const n = this.varint();
    if (n > max) throw new Malformed('field too long');
    const p = this.take(n);
    return this.b.slice(p, p + n);
  }
  str(max: number): string {
    const n = this.varint();
    if (n > max) throw new Malformed('string too long');
    const p = this.take(n);
    const b = this.b;
    if (n <= 64) {
      // Names and hosts are short ASCII: build them directly (TextDecoder's call cost dominates).
      let s = '', ascii = true;
      for (let i = p; i < p + n; i++) { const c = b[i] as number; if (c >= 0x80) { ascii = false; break; } s += String.fromCharCode(c); }
      if (ascii) return s;
    }
    try { return dec.decode(b.subarray(p, p + n)); } catch { throw new Malformed('bad utf-8'); }
  }
  addr(): Addr { const host = this.str(LIMITS.host); return { host, port: this.u16() }; }
  bool(): boolean { const v = this.u8(); if (v > 1) throw new Malformed('bad bool'); return v === 1; }
  /** A count of items each at least `minSize` bytes: bounded by what is left, so no huge arrays. */
  count(minSize: number): number {
    const n = this.varint();
    if (n * minSize > this.left) throw new Malformed('count exceeds input');
    return n;
  }
}

function writeNet(w: Writer, m: Omit<NetEvent, 't'>): void {
  w.str(m.node, LIMITS.name); w.str(m.network, LIMITS.name); w.u48(m.ltime); w.bool(m.leave);
}
function readNet(r: Reader): NetEvent {
  return { t: 'net', node: r.str(LIMITS.name), network: r.str(LIMITS.name), ltime: r.u48(), leave: r.bool() };
}
function writeEntry(w: Writer, e: TableEntry): void {
  w.str(e.network, LIMITS.name); w.str(e.table, LIMITS.name); w.str(e.key, LIMITS.key);
  w.bytes(e.deleted ? EMPTY : e.value, LIMITS.value); w.str(e.owner, LIMITS.name); w.u48(e.version); w.bool(e.deleted);
}
function readEntry(r: Reader): TableEntry {
  return {
    network: r.str(LIMITS.name), table: r.str(LIMITS.name), key: r.str(LIMITS.key), value: r.bytes(LIMITS.value),
    owner: r.str(LIMITS.name), version: r.u48(), deleted: r.bool(),
  };
}
const EMPTY = new Uint8Array(0);

function writeMember(w: Writer, m: MemberRecord): void {
  w.str(m.name, LIMITS.name); w.addr(m.addr); w.u32(m.inc); w.u8(STATUS.indexOf(m.status)); w.bytes(m.meta, LIMITS.meta);
}
function readMember(r: Reader): MemberRecord {
  const name = r.str(LIMITS.name), addr = r.addr(), inc = r.u32();
  const status = STATUS[r.u8()];
  if (status === undefined) throw new Malformed('bad status');
  return { name, addr, inc, status, meta: r.bytes(LIMITS.meta) };
}

function writeBody(w: Writer, m: Message): void {
  w.u8(KIND[m.t]);
  switch (m.t) {
    case 'ping': w.u32(m.seq); w.str(m.target, LIMITS.name); w.str(m.source, LIMITS.name); w.addr(m.sourceAddr); break;
    case 'ping-req':
      w.u32(m.seq); w.str(m.target, LIMITS.name); w.addr(m.targetAddr); w.bool(m.nack);
      w.str(m.source, LIMITS.name); w.addr(m.sourceAddr); break;
    case 'ack': case 'nack': w.u32(m.seq); break;
    case 'alive': w.str(m.node, LIMITS.name); w.u32(m.inc); w.addr(m.addr); w.bytes(m.meta, LIMITS.meta); break;
    case 'suspect': case 'dead': w.str(m.node, LIMITS.name); w.u32(m.inc); w.str(m.from, LIMITS.name); break;
    case 'net': writeNet(w, m); break;
    case 'table': writeEntry(w, m); break;
    case 'push-pull':
      w.bool(m.join); w.bool(m.reply); w.str(m.source, LIMITS.name); w.addr(m.sourceAddr);
      w.varint(m.members.length); for (const x of m.members) writeMember(w, x);
      w.varint(m.nets.length); for (const x of m.nets) writeNet(w, x);
      w.varint(m.entries.length); for (const x of m.entries) writeEntry(w, x);
      break;
  }
}

function readBody(r: Reader): Message {
  const kind = r.u8();
  switch (kind) {
    case KIND.ping: return { t: 'ping', seq: r.u32(), target: r.str(LIMITS.name), source: r.str(LIMITS.name), sourceAddr: r.addr() };
    case KIND['ping-req']:
      return { t: 'ping-req', seq: r.u32(), target: r.str(LIMITS.name), targetAddr: r.addr(), nack: r.bool(), source: r.str(LIMITS.name), sourceAddr: r.addr() };
    case KIND.ack: return { t: 'ack', seq: r.u32() };
    case KIND.nack: return { t: 'nack', seq: r.u32() };
    case KIND.alive: return { t: 'alive', node: r.str(LIMITS.name), inc: r.u32(), addr: r.addr(), meta: r.bytes(LIMITS.meta) };
    case KIND.suspect: return { t: 'suspect', node: r.str(LIMITS.name), inc: r.u32(), from: r.str(LIMITS.name) };
    case KIND.dead: return { t: 'dead', node: r.str(LIMITS.name), inc: r.u32(), from: r.str(LIMITS.name) };
    case KIND.net: return readNet(r);
    case KIND.table: return { t: 'table', ...readEntry(r) };
    case KIND['push-pull']: {
      const join = r.bool(), reply = r.bool(), source = r.str(LIMITS.name), sourceAddr = r.addr();
      // Minimum encoded sizes: member 1+1+2+4+1+1, net 1+1+6+1, entry 1+1+1+1+1+6+1.
      const members: MemberRecord[] = [];
      for (let n = r.count(10); n > 0; n--) members.push(readMember(r));
      const nets: NetEvent[] = [];
      for (let n = r.count(9); n > 0; n--) nets.push(readNet(r));
      const entries: TableEntry[] = [];
      for (let n = r.count(12); n > 0; n--) entries.push(readEntry(r));
      return { t: 'push-pull', join, reply, source, sourceAddr, members, nets, entries };
    }
    default: throw new Malformed('unknown kind');
  }
}

function writeFrame(w: Writer, m: Message, body: number): void {
  w.varint(body);
  const end = w.pos + body;
  writeBody(w, m);
  if (w.pos !== end) throw new Error('codec: size mismatch (encoder bug)');
}

/** One message as a length-prefixed frame, ready to be concatenated into a packet. */
export function encodeMessage(m: Message): Uint8Array {
  const body = bodyLen(m);
  const w = new Writer(new Uint8Array(varintLen(body) + body));
  writeFrame(w, m, body);
  return w.buf;
}

/** Packet from pre-encoded frames. */
export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array {
  if (frames.length > LIMITS.msgs) throw new RangeError('too many messages in one packet');
  let n = 2;
  for (const f of frames) n += f.length;
  const out = new Uint8Array(n);
  out[0] = WIRE_VERSION; out[1] = frames.length;
  let p = 2;
  for (const f of frames) { out.set(f, p); p += f.length; }
  return out;
}

/** The packet, sized first and written into one buffer. */
export function encodePacket(msgs: readonly Message[]): Uint8Array {
  if (msgs.length > LIMITS.msgs) throw new RangeError('too many messages in one packet');
  const bodies: number[] = new Array<number>(msgs.length);
  let n = PACKET_OVERHEAD;
  for (let i = 0; i < msgs.length; i++) { const b = bodyLen(msgs[i] as Message); bodies[i] = b; n += varintLen(b) + b; }
  const w = new Writer(new Uint8Array(n));
  w.u8(WIRE_VERSION); w.u8(msgs.length);
  for (let i = 0; i < msgs.length; i++) writeFrame(w, msgs[i] as Message, bodies[i] as number);
  return w.buf;
}

export const PACKET_OVERHEAD = 2;

export type DecodeResult = { ok: true; msgs: Message[] } | { ok: false; reason: string };

export function decodePacket(b: Uint8Array): DecodeResult {
  try {
    if (b.length < 2) return { ok: false, reason: 'truncated' };
    if (b[0] !== WIRE_VERSION) return { ok: false, reason: 'version' };
    const count = b[1] as number;
    const r = new Reader(b, 2, b.length);
    const msgs: Message[] = [];
    for (let i = 0; i < count; i++) {
      const len = r.varint();
      if (len > r.left || len > LIMITS.message) return { ok: false, reason: 'truncated' };
      const body = new Reader(b, r.pos, r.pos + len);
      msgs.push(readBody(body));
      if (body.left !== 0) return { ok: false, reason: 'trailing bytes in message' };
      r.pos += len;
    }
    if (r.left !== 0) return { ok: false, reason: 'trailing bytes' };
    return { ok: true, msgs };
  } catch (e) {
    return { ok: false, reason: e instanceof Malformed ? e.message : 'malformed' };
  }
}
