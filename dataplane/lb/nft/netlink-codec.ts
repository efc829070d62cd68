// Our table's frontend objects as nf_tables messages: the netlink form of renderChanges(), producing
// the same kernel objects `nft -f` makes from render.ts's text (same set flags, key types, user data,
// element comments and expressions, so `nft -j list` and parse.ts read either back the same way).
// The table's base (maps, hooked chains) stays in render.ts: it is written once, by nft.
//
// A frontend is a chain with one fixed rule and a named interval map (render.ts has the layout):
//   [meta l4proto P] numgen random mod 720720 -> byteorder hton -> lookup @be_X -> dnat
// Interval maps compare keys as big-endian bytes, hence the hton. Each live backend owns the slots
// [start, end) (slots.ts): a start element (key, backend, comment with the weight) and an end
// element (INTERVAL_END flag) at `end`, as nft sends them. A backend change is DELSETELEM without
// elements (flush the map) and NEWSETELEM with the new ranges; the rule is never touched, so the
// transaction holds no rule or set, and data (not verdict) elements make the kernel validate
// nothing at commit.
import { nest, str, type Attr } from '../../netlink/attrs.js';
import { ipToBytes } from '../../netlink/address.js';
import { ANY_ADDR, type Frontend, type FrontendMatch, type LbChange } from '../model.js';
import { slotRanges, SLOTS, weightComment } from './slots.js';
import { cmp, hton, lookup, meta, nat, numgen, NFTA_DATA_VALUE, NFTA_DATA_VERDICT, NFT_CMP_EQ, NFT_META_L4PROTO, NFT_NAT_DNAT, REG } from './expr.js';
import { be32, NFPROTO_IPV4, NFT_MSG, type NftMessage } from './nfnl.js';
import { backendMapName, chainName, liveBackends, TABLE } from './render.js';

const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;

const A = {
  CHAIN_TABLE: 1, CHAIN_NAME: 3,
  RULE_TABLE: 1, RULE_CHAIN: 2, RULE_EXPRESSIONS: 4,
  SET_TABLE: 1, SET_NAME: 2, SET_FLAGS: 3, SET_KEY_TYPE: 4, SET_KEY_LEN: 5, SET_DATA_TYPE: 6, SET_DATA_LEN: 7, SET_DESC: 9, SET_ID: 10, SET_USERDATA: 13,
  SET_DESC_SIZE: 1,
  LIST_TABLE: 1, LIST_SET: 2, LIST_ELEMENTS: 3, LIST_SET_ID: 4,
  ELEM: 1, ELEM_KEY: 1, ELEM_DATA: 2, ELEM_FLAGS: 3, ELEM_USERDATA: 6,
  VERDICT_CODE: 1, VERDICT_CHAIN: 2,
} as const;

export const NFT_SET = { ANONYMOUS: 0x1, CONSTANT: 0x2, INTERVAL: 0x4, MAP: 0x8 } as const;
const NFT_SET_ELEM_INTERVAL_END = 0x1;
const NFT_GOTO = -4;
/** nft's data type ids (src/datatype.h); a concatenation packs them 6 bits each */
export const DTYPE = { INTEGER: 4, IPADDR: 7, INET_PROTOCOL: 12, INET_SERVICE: 13 } as const;
const IPPROTO = { tcp: 6, udp: 17, any: 0 } as const;
/** Keeps a NEWSETELEM's element list under the 64 KiB limit of one attribute. */
const ELEMENTS_PER_MESSAGE = 512;

// ---- values ---------------------------------------------------------------------------------------

function ip4(ip: string): Buffer {
  const a = ipToBytes(ip);
  if (a.bytes.length !== 4) throw new TypeError(`"${ip}" is not an IPv4 address`);
  return a.bytes;
}

function port(p: number): Buffer {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new TypeError(`${p} is not a port number`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(p);
  return b;
}

/** A concatenation: each field padded to 4 bytes, as registers hold them. */
function concat(parts: Buffer[]): Buffer {
  const out = Buffer.alloc(parts.reduce((n, p) => n + ((p.length + 3) & ~3), 0));
  let off = 0;
  for (const p of parts) { p.copy(out, off); off += (p.length + 3) & ~3; }
  return out;
}

const protoByte = (p: FrontendMatch['proto']): Buffer => Buffer.from([IPPROTO[p]]);

const hostU32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const beU32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };

const value = (type: number, v: Buffer): Attr => nest(type, [{ type: NFTA_DATA_VALUE, value: v }]);
const gotoChain = (chain: string): Attr => nest(A.ELEM_DATA, [nest(NFTA_DATA_VERDICT, [be32(A.VERDICT_CODE, NFT_GOTO), str(A.VERDICT_CHAIN, chain)])]);

