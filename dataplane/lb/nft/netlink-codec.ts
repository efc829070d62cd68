// Our table's frontend objects as nf_tables messages: the netlink form of renderChanges(), producing
// the same kernel objects `nft -f` makes from render.ts's text (same set flags, key types, user data
// and expressions, so `nft -j list` and parse.ts read either back the same way). The table's base
// (maps, hooked chains) stays in render.ts: it is written once, by nft.
//
// A frontend chain holds one rule,
//   [meta l4proto P] dnat [ip addr . port] to numgen random mod W map { slot(s) : backend }
// whose map is anonymous, bound to the rule: flushing the chain (DELRULE without a handle) frees it.
// All weights 1: a plain map, one host-endian u32 slot per backend. Any weight above 1: an interval
// map, whose keys the kernel compares as bytes, so the rule turns the random number big-endian
// first (byteorder hton) and the backends own [start, next start) with one end element at W.
import { nest, str, type Attr } from '../../netlink/attrs.js';
import { ipToBytes } from '../../netlink/address.js';
import { ANY_ADDR, type Frontend, type FrontendMatch, type LbChange } from '../model.js';
import { cmp, hton, lookup, meta, nat, numgen, NFTA_DATA_VALUE, NFTA_DATA_VERDICT, NFT_CMP_EQ, NFT_META_L4PROTO, NFT_NAT_DNAT, REG } from './expr.js';
import { be32, NFPROTO_IPV4, NFT_MSG, type NftMessage } from './nfnl.js';
import { chainName, TABLE } from './render.js';

const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;

const A = {
  CHAIN_TABLE: 1, CHAIN_NAME: 3,
  RULE_TABLE: 1, RULE_CHAIN: 2, RULE_EXPRESSIONS: 4,
  SET_TABLE: 1, SET_NAME: 2, SET_FLAGS: 3, SET_KEY_TYPE: 4, SET_KEY_LEN: 5, SET_DATA_TYPE: 6, SET_DATA_LEN: 7, SET_DESC: 9, SET_ID: 10, SET_USERDATA: 13,
  SET_DESC_SIZE: 1,
  LIST_TABLE: 1, LIST_SET: 2, LIST_ELEMENTS: 3, LIST_SET_ID: 4,
  ELEM: 1, ELEM_KEY: 1, ELEM_DATA: 2, ELEM_FLAGS: 3,
  VERDICT_CODE: 1, VERDICT_CHAIN: 2,
} as const;

export const NFT_SET = { ANONYMOUS: 0x1, CONSTANT: 0x2, INTERVAL: 0x4, MAP: 0x8 } as const;
const NFT_SET_ELEM_INTERVAL_END = 0x1;
const NFT_GOTO = -4;
/** nft's data type ids (src/datatype.h); a concatenation packs them 6 bits each */
export const DTYPE = { INTEGER: 4, IPADDR: 7, INET_PROTOCOL: 12, INET_SERVICE: 13 } as const;
const IPPROTO = { tcp: 6, udp: 17, any: 0 } as const;
/** Anonymous set names: the kernel replaces %d with a free number. */
const ANON_MAP = '__map%d';
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

/** nftnl set user data (type, length, value): key/data byte order as nft records them for listing. */
function setUserdata(dataByteorder: number): Buffer {
  const tlv = (type: number, v: number): Buffer => Buffer.concat([Buffer.from([type, 4]), hostU32(v)]);
  // 0 = NFTNL_UDATA_SET_KEYBYTEORDER (1: host), 1 = DATABYTEORDER (2: big endian, 0: concatenation),
  // 6 = DATA_INTERVAL (0)
  return Buffer.concat([tlv(0, 1), tlv(1, dataByteorder), tlv(6, 0)]);
}

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

