// Deleting tracked connections over ctnetlink (linux/netfilter/nfnetlink_conntrack.h), on our own
// NETLINK_NETFILTER socket in the namespace: one dump of the namespace's IPv4 connections, matched
// here against every (frontend, backend) of the apply, then one datagram of deletions. What
// conntrack(8) -D does with conntrackFilter()'s arguments, without a process per change.
import { native, netnsPath } from '../../native/index.js';
import { decodeAttrs, encodeAttrs, nest, type Attr } from '../netlink/attrs.js';
import { parseError, parseMessages } from '../netlink/channel.js';
import { NETLINK_NETFILTER, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from '../netlink/constants.js';
import { NetlinkError } from '../netlink/errors.js';
import { ANY_ADDR, parseFrontendKey, type FrontendMatch } from './model.js';

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG = { NEW: 0, GET: 1, DELETE: 2 } as const;
const CTA = { TUPLE_ORIG: 1, TUPLE_REPLY: 2, ZONE: 18, ID: 12 } as const;
const CTA_TUPLE = { IP: 1, PROTO: 2 } as const;
const CTA_IP_V4 = { SRC: 1, DST: 2 } as const;
const CTA_PROTO = { NUM: 1, SRC_PORT: 2, DST_PORT: 3 } as const;
const AF_INET = 2;
const IPPROTO = { tcp: 6, udp: 17 } as const;
const ANSWER_TIMEOUT_MS = 10_000;

/** One tracked connection, as far as the filter needs it, with what names it for deletion. */
export interface TrackedConnection {
  proto: number;
  origDst: string;
  origDstPort: number;
  replySrc: string;
  /** CTA_TUPLE_ORIG, CTA_ZONE and CTA_ID as the kernel sent them */
  key: Attr[];
}

const ip4 = (b: Buffer | undefined): string => (b && b.length === 4 ? [...b].join('.') : '');

function tuple(b: Buffer | undefined): { src: string; dst: string; proto: number; dport: number } {
  const t = decodeAttrs(b ?? Buffer.alloc(0));
  const ip = decodeAttrs(t.get(CTA_TUPLE.IP) ?? Buffer.alloc(0));
  const pr = decodeAttrs(t.get(CTA_TUPLE.PROTO) ?? Buffer.alloc(0));
  const dport = pr.get(CTA_PROTO.DST_PORT);
  return { src: ip4(ip.get(CTA_IP_V4.SRC)), dst: ip4(ip.get(CTA_IP_V4.DST)), proto: pr.get(CTA_PROTO.NUM)?.readUInt8(0) ?? 0, dport: dport?.length === 2 ? dport.readUInt16BE(0) : 0 };
}

/** A dumped connection message's payload (after nfgenmsg) as a TrackedConnection. */
export function decodeConnection(attrs: Buffer): TrackedConnection | undefined {
  const a = decodeAttrs(attrs);
  const orig = a.get(CTA.TUPLE_ORIG);
  if (!orig) return undefined;
  const o = tuple(orig);
  const r = tuple(a.get(CTA.TUPLE_REPLY));
  // The original tuple's bytes go back as they came (nested attributes, hence the flag).
  const key: Attr[] = [nest(CTA.TUPLE_ORIG, rawChildren(orig))];
  for (const t of [CTA.ZONE, CTA.ID]) { const v = a.get(t); if (v) key.push({ type: t, value: v }); }
  return { proto: o.proto, origDst: o.dst, origDstPort: o.dport, replySrc: r.src, key };
}

/** Nested attributes kept byte for byte (children re-nested where the kernel nested them). */
function rawChildren(b: Buffer): Attr[] {
  const out: Attr[] = [];
  for (let off = 0; off + 4 <= b.length; ) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2);
    if (len < 4 || off + len > b.length) break;
    const v = b.subarray(off + 4, off + len);
    out.push((type & 0x8000) !== 0 ? nest(type & 0x3fff, rawChildren(v)) : { type: type & 0x3fff, value: v });
    off += (len + 3) & ~3;
  }
  return out;
}

