// A netlink socket in a chosen network namespace, with batched requests.
//
// The kernel handles rtnetlink, genetlink and nfnetlink requests inside sendmsg(), so a batch is
// sent as a few large datagrams (many messages each) and its errors are already queued when
// sendmsg returns. Only the last message of a batch asks for an ACK, which marks the end.
import { native } from '../../native/index.js';
import {
  NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSGERR_ATTR_MSG, NLM_F_ACK, NLM_F_ACK_TLVS,
  NLM_F_CAPPED, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST,
} from './constants.js';
import { cstr, decodeAttrs } from './attrs.js';
import { NetlinkError } from './errors.js';

export interface NetlinkRequest {
  type: number;
  flags: number; // NLM_F_REQUEST is added
  body: Buffer;
  /** Used in error messages: what the request does and to what (a function: built only on error). */
  op: string;
  object: string | (() => string);
}

const label = (o: string | (() => string)): string => (typeof o === 'function' ? o() : o);

export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  data: Buffer;
}

/** What one batch did: failures name their request; the rest succeeded. */
export interface BatchResult {
  sent: number;
  errors: NetlinkError[];
}

const CHUNK_BYTES = 192 * 1024; // stays well under the socket's send buffer
const CHUNK_MESSAGES = 1024; // bounds the worst case of queued error replies
const ACK_TIMEOUT_MS = 10_000;

export interface ChannelOptions {
  /** Path of a network namespace file (/run/netns/NAME, /proc/PID/ns/net); default: ours. */
  netns?: string | null;
  /** Label used in error messages, e.g. the namespace name. */
  label?: string;
}

export class NetlinkChannel {
  readonly fd: number;
  readonly label: string;
  private seq = Math.floor(Math.random() * 0x3fffffff);
  private closed = false;
  /** Count of messages written: lets callers prove a no-op reconcile changes nothing. */
  writes = 0;

