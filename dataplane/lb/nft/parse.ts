// Reads our table back from `nft -j list table ip meshd_lb` into an LbState: frontends from the
// verdict maps, each checked for its fixed rule; backends and weights from the frontend's backend
// map (the weight from each element's comment, its range checked against the apportionment of
// slots.ts); draining backends from the drain set; source NAT from the snat maps. Anything that does not have the shape render.ts writes is reported, not
// guessed at: such a frontend is left out of the state (so plan() re-adds it) and its chain is
// listed as stale (so apply() removes it).
import { ANY_ADDR, frontendKey, type Frontend, type FrontendMatch, type LbState, type Proto } from '../model.js';
import { backendMapName, BASE_RULES, chainName, TABLE } from './render.js';
import { parseWeightComment, slotRanges, SLOTS } from './slots.js';
import { MAX_WEIGHT } from '../desired.js';

export interface NftObserved {
  /** the table exists with the base render.ts writes */
  base: boolean;
  tableExists: boolean;
  state: LbState;
  /** our chains not reachable from a map element, or not in the expected shape */
  staleChains: string[];
  /** backend maps of no frontend we could read */
  staleMaps: string[];
  /** map elements that point at a chain we could not read */
  staleElements: { map: string; key: string }[];
  /** drain set elements, as "key ip" */
  drainKeys: Set<string>;
  problems: string[];
}

type Json = unknown;
const isObj = (x: Json): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);

function protoOf(x: Json): Proto | 'any' | undefined {
  if (x === 'tcp' || x === 6) return 'tcp';
  if (x === 'udp' || x === 17) return 'udp';
  if (x === 'ip' || x === 0) return 'any';
  return undefined;
}

/** A map or set element's key as a list of parts (concat) or one part. */
const parts = (x: Json): Json[] => (isObj(x) && Array.isArray(x.concat) ? x.concat : [x]);

/** Checks a frontend chain's rule against render.ts's fixed rule; a problem, or undefined. */
function checkRule(expr: Json[], f: Frontend): string | undefined {
  const want = f.targetPort ? 2 : 1;
  if (expr.length !== want) return `${expr.length} expressions in its rule, not ${want}`;
  if (f.targetPort) {
    const m = isObj(expr[0]) ? expr[0].match : undefined;
    if (!isObj(m) || m.op !== '==' || !isObj(m.left) || !isObj(m.left.meta) || m.left.meta.key !== 'l4proto' || protoOf(m.right) !== f.match.proto) return 'no protocol match before a port rewrite';
  }
  const dnat = isObj(expr[want - 1]) ? (expr[want - 1] as Record<string, Json>).dnat : undefined;
  if (!isObj(dnat) || !isObj(dnat.addr) || !isObj(dnat.addr.map)) return 'no dnat map';
  // nft 1.0.6 lists `dnat ip addr . port to ... map @m` without the port part: a named map's data
  // type is not in the rule. The map's own data (checked with its elements) has it.
  if (Object.keys(dnat).some((k) => k !== 'addr' && k !== 'family') || (dnat.family !== undefined && dnat.family !== 'ip')) return 'dnat with other options';
  const { key, data } = dnat.addr.map;
  if (!isObj(key) || !isObj(key.numgen) || key.numgen.mode !== 'random' || key.numgen.mod !== SLOTS || (key.numgen.offset ?? 0) !== 0) return `not numgen random mod ${SLOTS}`;
  if (data !== `@${backendMapName(f)}`) return `dnat map ${String(data)}, not @${backendMapName(f)}`;
  return undefined;
}

