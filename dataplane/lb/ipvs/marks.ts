// IPVS balances, but something must say which packets belong to which virtual service: as Swarm
// does, every frontend is an IPVS *fwmark* service, and a small nftables table marks packets by
// frontend (VIP with or without port, or published port on a local address) and source-NATs
// ingress connections by mark. fwmark services let one IPVS service cover every port of a VIP,
// which a (protocol, address, port) service cannot without persistence.
//
// A mark is (targetPort << 16) | index: the target port survives in the kernel even for a frontend
// with no destination, and index (1..65535) tells frontends with the same target port apart.
import { ANY_ADDR, PROTOS, frontendKey, type FrontendMatch, type Proto } from '../model.js';

export const MARK_TABLE = 'meshd_lbmark';
const T = `ip ${MARK_TABLE}`;

export const markOf = (targetPort: number, index: number): number => ((targetPort << 16) | index) >>> 0;
export const targetPortOf = (mark: number): number => mark >>> 16;
export const indexOf = (mark: number): number => mark & 0xffff;

export function renderMarkBase(): string[] {
  return [
    `add table ${T}`,
    `add map ${T} mark_port { type ipv4_addr . inet_proto . inet_service : mark; }`,
    `add map ${T} mark_all { type ipv4_addr : mark; }`,
    `add map ${T} mark_ingress { type inet_proto . inet_service : mark; }`,
    `add map ${T} snat_by_mark { type mark : ipv4_addr; }`,
    `add chain ${T} prerouting { type filter hook prerouting priority mangle; policy accept; }`,
    `add rule ${T} prerouting meta mark set ip daddr . meta l4proto . th dport map @mark_port`,
    `add rule ${T} prerouting meta mark 0 meta l4proto { tcp, udp } meta mark set ip daddr map @mark_all`,
    `add rule ${T} prerouting meta mark 0 fib daddr type local meta mark set meta l4proto . th dport map @mark_ingress`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add rule ${T} postrouting snat ip to meta mark map @snat_by_mark`,
  ];
}
export const MARK_BASE_RULES = { prerouting: 3, postrouting: 1 };

function element(m: FrontendMatch): { map: string; key: string } {
  if (m.addr === ANY_ADDR) return { map: 'mark_ingress', key: `${m.proto} . ${m.port}` };
  if (m.proto === 'any') return { map: 'mark_all', key: m.addr };
  return { map: 'mark_port', key: `${m.addr} . ${m.proto} . ${m.port}` };
}

export function renderMarkAdd(m: FrontendMatch, mark: number, snat?: string): string[] {
  const e = element(m);
  const out = [`add element ${T} ${e.map} { ${e.key} : 0x${mark.toString(16)} }`];
  if (snat !== undefined) out.push(`add element ${T} snat_by_mark { 0x${mark.toString(16)} : ${snat} }`);
  return out;
}

export function renderMarkDel(m: FrontendMatch, mark: number, snat?: string): string[] {
  const e = element(m);
  const out = [`delete element ${T} ${e.map} { ${e.key} }`];
  if (snat !== undefined) out.push(`delete element ${T} snat_by_mark { 0x${mark.toString(16)} }`);
  return out;
}

export interface MarksObserved {
  tableExists: boolean;
  base: boolean;
  /** frontend key -> mark */
  marks: Map<string, number>;
  /** mark -> SNAT address */
  snat: Map<number, string>;
  problems: string[];
}

type Json = unknown;
const isObj = (x: Json): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);
const parts = (x: Json): Json[] => (isObj(x) && Array.isArray(x.concat) ? x.concat : [x]);
const proto = (x: Json): Proto | undefined => (x === 'tcp' || x === 6 ? 'tcp' : x === 'udp' || x === 17 ? 'udp' : undefined);

export function parseMarks(json: string): MarksObserved {
  const out: MarksObserved = { tableExists: false, base: false, marks: new Map(), snat: new Map(), problems: [] };
  const doc = JSON.parse(json) as Json;
  const items = isObj(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const maps = new Map<string, Json[]>();
  const rules = new Map<string, number>();
  for (const it of items) {
    if (!isObj(it)) continue;
    if (isObj(it.table) && it.table.name === MARK_TABLE) out.tableExists = true;
    if (isObj(it.map) && it.map.table === MARK_TABLE && typeof it.map.name === 'string') maps.set(it.map.name, Array.isArray(it.map.elem) ? it.map.elem : []);
    if (isObj(it.rule) && it.rule.table === MARK_TABLE && typeof it.rule.chain === 'string') rules.set(it.rule.chain, (rules.get(it.rule.chain) ?? 0) + 1);
  }
  if (!out.tableExists) return out;
  out.base = ['mark_port', 'mark_all', 'mark_ingress', 'snat_by_mark'].every((m) => maps.has(m)) &&
    rules.get('prerouting') === MARK_BASE_RULES.prerouting && rules.get('postrouting') === MARK_BASE_RULES.postrouting;
  if (!out.base) out.problems.push('the mark table does not have the expected maps and chains');
  const add = (m: FrontendMatch | undefined, v: Json, raw: string): void => {
    if (!m || typeof v !== 'number') { out.problems.push(`unreadable mark element ${raw}`); return; }
    out.marks.set(frontendKey(m), v);
  };
  for (const el of maps.get('mark_all') ?? []) {
    const [k, v] = Array.isArray(el) ? el : [];
    add(typeof k === 'string' ? { addr: k, proto: 'any', port: 0 } : undefined, v, JSON.stringify(el));
  }
  for (const el of maps.get('mark_port') ?? []) {
    const [k, v] = Array.isArray(el) ? el : [];
    const [a, p, port] = parts(k);
    const pr = proto(p);
    add(typeof a === 'string' && pr && typeof port === 'number' ? { addr: a, proto: pr, port } : undefined, v, JSON.stringify(el));
  }
  for (const el of maps.get('mark_ingress') ?? []) {
    const [k, v] = Array.isArray(el) ? el : [];
    const [p, port] = parts(k);
    const pr = proto(p);
    add(pr && typeof port === 'number' ? { addr: ANY_ADDR, proto: pr, port } : undefined, v, JSON.stringify(el));
  }
  for (const el of maps.get('snat_by_mark') ?? []) {
    const [k, v] = Array.isArray(el) ? el : [];
    if (typeof k === 'number' && typeof v === 'string') out.snat.set(k, v);
    else out.problems.push(`unreadable snat element ${JSON.stringify(el)}`);
  }
  return out;
}

export { PROTOS };