// ---- nftnl user data: what nft records for listing (type, length, value; u32 in host order) ------

const tlv = (type: number, v: Buffer): Buffer => Buffer.concat([Buffer.from([type, v.length]), v]);
const tlvU32 = (type: number, v: number): Buffer => tlv(type, hostU32(v));

/** A typeof expression: NFTNL_UDATA_SET_TYPEOF_EXPR (nft's expression type id), TYPEOF_DATA. */
const typeofExpr = (exprType: number, data: Buffer[]): Buffer => Buffer.concat([tlvU32(0, exprType), tlv(1, Buffer.concat(data))]);
/** nft's expression type ids (src/expression.h: enum expr_types) */
const EXPR = { PAYLOAD: 7, CONCAT: 13, NUMGEN: 23 } as const;
/** `numgen random mod SLOTS`: mode, modulus, offset */
const NUMGEN_TYPEOF = typeofExpr(EXPR.NUMGEN, [tlvU32(0, 1), tlvU32(1, SLOTS), tlvU32(2, 0)]);
/** payload expressions by nft's protocol description and field: ip daddr, th dport */
const payloadTypeof = (desc: number, field: number): Buffer => typeofExpr(EXPR.PAYLOAD, [tlvU32(0, desc), tlvU32(1, field)]);
const IP_DADDR = payloadTypeof(12, 12);
const TH_DPORT = payloadTypeof(11, 2);

/**
 * A backend map's user data, as nft 1.0.6 writes it for `typeof numgen random mod 720720 : ip daddr
 * [. th dport]`: KEYBYTEORDER (1: host), DATABYTEORDER (2: big endian; 0: a concatenation),
 * KEY_TYPEOF, DATA_TYPEOF, DATA_INTERVAL (0).
 */
function backendMapUserdata(withPort: boolean): Buffer {
  const data = withPort ? typeofExpr(EXPR.CONCAT, [tlv(0, IP_DADDR), tlv(1, TH_DPORT)]) : IP_DADDR;
  return Buffer.concat([tlvU32(0, 1), tlvU32(1, withPort ? 0 : 2), tlv(3, NUMGEN_TYPEOF), tlv(4, data), tlvU32(6, 0)]);
}

/** An element's comment (NFTNL_UDATA_SET_ELEM_COMMENT, NUL-terminated). */
const commentUserdata = (c: string): Buffer => tlv(0, Buffer.from(c + '\0'));

// ---- our maps' keys ----------------------------------------------------------------------------------

/** The verdict map that dispatches a frontend, and its key there (see render.ts mapElementKey). */
export function dispatchKey(m: FrontendMatch): { map: string; key: Buffer } {
  if (m.addr === ANY_ADDR) {
    if (m.proto === 'any') throw new TypeError('a published port needs a protocol');
    return { map: 'fe_ingress', key: concat([protoByte(m.proto), port(m.port)]) };
  }
  if (m.proto === 'any') return { map: 'fe_all', key: ip4(m.addr) };
  return { map: 'fe_port', key: concat([ip4(m.addr), protoByte(m.proto), port(m.port)]) };
}

export const drainKey = (m: FrontendMatch, ip: string): Buffer => concat([ip4(m.addr), protoByte(m.proto), port(m.port), ip4(ip)]);

// ---- messages ---------------------------------------------------------------------------------------

const tableAttr = (t: number): Attr => str(t, TABLE);

/** set: by name, or by transaction id alone (a set created earlier in the same transaction). */
function elementMessages(msg: number, set: string | { id: number }, elems: Attr[], what: string): NftMessage[] {
  const out: NftMessage[] = [];
  const setAttr = typeof set === 'string' ? str(A.LIST_SET, set) : be32(A.LIST_SET_ID, set.id);
  for (let i = 0; i < elems.length; i += ELEMENTS_PER_MESSAGE) {
    // Elements numbered from 1 within a message, as libnftnl does (the kernel ignores the type).
    const list = nest(A.LIST_ELEMENTS, elems.slice(i, i + ELEMENTS_PER_MESSAGE).map((e, j) => ({ type: j + 1, value: e.value })));
    out.push({ msg, flags: msg === NFT_MSG.NEWSETELEM ? NLM_F_CREATE : 0, attrs: [tableAttr(A.LIST_TABLE), setAttr, list], what });
  }
  return out;
}

const element = (key: Buffer, data?: Attr): Attr => nest(A.ELEM, data ? [value(A.ELEM_KEY, key), data] : [value(A.ELEM_KEY, key)]);

export function addElements(set: string, elems: { key: Buffer; data?: Attr }[], what: string): NftMessage[] {
  return elems.length ? elementMessages(NFT_MSG.NEWSETELEM, set, elems.map((e) => element(e.key, e.data)), what) : [];
}