/** conntrackFilter()'s match: the frontend's connections answered by the backend. */
export function matches(c: TrackedConnection, m: FrontendMatch, ip: string): boolean {
  if (c.replySrc !== ip) return false;
  if (m.proto !== 'any' && (c.proto !== IPPROTO[m.proto] || c.origDstPort !== m.port)) return false;
  return m.addr === ANY_ADDR || c.origDst === m.addr;
}

function message(type: number, flags: number, seq: number, attrs: Attr[]): Buffer {
  const body = encodeAttrs(attrs);
  const b = Buffer.alloc(16 + 4 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE((NFNL_SUBSYS_CTNETLINK << 8) | type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt8(AF_INET, 16); // nfgenmsg: family, version 0, res_id 0
  body.copy(b, 20);
  return b;
}

function fail(netns: string, what: string, errno: number): Error {
  return new Error(`conntrack ${what} in namespace ${netns} failed: ${new NetlinkError('', '', errno).code}`);
}

/** Deletes the tracked connections of each (frontend, backend); returns how many were deleted. */
export function deleteConnections(netns: string, targets: readonly { key: string; ip: string }[]): number {
  if (targets.length === 0) return 0;
  const wanted = targets.map((t) => ({ m: parseFrontendKey(t.key), ip: t.ip }));
  const fd = native.netlinkOpen(NETLINK_NETFILTER, netnsPath(netns), 4 << 20, 4 << 20);
  try {
    let seq = Math.floor(Math.random() * 0x3fffffff) + 1;
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    const recv = (): Buffer => {
      const d = native.netlinkRecv(fd, Math.max(1, deadline - Date.now()));
      if (d === null) throw fail(netns, 'dump', 110);
      return d;
    };
    // The dump: every IPv4 connection of the namespace.
    const dumpSeq = seq++;
    native.netlinkSend(fd, message(IPCTNL_MSG.GET, NLM_F_REQUEST | NLM_F_DUMP, dumpSeq, []));
    const doomed: TrackedConnection[] = [];
    for (let done = false; !done; ) {
      for (const m of parseMessages(recv())) {
        if (m.seq !== dumpSeq) continue;
        if (m.type === NLMSG_DONE) { done = true; break; }
        if (m.type === NLMSG_ERROR) { const e = parseError(m); if (e.errno) throw fail(netns, 'dump', e.errno); continue; }
        const c = decodeConnection(m.data.subarray(4));
        if (c && wanted.some((w) => matches(c, w.m, w.ip))) doomed.push(c);
      }
    }
    if (doomed.length === 0) return 0;
    // The deletions: each asks for an ACK; one already gone (ENOENT: it ended meanwhile) is fine.
    const first = seq;
    const msgs = doomed.map((c) => message(IPCTNL_MSG.DELETE, NLM_F_REQUEST | NLM_F_ACK, seq++, c.key));
    let deleted = 0;
    for (let i = 0; i < msgs.length; ) {
      // Datagrams of up to ~64 KiB; answers are read per datagram so the receive queue never fills.
      let size = 0;
      const part: Buffer[] = [];
      while (i < msgs.length && size < 64 << 10) { part.push(msgs[i]!); size += msgs[i]!.length; i++; }
      native.netlinkSend(fd, Buffer.concat(part));
      for (let acked = 0; acked < part.length; ) {
        for (const m of parseMessages(recv())) {
          if (m.type !== NLMSG_ERROR) continue;
          const e = parseError(m);
          if (e.seq < first || e.seq >= seq) continue;
          acked++;
          if (e.errno === 0) deleted++;
          else if (e.errno !== 2) throw fail(netns, 'delete', e.errno);
        }
      }
    }
    return deleted;
  } finally {
    native.close(fd);
  }
}
