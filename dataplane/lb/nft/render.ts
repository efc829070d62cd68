// nftables text for our table, as kube-proxy's nftables mode shapes it: base chains dispatch through
// verdict maps keyed by the frontend; each frontend has a chain with one fixed numgen DNAT rule and
// a named interval map of its backends. The rule never changes while the frontend exists: a backend
// change rewrites that frontend's map elements only (no rule, no set created, and, the map holding
// data rather than verdicts, no validation of the table at commit). The text is for `nft -f -`
// (the table's base, a repair); netlink-codec.ts sends the same objects for changes.
//
//   table ip meshd_lb
//     map fe_port    ipv4_addr . inet_proto . inet_service : verdict   VIP with declared ports
//     map fe_all     ipv4_addr : verdict                               VIP, every tcp/udp port
//     map fe_ingress inet_proto . inet_service : verdict               published port, local address
//     map snat_tcp, snat_udp  inet_service : ipv4_addr                 ingress source NAT by port
//     set drain      ipv4_addr . inet_proto . inet_service . ipv4_addr draining backends (weight 0):
//                    they hold no place in the DNAT map, so the set is where the kernel remembers them
//     chain prerouting (nat, dstnat)   ip daddr . l4proto . dport vmap @fe_port; tcp/udp ip daddr vmap
//                                      @fe_all; fib daddr local: l4proto . dport vmap @fe_ingress
//     chain postrouting (nat, srcnat)  ct status dnat: snat to ct original proto-dst map @snat_<proto>
//     map be_<addr>_<proto>_<port>_to_<targetPort>
//                                      typeof numgen random mod 720720 : ip daddr [. th dport],
//                                      flags interval; elements { 0-360359 comment "weight 1" :
//                                      10.0.1.3 . 8080, 360360-720719 comment "weight 1" : ... }
//     chain fe_<addr>_<proto>_<port>_to_<targetPort>
//                                      [meta l4proto P] dnat ip [addr . port] to numgen random mod
//                                      720720 map @be_<same>
//
// Each live backend owns a range of the 720720 slots in proportion to its weight (slots.ts), and
// its element's comment keeps the weight itself, which the ranges alone do not tell (2:2 and 1:1
// split the same way): observe reads weights back exactly and checks the ranges against them.
//
// A frontend with no live backend has an empty map: the lookup misses, the rule stops there, the
// packet stays addressed to a local address and the sandbox itself refuses it (TCP reset, ICMP
// port unreachable), which is what a client should see for a service with no running task.
import { ANY_ADDR, PROTOS, type Frontend, type FrontendMatch, type LbChange } from '../model.js';
import { slotRanges, SLOTS, weightComment } from './slots.js';

export const TABLE = 'meshd_lb';
const T = `ip ${TABLE}`;

const frontendSuffix = (f: Pick<Frontend, 'match' | 'targetPort'>): string => `${f.match.addr}_${f.match.proto}_${f.match.port}_to_${f.targetPort}`;

/** The frontend's chain (at most 37 bytes: names may have 255). */
export const chainName = (f: Pick<Frontend, 'match' | 'targetPort'>): string => `fe_${frontendSuffix(f)}`;

/** The frontend's backend map, named like its chain. */
export const backendMapName = (f: Pick<Frontend, 'match' | 'targetPort'>): string => `be_${frontendSuffix(f)}`;

/** The base of the table: maps, sets and hooked chains. Our only table-wide objects. */
export function renderBase(): string[] {
  return [
    `add table ${T}`,
    `add map ${T} fe_port { type ipv4_addr . inet_proto . inet_service : verdict; }`,
    `add map ${T} fe_all { type ipv4_addr : verdict; }`,
    `add map ${T} fe_ingress { type inet_proto . inet_service : verdict; }`,
    ...PROTOS.map((p) => `add map ${T} snat_${p} { type inet_service : ipv4_addr; }`),
    `add set ${T} drain { type ipv4_addr . inet_proto . inet_service . ipv4_addr; }`,
    `add chain ${T} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add rule ${T} prerouting ip daddr . meta l4proto . th dport vmap @fe_port`,
    `add rule ${T} prerouting meta l4proto { tcp, udp } ip daddr vmap @fe_all`,
    `add rule ${T} prerouting fib daddr type local meta l4proto . th dport vmap @fe_ingress`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    ...PROTOS.map((p) => `add rule ${T} postrouting meta l4proto ${p} ct status dnat snat ip to ct original proto-dst map @snat_${p}`),
  ];
}

/** The number of rules renderBase puts in each hooked chain: what observe checks the base against. */
export const BASE_RULES = { prerouting: 3, postrouting: PROTOS.length };

const protoNum = (p: FrontendMatch['proto']): string => (p === 'any' ? '0' : p);

function mapElementKey(m: FrontendMatch): { map: string; key: string } {
  if (m.addr === ANY_ADDR) return { map: 'fe_ingress', key: `${m.proto} . ${m.port}` };
  if (m.proto === 'any') return { map: 'fe_all', key: m.addr };
  return { map: 'fe_port', key: `${m.addr} . ${m.proto} . ${m.port}` };
}

const drainKey = (m: FrontendMatch, ip: string): string => `${m.addr} . ${protoNum(m.proto)} . ${m.port} . ${ip}`;

/** The live backends in address order, the order of their slot ranges. */
export function liveBackends(f: Frontend): [string, number][] {
  return Object.keys(f.backends).filter((ip) => f.backends[ip]! > 0).sort().map((ip) => [ip, f.backends[ip]!]);
}