/** Backends and weights from a frontend's backend map elements; a problem as a string. */
function parseBackendMap(elems: Json[], f: Frontend): Record<string, number> | string {
  const ranges: { ip: string; weight: number; start: number; end: number }[] = [];
  const backends: Record<string, number> = {};
  for (const el of elems) {
    if (!Array.isArray(el) || el.length !== 2) return 'bad element';
    const [k, v] = el as [Json, Json];
    const e = isObj(k) && isObj(k.elem) ? k.elem : undefined;
    const val = e?.val;
    let start: number;
    let end: number;
    if (typeof val === 'number') [start, end] = [val, val + 1];
    else if (isObj(val) && Array.isArray(val.range) && typeof val.range[0] === 'number' && typeof val.range[1] === 'number') [start, end] = [val.range[0], val.range[1] + 1];
    else return 'bad range';
    const weight = parseWeightComment(e?.comment);
    if (weight === undefined || weight > MAX_WEIGHT) return `no weight comment on slots ${start}-${end - 1}`;
    const [ip, port] = parts(v);
    if (typeof ip !== 'string') return 'bad address';
    const toPort = f.targetPort ? parts(v).length === 2 && port === f.targetPort : parts(v).length === 1;
    if (!toPort) return `backend ${ip}: not to ${f.targetPort ? `port ${f.targetPort}` : 'the packet\'s own port'}`;
    if (backends[ip] !== undefined) return `backend ${ip} has two ranges`;
    backends[ip] = weight;
    ranges.push({ ip, weight, start, end });
  }
  // The ranges must be exactly what the weights apportion, or the split is not what they say.
  const want = slotRanges(Object.keys(backends).sort().map((ip) => [ip, backends[ip]!] as const));
  ranges.sort((a, b) => a.start - b.start);
  if (JSON.stringify(ranges) !== JSON.stringify(want)) return 'slot ranges do not match their weights';
  return backends;
}

