// nfnetlink framing for nf_tables (linux/netfilter/nfnetlink.h, nf_tables.h): every message is
// nlmsghdr + nfgenmsg + attributes, and a transaction is one datagram BATCH_BEGIN, messages,
// BATCH_END, which the kernel applies all or nothing. Pure: bytes in, bytes out.
import { encodeAttrs, type Attr } from '../../netlink/attrs.js';
import { NLMSG_HDRLEN, NLM_F_ACK, NLM_F_REQUEST } from '../../netlink/constants.js';

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFGENMSG_LEN = 4;

export const NFT_MSG = {
  NEWTABLE: 0, DELTABLE: 2, NEWCHAIN: 3, DELCHAIN: 5, NEWRULE: 6, DELRULE: 8,
  NEWSET: 9, DELSET: 11, NEWSETELEM: 12, DELSETELEM: 14,
} as const;

export const NFPROTO_IPV4 = 2;
export const NFPROTO_UNSPEC = 0;

/** One nf_tables request of a transaction; `what` names it in error messages. */
export interface NftMessage {
  /** NFT_MSG_* (the subsystem is added when framing) */
  msg: number;
  flags: number;
  attrs: Attr[];
  what: string;
}

/** nf_tables' u32 attributes are big-endian (NLA_BE32), unlike rtnetlink's. */
export function be32(type: number, v: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return { type, value: b };
}

function nfgenmsg(family: number, resId: number): Buffer {
  const b = Buffer.alloc(NFGENMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(0, 1); // NFNETLINK_V0
  b.writeUInt16BE(resId, 2);
  return b;
}

function frame(type: number, flags: number, seq: number, body: Buffer[]): Buffer {
  let len = NLMSG_HDRLEN;
  for (const b of body) len += b.length;
  const padded = (len + 3) & ~3;
  const out = Buffer.alloc(padded);
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq, 8);
  out.writeUInt32LE(0, 12); // port id: the kernel fills in ours
  let off = NLMSG_HDRLEN;
  for (const b of body) { b.copy(out, off); off += b.length; }
  return out;
}

export interface EncodedBatch {
  data: Buffer;
  /** seq of BATCH_BEGIN (the kernel answers a failed commit on it) */
  beginSeq: number;
  /** seq of the last request: it alone asks for an ACK, so its ACK marks the batch as done */
  lastSeq: number;
  /** request by seq, for naming a failure */
  bySeq: Map<number, NftMessage>;
}

/**
 * One transaction as one datagram. seq numbers start at `seq` (BATCH_BEGIN) and count up. Only the
 * last request asks for an ACK: errors come back for any failing request anyway, and the kernel
 * queues every answer before it returns from sendmsg.
 */
export function encodeBatch(msgs: readonly NftMessage[], seq: number, family = NFPROTO_IPV4, ackLast = true): EncodedBatch {
  const parts: Buffer[] = [];
  const bySeq = new Map<number, NftMessage>();
  const beginSeq = seq;
  parts.push(frame(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, [nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES)]));
  let lastSeq = beginSeq;
  msgs.forEach((m, i) => {
    const ack = ackLast && i === msgs.length - 1 ? NLM_F_ACK : 0;
    lastSeq = seq;
    bySeq.set(seq, m);
    parts.push(frame((NFNL_SUBSYS_NFTABLES << 8) | m.msg, NLM_F_REQUEST | m.flags | ack, seq++, [nfgenmsg(family, 0), encodeAttrs(m.attrs)]));
  });
  parts.push(frame(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, [nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES)]));
  return { data: Buffer.concat(parts), beginSeq, lastSeq, bySeq };
}
