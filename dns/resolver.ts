// The resolver: a pure function of (table snapshot, the asker's networks, query bytes). It answers
// cluster names itself and tells the caller to forward everything else; it never does I/O, so a dead
// upstream cannot slow down a cluster name.
//
// Rules:
// - A name is looked up on the asker's networks in the asker's order; the first network that knows it
//   answers (a task on two networks gets addresses it can reach, deterministically).
// - A/AAAA/ANY answer the addresses of that family; any other type, or a family the name lacks, is
//   NODATA (NOERROR, no answer), answered here: forwarding AAAA for a cluster name (as Docker does)
//   leaks it and costs a timeout when upstream is dead.
// - Unknown single-label names are NXDOMAIN: no public name is a bare label, so only the cluster can
//   own them (except apex queries NS/SOA/DS/DNSKEY, which only make sense for TLDs: forwarded).
//   Unknown multi-label names are forwarded: "api.github.com" must work even with a service "api".
// - PTR for task IPs and VIPs on the asker's networks; an unknown address inside one of those networks'
//   subnets is NXDOMAIN (no upstream knows overlay addresses, and asking would leak them).
import type { Snapshot, NetworkView, RecordSet } from './snapshot.js';
import { reverseBytes } from './names.js';
import {
  buildResponse, CLASS_ANY, CLASS_IN, failureResponse, parseQuery, RCODE, TCP_MAX_MESSAGE, TYPE, udpLimit,
  type ParsedQuery,
} from './wire.js';

export type Transport = 'udp' | 'tcp';

export interface ResolveContext {
  transport: Transport;
  /** Where a multi-address answer starts: the server passes a counter, so answers rotate. */
  rotation: number;
}

export type Resolution =
  | { kind: 'answer'; bytes: Buffer; rcode: number; nodata: boolean; truncated: boolean }
  | { kind: 'forward'; query: ParsedQuery }
  | { kind: 'drop'; reason: 'short' | 'response' };

const APEX_TYPES = new Set<number>([TYPE.NS, TYPE.SOA, TYPE.DS, TYPE.DNSKEY]);

function answer(q: ParsedQuery, ctx: ResolveContext, rcode: number, records: readonly Buffer[]): Resolution {
  const limit = ctx.transport === 'tcp' ? TCP_MAX_MESSAGE : udpLimit(q.edns);
  const start = records.length > 1 ? ctx.rotation % records.length : 0;
  const { bytes, truncated } = buildResponse(
    { id: q.id, opcode: q.opcode, rd: q.rd, cd: q.cd, rcode, aa: true, question: q.question, edns: q.edns },
    records, limit, start, ctx.transport === 'udp',
  );
  return { kind: 'answer', bytes, rcode, nodata: rcode === RCODE.NOERROR && records.length === 0, truncated };
}

function recordsFor(rs: RecordSet, qtype: number): readonly Buffer[] {
  if (qtype === TYPE.A) return rs.a;
  if (qtype === TYPE.AAAA) return rs.aaaa;
  if (qtype === TYPE.ANY) return rs.a.length && rs.aaaa.length ? [...rs.a, ...rs.aaaa] : rs.a.length ? rs.a : rs.aaaa;
  return [];
}

function inSubnet(v: NetworkView, r: { v6: boolean; bytes: number[] }): boolean {
  for (const s of v.subnets) {
    if (s.v6 !== r.v6) continue;
    let bits = s.prefix;
    let ok = true;
    for (let i = 0; bits > 0 && ok; i++, bits -= 8) {
      const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      ok = ((r.bytes[i]! ^ s.bytes[i]!) & mask) === 0;
    }
    if (ok) return true;
  }
  return false;
}

function resolveReverse(q: ParsedQuery, views: readonly NetworkView[], ctx: ResolveContext): Resolution | null {
  for (const v of views) {
    const rr = v.ptr.get(q.name);
    if (rr) return answer(q, ctx, RCODE.NOERROR, q.qtype === TYPE.PTR || q.qtype === TYPE.ANY ? [rr] : []);
  }
  const r = reverseBytes(q.name);
  if (!r || r.bytes.length !== (r.v6 ? 16 : 4)) return null;
  for (const v of views) if (inSubnet(v, r)) return answer(q, ctx, RCODE.NXDOMAIN, []);
  return null;
}

/** Answers a query from the snapshot, or says to forward it (or to drop it). Never throws on input. */
export function resolve(snap: Snapshot, asker: readonly string[], msg: Uint8Array, ctx: ResolveContext): Resolution {
  const p = parseQuery(msg);
  if (p.kind === 'drop') return p;
  if (p.kind === 'error') {
    const bytes = failureResponse(p);
    return { kind: 'answer', bytes, rcode: p.rcode, nodata: false, truncated: false };
  }
  const q = p.query;
  // Other classes (CHAOS version.bind, ...) are nothing the cluster defines.
  if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return { kind: 'forward', query: q };
  const views: NetworkView[] = [];
  for (const id of asker) {
    const v = snap.networks.get(id);
    if (v) views.push(v);
  }
  if (q.name.endsWith('.arpa')) {
    const r = resolveReverse(q, views, ctx);
    if (r) return r;
  }
  for (const v of views) {
    const rs = v.names.get(q.name);
    if (rs) return answer(q, ctx, RCODE.NOERROR, recordsFor(rs, q.qtype));
  }
  if (q.name !== '' && !q.name.includes('.') && !APEX_TYPES.has(q.qtype)) return answer(q, ctx, RCODE.NXDOMAIN, []);
  return { kind: 'forward', query: q };
}