export function delElements(set: string, keys: Buffer[], what: string): NftMessage[] {
  return keys.length ? elementMessages(NFT_MSG.DELSETELEM, set, keys.map((k) => element(k)), what) : [];
}

/** DELSETELEM without elements: every element of the set (nft puts the set name first). */
export const flushSet = (set: string): NftMessage => ({
  msg: NFT_MSG.DELSETELEM, flags: 0, attrs: [str(A.LIST_SET, set), tableAttr(A.LIST_TABLE)], what: `flush map ${set}`,
});

export const delSet = (set: string): NftMessage => ({
  msg: NFT_MSG.DELSET, flags: 0, attrs: [tableAttr(A.SET_TABLE), str(A.SET_NAME, set)], what: `delete map ${set}`,
});

export const addChain = (chain: string): NftMessage => ({
  msg: NFT_MSG.NEWCHAIN, flags: NLM_F_CREATE, attrs: [tableAttr(A.CHAIN_TABLE), str(A.CHAIN_NAME, chain)], what: `add chain ${chain}`,
});

export const delChain = (chain: string): NftMessage => ({
  msg: NFT_MSG.DELCHAIN, flags: 0, attrs: [tableAttr(A.CHAIN_TABLE), str(A.CHAIN_NAME, chain)], what: `delete chain ${chain}`,
});

/** DELRULE with no handle: every rule of the chain. */
export const flushChain = (chain: string): NftMessage => ({
  msg: NFT_MSG.DELRULE, flags: 0, attrs: [tableAttr(A.RULE_TABLE), str(A.RULE_CHAIN, chain)], what: `flush chain ${chain}`,
});

function checkFrontend(f: Frontend): void {
  for (const [ip, w] of Object.entries(f.backends)) {
    if (!Number.isInteger(w) || w < 0 || w > 0xffff) throw new TypeError(`frontend ${chainName(f)}: backend ${ip} has weight ${w} (0..65535)`);
  }
  if (f.targetPort !== 0 && f.match.proto === 'any') throw new TypeError(`frontend ${f.match.addr}: a target port needs a protocol`);
}

/** The frontend's backend map (NEWSET); setId (unique in the transaction) ties the rule's lookup to it. */
export function backendMapMessage(f: Frontend, setId: number): NftMessage {
  checkFrontend(f);
  const withPort = f.targetPort !== 0;
  return {
    msg: NFT_MSG.NEWSET, flags: NLM_F_CREATE, what: `add map ${backendMapName(f)}`,
    attrs: [
      tableAttr(A.SET_TABLE), str(A.SET_NAME, backendMapName(f)),
      be32(A.SET_FLAGS, NFT_SET.MAP | NFT_SET.INTERVAL),
      be32(A.SET_KEY_TYPE, DTYPE.INTEGER), be32(A.SET_KEY_LEN, 4),
      be32(A.SET_DATA_TYPE, withPort ? (DTYPE.IPADDR << 6) | DTYPE.INET_SERVICE : DTYPE.IPADDR), be32(A.SET_DATA_LEN, withPort ? 8 : 4),
      be32(A.SET_ID, setId),
      { type: A.SET_USERDATA, value: backendMapUserdata(withPort) },
    ],
  };
}

/** The frontend's fixed DNAT rule (NEWRULE), its lookup naming the map (and its setId, if new). */
export function dnatRuleMessage(f: Frontend, setId?: number): NftMessage {
  checkFrontend(f);
  const chain = chainName(f);
  const withPort = f.targetPort !== 0;
  const exprs: Attr[] = [];
  // A port rewrite needs the transport protocol known to the rule.
  if (withPort) exprs.push(meta(NFT_META_L4PROTO, REG.R1), cmp(REG.R1, NFT_CMP_EQ, protoByte(f.match.proto)));
  exprs.push(numgen(REG.R1, SLOTS), hton(REG.R1, REG.R1, 4, 4), lookup(REG.R1, backendMapName(f), setId, REG.R1));
  exprs.push(withPort ? nat(NFT_NAT_DNAT, NFPROTO_IPV4, REG.R1, REG.R32_01) : nat(NFT_NAT_DNAT, NFPROTO_IPV4, REG.R1));
  return { msg: NFT_MSG.NEWRULE, flags: NLM_F_CREATE | NLM_F_APPEND, what: `dnat rule of ${chain}`, attrs: [tableAttr(A.RULE_TABLE), str(A.RULE_CHAIN, chain), nest(A.RULE_EXPRESSIONS, exprs)] };
}

