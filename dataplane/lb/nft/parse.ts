// Reads our table back from `nft -j list table ip meshd_lb` into an LbState: frontends from the
// verdict maps, weights from the DNAT map's ranges, draining backends from the drain set, source NAT
// from the snat maps. Anything that does not have the shape render.ts writes is reported, not
// guessed at: such a frontend is left out of the state (so plan() re-adds it) and its chain is
// listed as stale (so apply() removes it).
import { ANY_ADDR, frontendKey, type Frontend, type FrontendMatch, type LbState, type Proto } from '../model.js';
import { BASE_RULES, chainName, TABLE } from './render.js';

export interface NftObserved {
  /** the table exists with the base render.ts writes */
  base: boolean;
  tableExists: boolean;
  state: LbState;
  /** our chains not reachable from a map element, or not in the expected shape */
  staleChains: string[];
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

interface ParsedDnat {
  targetPort: number;
  backends: Record<string, number>;
}

/** Parses `dnat ... to numgen random mod W map { ranges : ip [. port] }`. */
function parseDnat(expr: Json[]): ParsedDnat | string {
  const dnat = expr.map((e) => (isObj(e) ? e.dnat : undefined)).find((d) => d !== undefined);
  if (!isObj(dnat) || !isObj(dnat.addr) || !isObj(dnat.addr.map)) return 'no dnat map';
  const map = dnat.addr.map;
  if (!isObj(map.key) || !isObj(map.key.numgen) || map.key.numgen.mode !== 'random') return 'not numgen random';
  const mod = map.key.numgen.mod;
  if (typeof mod !== 'number' || !isObj(map.data) || !Array.isArray(map.data.set)) return 'no element list';
  const backends: Record<string, number> = {};
  let targetPort: number | undefined;
  let covered = 0;
  for (const el of map.data.set) {
    if (!Array.isArray(el) || el.length !== 2) return 'bad element';
    const [k, v] = el as [Json, Json];
    let w: number;
    if (typeof k === 'number') w = 1;
    else if (isObj(k) && Array.isArray(k.range) && typeof k.range[0] === 'number' && typeof k.range[1] === 'number') w = k.range[1] - k.range[0] + 1;
    else return 'bad range';
    const [ip, port] = parts(v);
    if (typeof ip !== 'string') return 'bad address';
    const tp = typeof port === 'number' ? port : 0;
    if (targetPort !== undefined && tp !== targetPort) return 'mixed target ports';
    targetPort = tp;
    backends[ip] = (backends[ip] ?? 0) + w;
    covered += w;
  }
  if (covered !== mod) return `ranges cover ${covered} of mod ${mod}`;
  return { targetPort: targetPort ?? 0, backends };
}

export function parseTable(json: string): NftObserved {
  const out: NftObserved = { base: false, tableExists: false, state: { frontends: {} }, staleChains: [], staleElements: [], drainKeys: new Set(), problems: [] };
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
    if (!chains.has(target) || !Number.isInteger(tp) || chainName({ match, targetPort: tp }) !== target || r.length > 1) {
      out.problems.push(`frontend ${key}: chain ${target} is not ours or not in shape`);
    } else {
      f = { match, targetPort: tp, backends: {} };
      if (r.length === 1) {
        const d = parseDnat(r[0]!);
        if (typeof d === 'string' || d.targetPort !== tp) {
          out.problems.push(`frontend ${key}: ${typeof d === 'string' ? d : 'target port differs from its chain name'}`);
          f = undefined;
        } else f.backends = d.backends;
      }
    }
    if (!f) { out.staleElements.push({ map: mapName, key: keyText }); return; }
    used.add(target);
    for (const ip of drained.get(key) ?? []) if (f.backends[ip] === undefined) f.backends[ip] = 0;
    const s = match.addr === ANY_ADDR ? snat.get(`${match.proto} ${match.port}`) : undefined;
    if (s !== undefined) f.snat = s;
    out.state.frontends[key] = f;
  };
  for (const m of ['fe_port', 'fe_all', 'fe_ingress']) for (const el of maps.get(m) ?? []) readElement(m, el);
  for (const c of chains) if (c !== 'prerouting' && c !== 'postrouting' && !used.has(c)) out.staleChains.push(c);
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
  return out;
}