/** set undefined: found by setId alone (an anonymous set of the same transaction). */
function elementMessages(msg: number, set: string | undefined, setId: number | undefined, elems: Attr[], what: string): NftMessage[] {
  const out: NftMessage[] = [];
  for (let i = 0; i < elems.length; i += ELEMENTS_PER_MESSAGE) {
    const attrs: Attr[] = [tableAttr(A.LIST_TABLE)];
    if (set !== undefined) attrs.push(str(A.LIST_SET, set));
    if (setId !== undefined) attrs.push(be32(A.LIST_SET_ID, setId));
    // Elements numbered from 1 within a message, as libnftnl does (the kernel ignores the type).
    attrs.push(nest(A.LIST_ELEMENTS, elems.slice(i, i + ELEMENTS_PER_MESSAGE).map((e, j) => ({ type: j + 1, value: e.value }))));
    out.push({ msg, flags: msg === NFT_MSG.NEWSETELEM ? NLM_F_CREATE : 0, attrs, what });
  }
  return out;
}

const element = (key: Buffer, data?: Attr): Attr => nest(A.ELEM, data ? [value(A.ELEM_KEY, key), data] : [value(A.ELEM_KEY, key)]);

export function addElements(set: string, elems: { key: Buffer; data?: Attr }[], what: string): NftMessage[] {
  return elems.length ? elementMessages(NFT_MSG.NEWSETELEM, set, undefined, elems.map((e) => element(e.key, e.data)), what) : [];
}

export function delElements(set: string, keys: Buffer[], what: string): NftMessage[] {
  return keys.length ? elementMessages(NFT_MSG.DELSETELEM, set, undefined, keys.map((k) => element(k)), what) : [];
}

export const addChain = (chain: string): NftMessage => ({
  msg: NFT_MSG.NEWCHAIN, flags: NLM_F_CREATE, attrs: [tableAttr(A.CHAIN_TABLE), str(A.CHAIN_NAME, chain)], what: `add chain ${chain}`,
});

export const delChain = (chain: string): NftMessage => ({
  msg: NFT_MSG.DELCHAIN, flags: 0, attrs: [tableAttr(A.CHAIN_TABLE), str(A.CHAIN_NAME, chain)], what: `delete chain ${chain}`,
});

/** DELRULE with no handle: every rule of the chain (and the anonymous maps bound to them). */
export const flushChain = (chain: string): NftMessage => ({
  msg: NFT_MSG.DELRULE, flags: 0, attrs: [tableAttr(A.RULE_TABLE), str(A.RULE_CHAIN, chain)], what: `flush chain ${chain}`,
});

/** The live backends in slot order (sorted by address, as render.ts orders them). */
export function liveBackends(f: Frontend): [string, number][] {
  return Object.keys(f.backends).filter((ip) => f.backends[ip]! > 0).sort().map((ip) => [ip, f.backends[ip]!]);
}

/** How the anonymous maps of a transaction are named and found. */
export interface AnonMapNaming {
  /** a literal name per map (default: the kernel's "__map%d") */
  name?: (setId: number) => string;
  /**
   * Elements find their map by transaction id alone, without its name. The kernel finds a set by
   * name by walking every set of the table (10,000 at scale); by id it walks the transaction's own
   * list, which is short for a small change and long for a full sync.
   */
  elementsById?: boolean;
}

/**
 * The DNAT rule of a frontend's chain with its anonymous map (NEWSET, NEWSETELEM, NEWRULE), or []
 * when no backend takes new connections. setId must be unique within the transaction.
 */