  constructor(readonly protocol: number, opts: ChannelOptions = {}) {
    this.fd = native.netlinkOpen(protocol, opts.netns ?? null, 8 << 20, 4 << 20);
    this.label = opts.label ?? (opts.netns ? opts.netns : 'host');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.close(this.fd);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private static frameLength(body: Buffer): number {
    return (NLMSG_HDRLEN + body.length + 3) & ~3;
  }

  private static writeFrame(out: Buffer, off: number, type: number, flags: number, seq: number, body: Buffer): number {
    const len = NLMSG_HDRLEN + body.length;
    out.writeUInt32LE(len, off);
    out.writeUInt16LE(type, off + 4);
    out.writeUInt16LE(flags, off + 6);
    out.writeUInt32LE(seq, off + 8);
    out.writeUInt32LE(0, off + 12);
    body.copy(out, off + NLMSG_HDRLEN);
    const padded = (len + 3) & ~3;
    out.fill(0, off + len, off + padded);
    return off + padded;
  }

  private static frame(type: number, flags: number, seq: number, body: Buffer): Buffer {
    const b = Buffer.allocUnsafe(NetlinkChannel.frameLength(body));
    NetlinkChannel.writeFrame(b, 0, type, flags, seq, body);
    return b;
  }

  /**
   * Sends requests in as few datagrams as the kernel accepts and reports every failure. Requests
   * are independent: one failing does not stop the others (the kernel processes each message).
   */
  batch(reqs: NetlinkRequest[]): BatchResult {
    const errors: NetlinkError[] = [];
    let out = Buffer.allocUnsafe(CHUNK_BYTES);
    for (let start = 0; start < reqs.length; ) {
      const bySeq = new Map<number, NetlinkRequest>();
      let off = 0;
      let lastOff = 0;
      let lastSeq = 0;
      let end = start;
      while (end < reqs.length && end - start < CHUNK_MESSAGES) {
        const r = reqs[end]!;
        const len = NetlinkChannel.frameLength(r.body);
        if (off + len > CHUNK_BYTES && off > 0) break;
        if (len > out.length) out = Buffer.allocUnsafe(len); // one oversized message on its own
        lastSeq = this.nextSeq();
        lastOff = off;
        off = NetlinkChannel.writeFrame(out, off, r.type, r.flags | NLM_F_REQUEST, lastSeq, r.body);
        bySeq.set(lastSeq, r);
        end++;
      }
      // The chunk's last message carries the ACK that tells us the kernel is done with the chunk.
      out.writeUInt16LE(out.readUInt16LE(lastOff + 6) | NLM_F_ACK, lastOff + 6);
      native.netlinkSend(this.fd, out.subarray(0, off));
      this.writes += end - start;
      this.collect(bySeq, lastSeq, errors);
      start = end;
    }
    return { sent: reqs.length, errors };
  }

  /** One request; throws its NetlinkError. */
  request(req: NetlinkRequest): void {
    const { errors } = this.batch([req]);
    if (errors.length > 0) throw errors[0]!;
  }

  private collect(bySeq: Map<number, NetlinkRequest>, lastSeq: number, errors: NetlinkError[]): void {
    for (;;) {
      const dgram = native.netlinkRecv(this.fd, ACK_TIMEOUT_MS);
      if (dgram === null) throw new NetlinkError('wait for ack', this.label, 110, 'kernel did not answer in time');
      for (const m of parseMessages(dgram)) {
        if (m.type !== NLMSG_ERROR) continue;
        const { errno, seq, message } = parseError(m);
        const req = bySeq.get(seq);
        if (!req) continue; // a stale reply from an earlier, abandoned request
        if (errno !== 0) errors.push(new NetlinkError(req.op, label(req.object), errno, message));
        if (seq === lastSeq) return;
      }
    }
  }

  /**
   * A dump request: returns every message of the multipart reply. With flags 0 it is a plain get
   * (one reply message), e.g. generic netlink's CTRL_CMD_GETFAMILY by name, which (unlike its dump)
   * lets the kernel load the family's module.
   */
  dump(type: number, body: Buffer, op: string, object: string, flags = NLM_F_DUMP): RawMessage[] {
    const seq = this.nextSeq();
    native.netlinkSend(this.fd, NetlinkChannel.frame(type, NLM_F_REQUEST | flags, seq, body));
    const out: RawMessage[] = [];
    for (;;) {
      const dgram = native.netlinkRecv(this.fd, ACK_TIMEOUT_MS);
      if (dgram === null) throw new NetlinkError(op, object, 110, 'dump did not finish in time');
      for (const m of parseMessages(dgram)) {
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_DONE) return out;
        if (m.type === NLMSG_ERROR) {
          const e = parseError(m);
          if (e.errno !== 0) throw new NetlinkError(op, object, e.errno, e.message);
          return out;
        }
        if (m.type === NLMSG_NOOP) continue;
        out.push(m);
        if ((m.flags & NLM_F_MULTI) === 0) return out;
      }
    }
  }
}

/** Splits a datagram into messages; stops at the first malformed header. */
export function parseMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      data: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

/** Decodes an NLMSG_ERROR: the errno (positive), the request's seq and any extended-ack text. */
export function parseError(m: RawMessage): { errno: number; seq: number; message?: string } {
  if (m.data.length < 4 + NLMSG_HDRLEN) return { errno: 71 /* EPROTO */, seq: m.seq };
  const errno = -m.data.readInt32LE(0);
  const seq = m.data.readUInt32LE(4 + 8);
  if ((m.flags & NLM_F_ACK_TLVS) === 0) return { errno, seq };
  // With NETLINK_CAP_ACK the original request is not echoed, only its header.
  const reqLen = m.data.readUInt32LE(4);
  const tlvOff = 4 + ((m.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : reqLen);
  const msg = cstr(decodeAttrs(m.data.subarray(tlvOff)).get(NLMSGERR_ATTR_MSG));
  return msg === undefined ? { errno, seq } : { errno, seq, message: msg };
}
