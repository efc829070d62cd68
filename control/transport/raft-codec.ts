// Binary encoding of Raft messages for the 2377 transport. Numbers are written as float64, which
// is exact for the integer terms and indexes Raft uses (below 2^53); strings are u16-length UTF-8.
// Decoding checks every length against the buffer, so a hostile frame is an error, never a crash.
import type { ConfState, Entry, Message, MessageType, Snapshot } from '../raft/types.js';

const TYPES: readonly MessageType[] = [
  'hup', 'beat', 'prop', 'snapStatus', 'unreachable', 'app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp',
  'snap', 'heartbeat', 'heartbeatResp', 'transferLeader', 'timeoutNow', 'readIndex', 'readIndexResp',
];
const TYPE_CODE = new Map(TYPES.map((t, i) => [t, i]));

export class CodecError extends Error {
  override name = 'CodecError';
}

class Writer {
  buf: Buffer;
  off = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private need(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(b, 0, 0, this.off);
    this.buf = b;
  }
  u8(v: number): void {
    this.need(1);
    this.buf[this.off++] = v;
  }
  u32(v: number): void {
    this.need(4);
    this.buf.writeUInt32LE(v, this.off);
    this.off += 4;
  }
  num(v: number): void {
    this.need(8);
    this.buf.writeDoubleLE(v, this.off);
    this.off += 8;
  }
  str(s: string): void {
    const len = Buffer.byteLength(s);
    if (len > 0xffff) throw new CodecError('string too long');
    this.need(2 + len);
    this.buf.writeUInt16LE(len, this.off);
    this.buf.write(s, this.off + 2, 'utf8');
    this.off += 2 + len;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.need(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }
}

class Reader {
  off = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new CodecError(`truncated message (need ${n} bytes at ${this.off} of ${this.buf.length})`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  num(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.off);
    this.off += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`bad number ${v}`);
    return v;
  }
  str(): string {
    this.need(2);
    const len = this.buf.readUInt16LE(this.off);
    this.off += 2;
    this.need(len);
    const s = this.buf.toString('utf8', this.off, this.off + len);
    this.off += len;
    return s;
  }
  bytes(): Uint8Array {
    const len = this.u32();
    this.need(len);
    const b = new Uint8Array(this.buf.subarray(this.off, this.off + len));
    this.off += len;
    return b;
  }
  done(): void {
    if (this.off !== this.buf.length) throw new CodecError(`${this.buf.length - this.off} trailing bytes`);
  }
}

function writeConf(w: Writer, c: ConfState): void {
  w.u32(c.voters.length);
  for (const v of c.voters) w.str(v);
  w.u32(c.learners.length);
  for (const l of c.learners) w.str(l);
}

function readList(r: Reader, max: number): string[] {
  const n = r.u32();
  if (n > max) throw new CodecError(`list of ${n} items is too long`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str());
  return out;
}

export function encodeMessage(m: Message): Buffer {
  let size = 96 + m.context.length * 3 + m.from.length * 3 + m.to.length * 3;
  for (const e of m.entries) size += 21 + e.data.length;
  if (m.snapshot) size += 64 + m.snapshot.data.length;
  const w = new Writer(size);
  const code = TYPE_CODE.get(m.type);
  if (code === undefined) throw new CodecError(`unknown message type ${m.type}`);
  w.u8(code);
  w.str(m.from);
  w.str(m.to);
  w.num(m.term);
  w.num(m.logTerm);
  w.num(m.index);
  w.num(m.commit);
  w.u8(m.reject ? 1 : 0);
  w.num(m.rejectHint);
  w.str(m.context);
  w.u32(m.entries.length);
  for (const e of m.entries) {
    w.num(e.index);
    w.num(e.term);
    w.u8(e.type === 'conf' ? 1 : 0);
    w.bytes(e.data);
  }
  if (m.snapshot) {
    w.u8(1);
    w.num(m.snapshot.meta.index);
    w.num(m.snapshot.meta.term);
    writeConf(w, m.snapshot.meta.conf);
    w.bytes(m.snapshot.data);
  } else {
    w.u8(0);
  }
  return w.buf.subarray(0, w.off);
}

export function decodeMessage(buf: Buffer): Message {
  const r = new Reader(buf);
  const type = TYPES[r.u8()];
  if (!type) throw new CodecError('unknown message type');
  const from = r.str();
  const to = r.str();
  const term = r.num();
  const logTerm = r.num();
  const index = r.num();
  const commit = r.num();
  const reject = r.u8() === 1;
  const rejectHint = r.num();
  const context = r.str();
  const n = r.u32();
  if (n > buf.length) throw new CodecError(`${n} entries cannot fit in ${buf.length} bytes`);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const eIndex = r.num();
    const eTerm = r.num();
    const t = r.u8();
    entries.push({ index: eIndex, term: eTerm, type: t === 1 ? 'conf' : 'normal', data: r.bytes() });
  }
  let snapshot: Snapshot | undefined;
  if (r.u8() === 1) {
    const sIndex = r.num();
    const sTerm = r.num();
    const voters = readList(r, 1000);
    const learners = readList(r, 1000);
    snapshot = { meta: { index: sIndex, term: sTerm, conf: { voters, learners } }, data: r.bytes() };
  }
  r.done();
  const m: Message = { type, from, to, term, logTerm, index, commit, reject, rejectHint, context, entries };
  if (snapshot) m.snapshot = snapshot;
  return m;
}
