// The network half of a pass: every network gets a VNI, a subnet and a gateway once, and keeps them.
// Order matters for determinism and fairness: networks already allocated are reserved first (they never
// move), then networks with an explicit subnet (so the pool cannot take a block one of them asked
// for), then pool networks; each group in id order.
import { AddressSpace } from './address-space.js';
import { formatCidr, intToIp, ipToInt, overlaps, parseCidr, type Cidr } from './ipv4.js';
import { SubnetPool } from './subnet-pool.js';
import type { AllocationError, AllocatorConfig, AllocatorOp, NetworkObject, Versioned } from './types.js';
import { checkAddressing, clashMessage, type UsedSubnet } from './validate.js';
import { VniPool } from './vni.js';

/** An allocated network, with its address space built on first use (most passes touch few networks). */
export class NetPlan {
  private sp: AddressSpace | undefined;

  constructor(readonly net: NetworkObject, readonly subnet: Cidr, readonly gateway: number, readonly range: Cidr | undefined) {}

  get space(): AddressSpace {
    return (this.sp ??= new AddressSpace(this.subnet, this.range, this.gateway));
  }
}

export interface NetworkPass {
  plans: Map<string, NetPlan>;
  ops: AllocatorOp[];
  errors: AllocationError[];
}

function parsePool(s: string, what: string): Cidr {
  const c = parseCidr(s);
  if (typeof c === 'string') throw new Error(`allocator config: ${what} ${c}`);
  return c;
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function allocateNetworks(networks: readonly Versioned<NetworkObject>[], config: AllocatorConfig): NetworkPass {
  const pools = config.pools.map((p) => {
    if (!(Number.isInteger(p.size) && p.size >= 1 && p.size <= 29)) throw new Error(`allocator config: pool size /${p.size} must be /1../29`);
    return { base: parsePool(p.base, 'pool'), size: p.size };
  });
  const subnets = new SubnetPool(pools);
  const vnis = new VniPool(config.vniRange.first, config.vniRange.last);
  const used: UsedSubnet[] = [];
  const out: NetworkPass = { plans: new Map(), ops: [], errors: [] };
  const err = (id: string, field: string, message: string): void => void out.errors.push({ kind: 'network', id, field, message });
  const sorted = [...networks].sort(byId);

  // only one ingress network: later ones (by id) are errors and get nothing
  const ingress = sorted.filter((n) => n.spec.ingress);
  const extraIngress = new Set(ingress.slice(1).map((n) => n.id));
  for (const id of extraIngress) err(id, 'ingress', `only one ingress network may exist; "${ingress[0]!.spec.name}" (${ingress[0]!.id}) is it`);

  // 1. allocated networks keep what they have
  for (const n of sorted) {
    const a = n.allocated;
    if (!a || extraIngress.has(n.id)) continue;
    const s = parseCidr(a.subnet);
    const g = ipToInt(a.gateway);
    if (typeof s === 'string' || g === undefined) {
      err(n.id, 'allocated', `stored allocation is corrupt (subnet ${a.subnet}, gateway ${a.gateway})`);
      continue;
    }
    const clash = subnets.isUsed(s) ? used.find((u) => overlaps(u.subnet, s)) : undefined;
    if (clash) err(n.id, 'allocated', clashMessage('subnet', s, clash));
    if (!vnis.reserve(a.vni)) err(n.id, 'allocated', `VNI ${a.vni} is held by another network`);
    let range: Cidr | undefined;
    if (n.spec.ipRange !== undefined) {
      const r = parseCidr(n.spec.ipRange);
      if (typeof r !== 'string') range = r;
    }
    used.push({ id: n.id, name: n.spec.name, subnet: s, ingress: n.spec.ingress === true });
    subnets.reserve(s);
    if (!clash) out.plans.set(n.id, new NetPlan(n, s, g, range));
  }

  // the ingress range stays out of the pool even before the ingress network is created
  const ingressHasSubnet = ingress.some((n) => !extraIngress.has(n.id) && (n.allocated || n.spec.subnet !== undefined));
  if (!ingressHasSubnet) {
    const r = parsePool(config.ingressSubnet, 'ingressSubnet');
    used.push({ id: '', name: 'ingress network range', subnet: r, ingress: true });
    subnets.reserve(r);
  }

  const give = (n: Versioned<NetworkObject>, s: Cidr, gateway: number | undefined, range: Cidr | undefined): void => {
    const vni = vnis.take();
    if (vni === undefined) {
      err(n.id, 'vni', `no free VNI left in ${config.vniRange.first}..${config.vniRange.last}`);
      return;
    }
    const g = gateway ?? s.base + 1; // the first host address, as Docker does
    const object: NetworkObject = { ...bare(n), allocated: { vni, subnet: formatCidr(s), gateway: intToIp(g) } };
    const op: AllocatorOp = { op: 'update', kind: 'network', object };
    if (n.meta) op.version = n.meta.version;
    out.ops.push(op);
    used.push({ id: n.id, name: n.spec.name, subnet: s, ingress: n.spec.ingress === true });
    subnets.reserve(s);
    out.plans.set(n.id, new NetPlan(object, s, g, range));
  };

  // 2. explicit subnets (the ingress network without one takes the configured ingress range)
  const pending = sorted.filter((n) => !n.allocated && !extraIngress.has(n.id));
  for (const n of pending) {
    const spec = n.spec.ingress && n.spec.subnet === undefined ? { ...n.spec, subnet: config.ingressSubnet } : n.spec;
    if (spec.subnet === undefined) continue;
    // only a subnet that touches used space needs the (linear) search for what it clashes with
    const parsed = parseCidr(spec.subnet);
    const clashes = typeof parsed === 'string' || subnets.isUsed(parsed) ? used : [];
    const c = checkAddressing(n.id, spec, clashes, config);
    if (c.errors.length || !c.ok.subnet) out.errors.push(...c.errors);
    else give(n, c.ok.subnet, c.ok.gateway, c.ok.ipRange);
  }
  // 3. pool networks
  for (const n of pending) {
    if (n.spec.subnet !== undefined || n.spec.ingress) continue;
    const c = checkAddressing(n.id, n.spec, [], config); // no subnet: nothing to clash with
    if (c.errors.length) {
      out.errors.push(...c.errors);
      continue;
    }
    const s = subnets.take();
    if (!s) {
      const where = config.pools.map((p) => `${p.base} in /${p.size}s`).join(', ');
      err(n.id, 'subnet', `default address pool exhausted: all ${subnets.capacity()} subnets of ${where} are in use; give --subnet or configure more pools`);
      continue;
    }
    give(n, s, undefined, undefined);
  }
  return out;
}

export function bare<T extends object>(o: Versioned<T>): T {
  const { meta: _meta, ...rest } = o as T & { meta?: unknown };
  return rest as T;
}