export function parseTable(json: string): NftObserved {
  const out: NftObserved = { base: false, tableExists: false, state: { frontends: {} }, staleChains: [], staleMaps: [], staleElements: [], drainKeys: new Set(), problems: [] };
  let doc: Json;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new Error(`nft -j output is not JSON: ${(e as Error).message}`);
  }
  const items = isObj(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const maps = new Map<string, Json[]>();
  const chains = new Set<string>();
  const rules = new Map<string, Json[][]>();
  for (const it of items) {
    if (!isObj(it)) continue;
    if (isObj(it.table) && it.table.name === TABLE) out.tableExists = true;
    const m = isObj(it.map) ? it.map : isObj(it.set) ? it.set : undefined;
    if (m && m.table === TABLE && typeof m.name === 'string') maps.set(m.name, Array.isArray(m.elem) ? m.elem : []);
    if (isObj(it.chain) && it.chain.table === TABLE && typeof it.chain.name === 'string') chains.add(it.chain.name);
    if (isObj(it.rule) && it.rule.table === TABLE && typeof it.rule.chain === 'string' && Array.isArray(it.rule.expr)) {
      const l = rules.get(it.rule.chain) ?? [];
      l.push(it.rule.expr);
      rules.set(it.rule.chain, l);
    }
  }
  if (!out.tableExists) return out;
  const baseMaps = ['fe_port', 'fe_all', 'fe_ingress', 'snat_tcp', 'snat_udp', 'drain'];
  out.base = baseMaps.every((m) => maps.has(m)) && chains.has('prerouting') && chains.has('postrouting') &&
    (rules.get('prerouting')?.length ?? 0) === BASE_RULES.prerouting && (rules.get('postrouting')?.length ?? 0) === BASE_RULES.postrouting;
  if (!out.base) out.problems.push('the table does not have the expected maps and base chains');

  const snat = new Map<string, string>();
  for (const p of ['tcp', 'udp'] as const) {
    for (const el of maps.get(`snat_${p}`) ?? []) {
      if (Array.isArray(el) && typeof el[0] === 'number' && typeof el[1] === 'string') snat.set(`${p} ${el[0]}`, el[1]);
    }
  }
  const drained = new Map<string, string[]>();
  for (const el of maps.get('drain') ?? []) {
    const [addr, proto, port, ip] = parts(el);
    const pr = protoOf(proto);
    if (typeof addr !== 'string' || pr === undefined || typeof port !== 'number' || typeof ip !== 'string') { out.problems.push('unreadable drain element'); continue; }
    const key = frontendKey({ addr, proto: pr, port });
    out.drainKeys.add(`${key} ${ip}`);
    drained.set(key, [...(drained.get(key) ?? []), ip]);
  }

  const used = new Set<string>();
  const usedMaps = new Set<string>();
  const readElement = (mapName: string, el: Json): void => {
    if (!Array.isArray(el) || el.length !== 2) return;
    const [k, v] = el as [Json, Json];
    const target = isObj(v) && isObj(v.goto) ? v.goto.target : undefined;
    let match: FrontendMatch | undefined;
    const ks = parts(k);
    if (mapName === 'fe_all' && typeof ks[0] === 'string') match = { addr: ks[0], proto: 'any', port: 0 };
    else if (mapName === 'fe_port' && typeof ks[0] === 'string' && typeof ks[2] === 'number') {
      const pr = protoOf(ks[1]);
      if (pr && pr !== 'any') match = { addr: ks[0], proto: pr, port: ks[2] };
    } else if (mapName === 'fe_ingress' && typeof ks[1] === 'number') {
      const pr = protoOf(ks[0]);
      if (pr && pr !== 'any') match = { addr: ANY_ADDR, proto: pr, port: ks[1] };
    }
    const keyText = ks.map(String).join(' . ');
    if (!match || typeof target !== 'string') { out.problems.push(`unreadable element in ${mapName}: ${keyText}`); out.staleElements.push({ map: mapName, key: keyText }); return; }
    const key = frontendKey(match);
    // The chain name carries the target port; it must be the name render.ts gives this frontend.
    const tp = Number(/_to_(\d+)$/.exec(target)?.[1] ?? NaN);
    const r = rules.get(target) ?? [];
    let f: Frontend | undefined;
    if (!chains.has(target) || !Number.isInteger(tp) || chainName({ match, targetPort: tp }) !== target) {
      out.problems.push(`frontend ${key}: chain ${target} is not ours`);
    } else {
      f = { match, targetPort: tp, backends: {} };
      const elems = maps.get(backendMapName(f));
      const problem = r.length !== 1 ? `${r.length} rules in chain ${target}, not 1` : checkRule(r[0]!, f) ?? (elems ? undefined : `no map ${backendMapName(f)}`);
      const backends = problem ?? parseBackendMap(elems!, f);
      if (typeof backends === 'string') {
        out.problems.push(`frontend ${key}: ${backends}`);
        f = undefined;
      } else f.backends = backends;
    }
    if (!f) { out.staleElements.push({ map: mapName, key: keyText }); return; }
    used.add(target);
    usedMaps.add(backendMapName(f));
    for (const ip of drained.get(key) ?? []) if (f.backends[ip] === undefined) f.backends[ip] = 0;
    const s = match.addr === ANY_ADDR ? snat.get(`${match.proto} ${match.port}`) : undefined;
    if (s !== undefined) f.snat = s;
    out.state.frontends[key] = f;
  };
  for (const m of ['fe_port', 'fe_all', 'fe_ingress']) for (const el of maps.get(m) ?? []) readElement(m, el);
  for (const c of chains) if (c !== 'prerouting' && c !== 'postrouting' && !used.has(c)) out.staleChains.push(c);
  for (const m of maps.keys()) if (m.startsWith('be_') && !usedMaps.has(m)) out.staleMaps.push(m);
  // Bookkeeping that belongs to no frontend we could read: stray, so the table needs a repair.
  for (const [k, addr] of snat) {
    const [proto, port] = k.split(' ');
    const f = out.state.frontends[`${ANY_ADDR} ${proto} ${port}`];
    if (f?.snat !== addr) out.problems.push(`stray source NAT element ${k}`);
  }
  for (const dk of out.drainKeys) {
    const i = dk.lastIndexOf(' ');
    if (out.state.frontends[dk.slice(0, i)]?.backends[dk.slice(i + 1)] !== 0) out.problems.push(`stray drain element ${dk}`);
  }
  if (out.staleChains.length) out.problems.push(`stale chains: ${out.staleChains.join(', ')}`);
  if (out.staleMaps.length) out.problems.push(`stale maps: ${out.staleMaps.join(', ')}`);
  return out;
}