function checkPortRewrite(f: Frontend): void {
  // A port rewrite needs the transport protocol known to the rule.
  if (f.targetPort && f.match.proto === 'any') throw new TypeError(`frontend ${f.match.addr}: a target port needs a protocol`);
}

/** The frontend's backend map: its type (nft's typeof) and flags. */
export function backendMapSpec(f: Frontend): string {
  checkPortRewrite(f);
  return `{ typeof numgen random mod ${SLOTS} : ip daddr${f.targetPort ? ' . th dport' : ''}; flags interval; }`;
}

/** The fixed DNAT rule of a frontend's chain: the same for as long as the frontend exists. */
export function dnatRule(f: Frontend): string {
  checkPortRewrite(f);
  const parts: string[] = [];
  if (f.targetPort) parts.push(`meta l4proto ${f.match.proto}`);
  parts.push(f.targetPort ? 'dnat ip addr . port to' : 'dnat ip to', `numgen random mod ${SLOTS} map @${backendMapName(f)}`);
  return parts.join(' ');
}

/** The backend map's elements (ranges : backend, with the weight as comment); [] with no live backend. */
export function backendElements(f: Frontend): string[] {
  checkPortRewrite(f);
  return slotRanges(liveBackends(f)).map((r) => {
    const range = r.end - r.start === 1 ? `${r.start}` : `${r.start}-${r.end - 1}`;
    return `${range} comment "${weightComment(r.weight)}" : ${f.targetPort ? `${r.ip} . ${f.targetPort}` : r.ip}`;
  });
}

function elementLines(f: Frontend): string[] {
  const els = backendElements(f);
  return els.length ? [`add element ${T} ${backendMapName(f)} { ${els.join(', ')} }`] : [];
}

function drainLines(verb: 'add' | 'delete', m: FrontendMatch, ips: string[]): string[] {
  return ips.length ? [`${verb} element ${T} drain { ${ips.map((ip) => drainKey(m, ip)).join(', ')} }`] : [];
}

function snatLine(verb: 'add' | 'delete', f: Frontend): string[] {
  if (f.snat === undefined) return [];
  if (f.match.addr !== ANY_ADDR || f.match.proto === 'any') throw new TypeError(`frontend ${f.match.addr} ${f.match.port}: source NAT is only for published (ingress) ports`);
  return [verb === 'add' ? `add element ${T} snat_${f.match.proto} { ${f.match.port} : ${f.snat} }` : `delete element ${T} snat_${f.match.proto} { ${f.match.port} }`];
}

const drained = (f: Frontend): string[] => Object.keys(f.backends).filter((ip) => f.backends[ip] === 0).sort();

/** nft commands for changes (see plan.ts); the whole list goes in one transaction. */
export function renderChanges(changes: readonly LbChange[]): string[] {
  const out: string[] = [];
  for (const c of changes) {
    const f = c.frontend;
    const chain = chainName(f);
    const beMap = backendMapName(f);
    const { map, key } = mapElementKey(f.match);
    switch (c.op) {
      case 'del-frontend':
        // The rule goes before its map: a map still referenced by a rule cannot be deleted.
        out.push(`delete element ${T} ${map} { ${key} }`, ...snatLine('delete', f), ...drainLines('delete', f.match, drained(f)));
        out.push(`flush chain ${T} ${chain}`, `delete chain ${T} ${chain}`, `delete map ${T} ${beMap}`);
        break;
      case 'add-frontend':
        out.push(`add chain ${T} ${chain}`, `add map ${T} ${beMap} ${backendMapSpec(f)}`, ...elementLines(f));
        out.push(`add rule ${T} ${chain} ${dnatRule(f)}`, ...drainLines('add', f.match, drained(f)));
        out.push(...snatLine('add', f), `add element ${T} ${map} { ${key} : goto ${chain} }`);
        break;
      case 'set-backends': {
        // Draining bookkeeping follows each backend's move in or out of weight 0.
        const leaveDrain: string[] = [];
        const enterDrain: string[] = [];
        for (const [ip, w] of Object.entries(c.added)) if (w === 0) enterDrain.push(ip);
        for (const [ip, w] of Object.entries(c.reweighted)) (w === 0 ? enterDrain : leaveDrain).push(ip);
        out.push(...drainLines('delete', f.match, leaveDrain));
        // Every range moves when one backend comes or goes: the map is emptied and filled again,
        // in the same transaction (packets see the old elements or the new, never none).
        out.push(`flush map ${T} ${beMap}`, ...elementLines(f));
        out.push(...drainLines('add', f.match, enterDrain));
        break;
      }
    }
  }
  return out;
}

/**
 * A removed backend that was draining leaves the drain set too. plan() lists it under `removed`
 * without its old weight, so the caller passes the observed state's drained set to resolve it.
 */
export function renderRemovedDrains(changes: readonly LbChange[], wasDrained: (key: string, ip: string) => boolean): string[] {
  const out: string[] = [];
  for (const c of changes) {
    if (c.op !== 'set-backends') continue;
    const gone = c.removed.filter((ip) => wasDrained(c.key, ip));
    out.push(...drainLines('delete', c.frontend.match, gone));
  }
  return out;
}

/** Everything of a state from scratch (after the base): a rebuild or a first sync. */
export function renderFull(frontends: readonly Frontend[]): string[] {
  return renderChanges(frontends.map((f) => ({ op: 'add-frontend' as const, key: '', frontend: f })));
}
