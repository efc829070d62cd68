// Cluster-wide ownership of ingress-mode published ports: every node listens on them, so a port and
// protocol belong to one service. Ownership is recorded on the service (endpointPorts) so that it is
// stable: a service keeps a port it holds while its spec still publishes it; a newcomer asking for a
// held port gets an error naming the owner. Host-mode ports are the scheduler's (one task per port per
// node), but they may not take a port some service publishes in ingress mode on every node.
import type { PortConfig } from '../store/objects.js';
import type { AllocationError, AllocatorConfig, AllocService } from './types.js';

const key = (p: { published: number; protocol: string }): string => `${p.published}/${p.protocol}`;

export interface PortPass {
  /** service id -> the ingress ports it owns after this pass, in spec order */
  owned: Map<string, PortConfig[]>;
  errors: AllocationError[];
}

/** services: sorted by id. */
export function allocatePorts(services: readonly AllocService[], config: AllocatorConfig): PortPass {
  const owner = new Map<string, AllocService>();
  const errors: AllocationError[] = [];
  const out: PortPass = { owned: new Map(), errors };
  const err = (s: AllocService, message: string): void => void errors.push({ kind: 'service', id: s.id, field: 'endpoint.ports', message });
  const wanted = (s: AllocService): PortConfig[] => s.spec.endpoint.ports.filter((p) => p.mode === 'ingress');

  // 1. existing claims the spec still wants (a dynamic port is kept if a published-0 port of the same
  //    target and protocol still asks for one)
  const kept = new Map<string, Set<string>>();
  for (const s of services) {
    const want = wanted(s);
    const k = new Set<string>();
    for (const p of s.endpointPorts ?? []) {
      const still = want.some((w) => w.protocol === p.protocol && (w.published === p.published || (w.published === 0 && w.target === p.target)));
      if (!still || owner.has(key(p))) continue; // a duplicate claim (corrupt store): the first by id keeps it
      owner.set(key(p), s);
      k.add(key(p));
    }
    kept.set(s.id, k);
  }
  // 2. new claims, in service id order: fixed ports first, so that a dynamic port never takes a port
  //    some service asked for by number in the same pass
  const res = new Map<string, (PortConfig | undefined)[]>(); // per service, in spec order
  const seen = new Map<string, Set<string>>();
  const claim = (s: AllocService, p: PortConfig): boolean => {
    const k = key(p);
    const mine = seen.get(s.id)!;
    if (mine.has(k)) {
      err(s, `port ${k} is published twice by this service`);
      return false;
    }
    const o = owner.get(k);
    if (o && o.id !== s.id) {
      err(s, `port ${k} is already published by service "${o.spec.name}" (${o.id})`);
      return false;
    }
    owner.set(k, s);
    mine.add(k);
    return true;
  };
  for (const s of services) {
    seen.set(s.id, new Set());
    res.set(s.id, wanted(s).map((w) => (w.published !== 0 && claim(s, w) ? w : undefined)));
  }
  let dyn = config.dynamicPorts.first;
  for (const s of services) {
    const mine = kept.get(s.id)!;
    const list = res.get(s.id)!;
    wanted(s).forEach((w, i) => {
      if (w.published !== 0) return;
      // the dynamic port this service already holds for this target, if any
      const prev = (s.endpointPorts ?? []).find((e) => e.protocol === w.protocol && e.target === w.target && mine.has(key(e)) && !seen.get(s.id)!.has(key(e)) && !wanted(s).some((x) => x.published === e.published && x.protocol === e.protocol));
      if (prev) {
        if (claim(s, { ...w, published: prev.published })) list[i] = { ...w, published: prev.published };
        return;
      }
      while (dyn <= config.dynamicPorts.last && (owner.has(`${dyn}/tcp`) || owner.has(`${dyn}/udp`))) dyn++;
      if (dyn > config.dynamicPorts.last) {
        err(s, `no free port left in the dynamic range ${config.dynamicPorts.first}-${config.dynamicPorts.last} for target ${w.target}/${w.protocol}`);
        return;
      }
      const p = { ...w, published: dyn };
      if (claim(s, p)) list[i] = p;
    });
    out.owned.set(s.id, list.filter((p): p is PortConfig => p !== undefined));
  }
  // 3. host-mode ports may not shadow an ingress port
  for (const s of services) {
    for (const p of s.spec.endpoint.ports) {
      if (p.mode !== 'host') continue;
      const o = owner.get(key(p));
      if (o) err(s, `host-mode port ${key(p)} is published in ingress mode on every node by service "${o.spec.name}" (${o.id})`);
    }
  }
  return out;
}

/**
 * For the API, before proposing a service create/update: the errors the next pass would report for
 * this spec's ports, given the other services. Refusing here is what the user sees.
 */
export function checkPorts(candidate: AllocService, services: readonly AllocService[], config: AllocatorConfig): AllocationError[] {
  // the candidate goes last so that existing owners win whatever the ids
  const others = services.filter((s) => s.id !== candidate.id).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const r = allocatePorts([...others, candidate], config);
  return r.errors.filter((e) => e.id === candidate.id);
}