export function dnatRuleMessages(f: Frontend, chain: string, setId: number, setName = ANON_MAP, elementsById = false): NftMessage[] {
  const live = liveBackends(f);
  if (live.length === 0) return [];
  for (const [ip, w] of live) if (!Number.isInteger(w) || w < 1 || w > 0xffff) throw new TypeError(`frontend ${chain}: backend ${ip} has weight ${w} (0..65535)`);
  const withPort = f.targetPort !== 0;
  if (withPort && f.match.proto === 'any') throw new TypeError(`frontend ${f.match.addr}: a target port needs a protocol`);
  const interval = live.some(([, w]) => w > 1);
  const dataOf = (ip: string): Attr => value(A.ELEM_DATA, withPort ? concat([ip4(ip), port(f.targetPort)]) : ip4(ip));
  const elems: Attr[] = [];
  let at = 0;
  for (const [ip, w] of live) {
    elems.push(nest(A.ELEM, [value(A.ELEM_KEY, interval ? beU32(at) : hostU32(at)), dataOf(ip)]));
    at += w;
  }
  if (interval) elems.push(nest(A.ELEM, [be32(A.ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END), value(A.ELEM_KEY, beU32(at))]));
  const what = `dnat rule of ${chain}`;
  const set: NftMessage = {
    msg: NFT_MSG.NEWSET, flags: NLM_F_CREATE, what: `anonymous map of ${chain}`,
    attrs: [
      tableAttr(A.SET_TABLE), str(A.SET_NAME, setName),
      be32(A.SET_FLAGS, NFT_SET.ANONYMOUS | NFT_SET.CONSTANT | NFT_SET.MAP | (interval ? NFT_SET.INTERVAL : 0)),
      be32(A.SET_KEY_TYPE, DTYPE.INTEGER), be32(A.SET_KEY_LEN, 4),
      be32(A.SET_DATA_TYPE, withPort ? (DTYPE.IPADDR << 6) | DTYPE.INET_SERVICE : DTYPE.IPADDR), be32(A.SET_DATA_LEN, withPort ? 8 : 4),
      be32(A.SET_ID, setId),
      nest(A.SET_DESC, [be32(A.SET_DESC_SIZE, interval ? 2 * live.length : live.length)]),
      { type: A.SET_USERDATA, value: setUserdata(withPort ? 0 : 2) },
    ],
  };
  const exprs: Attr[] = [];
  // A port rewrite needs the transport protocol known to the rule.
  if (withPort) exprs.push(meta(NFT_META_L4PROTO, REG.R1), cmp(REG.R1, NFT_CMP_EQ, protoByte(f.match.proto)));
  exprs.push(numgen(REG.R1, at));
  if (interval) exprs.push(hton(REG.R1, REG.R1, 4, 4));
  exprs.push(lookup(REG.R1, setName, setId, REG.R1));
  exprs.push(withPort ? nat(NFT_NAT_DNAT, NFPROTO_IPV4, REG.R1, REG.R32_01) : nat(NFT_NAT_DNAT, NFPROTO_IPV4, REG.R1));
  return [
    set,
    ...elementMessages(NFT_MSG.NEWSETELEM, elementsById ? undefined : setName, setId, elems, `backends of ${chain}`),
    { msg: NFT_MSG.NEWRULE, flags: NLM_F_CREATE | NLM_F_APPEND, what, attrs: [tableAttr(A.RULE_TABLE), str(A.RULE_CHAIN, chain), nest(A.RULE_EXPRESSIONS, exprs)] },
  ];
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
export function changeMessages(changes: readonly LbChange[], wasDrained: (key: string, ip: string) => boolean, naming: AnonMapNaming = {}): NftMessage[] {
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
        out.push(flushChain(chain), delChain(chain));
        break;
      }
      case 'add-frontend': {
        out.push(addChain(chain), ...dnatRuleMessages(f, chain, ++setId, naming.name?.(setId), naming.elementsById));
        out.push(...addElements('drain', drainedOf(f).map((ip) => ({ key: drainKey(f.match, ip) })), drainWhat('record')));
        const s = snatKey(f);
        if (s) out.push(...addElements(s.map, [{ key: s.key, data: value(A.ELEM_DATA, ip4(f.snat!)) }], `source NAT of ${keyText}`));
        out.push(...addElements(map, [{ key, data: gotoChain(chain) }], `add ${keyText} to ${map}`));
        break;
      }
      case 'set-backends': {
        // Draining bookkeeping follows each backend's move in or out of weight 0.
        const leave: string[] = [];
        const enter: string[] = [];
        for (const [ip, w] of Object.entries(c.added)) if (w === 0) enter.push(ip);
        for (const [ip, w] of Object.entries(c.reweighted)) {
          if (w === 0) { if (!wasDrained(c.key, ip)) enter.push(ip); } else if (wasDrained(c.key, ip)) leave.push(ip);
        }
        for (const ip of c.removed) if (wasDrained(c.key, ip)) leave.push(ip);
        out.push(...delElements('drain', leave.map((ip) => drainKey(f.match, ip)), drainWhat('forget')));
        out.push(flushChain(chain), ...dnatRuleMessages(f, chain, ++setId, naming.name?.(setId), naming.elementsById));
        out.push(...addElements('drain', enter.map((ip) => ({ key: drainKey(f.match, ip) })), drainWhat('record')));
        break;
      }
    }
  }
  return out;
}
