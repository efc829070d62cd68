// Desired load-balancing state: a pure function of (per-network VIP services, ingress ports), one
// LbState per namespace. Programmed per node and per network, never per task: the state grows with
// services x backends, not with the number of local containers.
//
// Bad input is refused with an error naming the service and the field, never silently dropped: a
// wrong VIP or port here would otherwise surface as a connection that quietly goes nowhere.
import { ANY_ADDR, frontendKey, type BackendSpec, type Frontend, type FrontendMatch, type LbInput, type LbState, type Proto } from './model.js';

export const MAX_WEIGHT = 65535;

export class LbInputError extends TypeError {
  override name = 'LbInputError';
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function checkIpv4(ip: unknown, what: string): string {
  if (typeof ip !== 'string' || !IPV4.test(ip)) throw new LbInputError(`${what}: "${String(ip)}" is not an IPv4 address (dotted quad)`);
  if (ip === ANY_ADDR || ip.startsWith('127.') || Number(ip.split('.')[0]) >= 224) throw new LbInputError(`${what}: ${ip} is not a unicast address`);
  return ip;
}

function checkPort(p: unknown, what: string): number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw new LbInputError(`${what}: ${String(p)} is not a port (1-65535)`);
  return p;
}

function checkProto(p: unknown, what: string): Proto {
  if (p !== 'tcp' && p !== 'udp') throw new LbInputError(`${what}: protocol "${String(p)}" is not tcp or udp`);
  return p;
}

function backendsOf(list: readonly BackendSpec[] | undefined, what: string): Record<string, number> {
  if (!Array.isArray(list)) throw new LbInputError(`${what}: backends must be a list`);
  const out: Record<string, number> = {};
  // Sorted, so the result (and what gets programmed) does not depend on input order.
  for (const b of [...list].sort((x, y) => (x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : 0))) {
    const ip = checkIpv4(b?.ip, `${what} backend`);
    const w = b.weight;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) throw new LbInputError(`${what} backend ${ip}: weight ${String(w)} is not an integer 0-${MAX_WEIGHT}`);
    if (out[ip] !== undefined) throw new LbInputError(`${what}: backend ${ip} is listed twice`);
    out[ip] = w;
  }
  return out;
}

function add(state: LbState, f: Frontend, what: string, owners: Map<string, string>): void {
  const key = frontendKey(f.match);
  const owner = owners.get(key);
  if (owner !== undefined) throw new LbInputError(`${what}: ${describeMatch(f.match)} is already taken by ${owner}`);
  owners.set(key, what);
  state.frontends[key] = f;
}

export function describeMatch(m: FrontendMatch): string {
  if (m.addr === ANY_ADDR) return `published port ${m.port}/${m.proto}`;
  return m.proto === 'any' ? `VIP ${m.addr}` : `VIP ${m.addr} port ${m.port}/${m.proto}`;
}

const NETNS_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The LB state of every namespace we program, by namespace name. */
export function desiredLb(input: LbInput): Map<string, LbState> {
  const out = new Map<string, LbState>();
  const nsState = (netns: unknown, what: string): LbState => {
    if (typeof netns !== 'string' || !NETNS_RE.test(netns)) throw new LbInputError(`${what}: "${String(netns)}" is not a namespace name`);
    if (out.has(netns)) throw new LbInputError(`${what}: namespace ${netns} is given twice`);
    const s: LbState = { frontends: {} };
    out.set(netns, s);
    return s;
  };
  for (const net of input.networks) {
    const state = nsState(net.netns, `network ${net.netns}`);
    const owners = new Map<string, string>();
    const vips = new Map<string, string>();
    for (const svc of net.services) {
      const what = `service ${svc.name ?? svc.vip}`;
      const vip = checkIpv4(svc.vip, `${what} VIP`);
      const other = vips.get(vip);
      if (other !== undefined) throw new LbInputError(`${what}: VIP ${vip} is already the VIP of ${other}`);
      vips.set(vip, what);
      const backends = backendsOf(svc.backends, what);
      if (!svc.ports || svc.ports.length === 0) {
        add(state, { match: { addr: vip, proto: 'any', port: 0 }, targetPort: 0, backends }, what, owners);
        continue;
      }
      for (const p of svc.ports) {
        const proto = checkProto(p.proto, what);
        const port = checkPort(p.port, `${what} port`);
        const targetPort = p.targetPort === undefined ? port : checkPort(p.targetPort, `${what} target port`);
        add(state, { match: { addr: vip, proto, port }, targetPort, backends: { ...backends } }, what, owners);
      }
    }
  }
  if (input.ingress) {
    const ing = input.ingress;
    const state = nsState(ing.netns, 'ingress');
    const snat = checkIpv4(ing.snatAddress, 'ingress SNAT address');
    const owners = new Map<string, string>();
    for (const p of ing.ports) {
      const proto = checkProto(p.proto, `ingress port ${String(p.publishedPort)}`);
      const port = checkPort(p.publishedPort, 'ingress published port');
      const what = p.name ? `ingress ${p.name}` : `ingress ${port}/${proto}`;
      const targetPort = checkPort(p.targetPort, `${what} target port`);
      add(state, { match: { addr: ANY_ADDR, proto, port }, targetPort, snat, backends: backendsOf(p.backends, what) }, what, owners);
    }
  }
  return out;
}

/** The local addresses the namespace must hold (see topology.ts): every VIP and SNAT source. */
export function localAddresses(state: LbState): string[] {
  const s = new Set<string>();
  for (const f of Object.values(state.frontends)) {
    if (f.match.addr !== ANY_ADDR) s.add(f.match.addr);
    if (f.snat !== undefined) s.add(f.snat);
  }
  return [...s].sort();
}