/** The backend map's elements (NEWSETELEM): each live backend's slot range; [] when none is live. */
export function backendElementMessages(f: Frontend, newMapId?: number): NftMessage[] {
  checkFrontend(f);
  const withPort = f.targetPort !== 0;
  const elems: Attr[] = [];
  for (const r of slotRanges(liveBackends(f))) {
    const data = value(A.ELEM_DATA, withPort ? concat([ip4(r.ip), port(f.targetPort)]) : ip4(r.ip));
    elems.push(nest(A.ELEM, [value(A.ELEM_KEY, beU32(r.start)), data, { type: A.ELEM_USERDATA, value: commentUserdata(weightComment(r.weight)) }]));
    elems.push(nest(A.ELEM, [be32(A.ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END), value(A.ELEM_KEY, beU32(r.end))]));
  }
  return elems.length ? elementMessages(NFT_MSG.NEWSETELEM, newMapId === undefined ? backendMapName(f) : { id: newMapId }, elems, `backends of ${chainName(f)}`) : [];
}

function snatKey(f: Frontend): { map: string; key: Buffer } | undefined {
  if (f.snat === undefined) return undefined;
  if (f.match.addr !== ANY_ADDR || f.match.proto === 'any') throw new TypeError(`frontend ${f.match.addr} ${f.match.port}: source NAT is only for published (ingress) ports`);
  return { map: `snat_${f.match.proto}`, key: port(f.match.port) };
}

const drainedOf = (f: Frontend): string[] => Object.keys(f.backends).filter((ip) => f.backends[ip] === 0).sort();

/**
 * Messages for changes (see plan.ts), in render.ts's order; one transaction. wasDrained tells which
 * backends the kernel holds in the drain set now (a change does not carry old weights).
 */
export function changeMessages(changes: readonly LbChange[], wasDrained: (key: string, ip: string) => boolean): NftMessage[] {
  const out: NftMessage[] = [];
  let setId = 0;
  for (const c of changes) {
    const f = c.frontend;
    const chain = chainName(f);
    const { map, key } = dispatchKey(f.match);
    const keyText = `${f.match.addr} ${f.match.proto} ${f.match.port}`;
    const drainWhat = (verb: string): string => `${verb} draining backends of ${keyText}`;
    switch (c.op) {
      case 'del-frontend': {
        out.push(...delElements(map, [key], `delete ${keyText} from ${map}`));
        const s = snatKey(f);
        if (s) out.push(...delElements(s.map, [s.key], `delete source NAT of ${keyText}`));
        out.push(...delElements('drain', drainedOf(f).map((ip) => drainKey(f.match, ip)), drainWhat('forget')));
        // The rule goes before its map: a map still referenced by a rule cannot be deleted.
        out.push(flushChain(chain), delChain(chain), delSet(backendMapName(f)));
        break;
      }
      case 'add-frontend': {
        const id = ++setId;
        // The new map's elements name it by transaction id alone: the kernel then finds it at the
        // end of the transaction's list of new sets instead of walking every set of the table by
        // name (a third of a 10,000-frontend sync). The rule's lookup must name it (and walks).
        out.push(addChain(chain), backendMapMessage(f, id), ...backendElementMessages(f, id), dnatRuleMessage(f, id));
        out.push(...addElements('drain', drainedOf(f).map((ip) => ({ key: drainKey(f.match, ip) })), drainWhat('record')));
        const s = snatKey(f);
        if (s) out.push(...addElements(s.map, [{ key: s.key, data: value(A.ELEM_DATA, ip4(f.snat!)) }], `source NAT of ${keyText}`));
        out.push(...addElements(map, [{ key, data: gotoChain(chain) }], `add ${keyText} to ${map}`));
        break;
      }
      case 'set-backends': {
        checkFrontend(f);
        // Draining bookkeeping follows each backend's move in or out of weight 0.
        const leave: string[] = [];
        const enter: string[] = [];
        for (const [ip, w] of Object.entries(c.added)) if (w === 0) enter.push(ip);
        for (const [ip, w] of Object.entries(c.reweighted)) {
          if (w === 0) { if (!wasDrained(c.key, ip)) enter.push(ip); } else if (wasDrained(c.key, ip)) leave.push(ip);
        }
        for (const ip of c.removed) if (wasDrained(c.key, ip)) leave.push(ip);
        out.push(...delElements('drain', leave.map((ip) => drainKey(f.match, ip)), drainWhat('forget')));
        // Every range moves when one backend comes or goes: empty the map and fill it again, in
        // the same transaction (packets see the old elements or the new, never none).
        out.push(flushSet(backendMapName(f)), ...backendElementMessages(f));
        out.push(...addElements('drain', enter.map((ip) => ({ key: drainKey(f.match, ip) })), drainWhat('record')));
        break;
      }
    }
  }
  return out;
}
