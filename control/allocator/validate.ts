// Checks of a network's address settings (`network create --subnet/--gateway/--ip-range`), shared by
// the API (refuse at create time, with the field named) and the allocation pass (the same checks
// against what the pass has allocated so far).
import { containsIp, formatCidr, ipToInt, last, overlaps, parseCidr, within, type Cidr } from './ipv4.js';
import type { AllocationError, AllocatorConfig, NetworkSpec } from './types.js';

/** A subnet some other network holds (or a reserved range, with id ''). */
export interface UsedSubnet {
  id: string;
  name: string;
  subnet: Cidr;
  ingress: boolean;
}

export interface CheckedAddressing {
  subnet?: Cidr;
  gateway?: number;
  ipRange?: Cidr;
}

export function clashMessage(field: string, mine: Cidr, u: UsedSubnet): string {
  const what = u.id === '' ? `the ${u.name}` : `network "${u.name}" (${u.id})`;
  return `${field} ${formatCidr(mine)} overlaps ${what}, which has ${formatCidr(u.subnet)}`;
}

/**
 * Validates the spec's addressing on its own and against `used` (other networks' subnets and reserved
 * ranges). Returns the parsed values, or errors naming the field and what it clashes with.
 */
export function checkAddressing(
  id: string, spec: NetworkSpec, used: readonly UsedSubnet[], config: AllocatorConfig,
): { ok: CheckedAddressing; errors: AllocationError[] } {
  const errors: AllocationError[] = [];
  const err = (field: string, message: string): void => void errors.push({ kind: 'network', id, field, message });
  const ok: CheckedAddressing = {};
  if (spec.driver !== 'overlay') err('driver', `driver "${String(spec.driver)}" is not supported (only overlay)`);
  if (spec.mtu !== undefined && !(Number.isInteger(spec.mtu) && spec.mtu >= 576 && spec.mtu <= 9000)) {
    err('mtu', `mtu ${spec.mtu} is outside 576..9000`);
  }
  if (spec.subnet === undefined) {
    if (spec.gateway !== undefined) err('gateway', 'gateway needs subnet: give --subnet too');
    if (spec.ipRange !== undefined) err('ipRange', 'ip-range needs subnet: give --subnet too');
    return { ok, errors };
  }
  const s = parseCidr(spec.subnet);
  if (typeof s === 'string') {
    err('subnet', `subnet ${s}`);
    return { ok, errors };
  }
  if (s.prefix > 29) err('subnet', `subnet ${formatCidr(s)} is too small: use /29 or larger`);
  if (s.prefix < config.maxSubnetPrefix) {
    err('subnet', `subnet ${formatCidr(s)} is too large: at most /${config.maxSubnetPrefix} (${2 ** (32 - config.maxSubnetPrefix)} addresses)`);
  }
  for (const u of used) {
    if (u.id !== '' && u.id === id) continue;
    // the ingress network may sit on the reserved ingress range: it is what the range is kept for
    if (u.id === '' && spec.ingress) continue;
    if (overlaps(s, u.subnet)) err('subnet', clashMessage('subnet', s, u));
  }
  if (errors.length) return { ok, errors };
  ok.subnet = s;
  if (spec.gateway !== undefined) {
    const g = ipToInt(spec.gateway);
    if (g === undefined) err('gateway', `gateway "${spec.gateway}" is not an IPv4 address`);
    else if (!containsIp(s, g)) err('gateway', `gateway ${spec.gateway} is outside subnet ${formatCidr(s)}`);
    else if (g === s.base || g === last(s)) err('gateway', `gateway ${spec.gateway} is the network or broadcast address of ${formatCidr(s)}`);
    else ok.gateway = g;
  }
  if (spec.ipRange !== undefined) {
    const r = parseCidr(spec.ipRange);
    if (typeof r === 'string') err('ipRange', `ip-range ${r}`);
    else if (!within(r, s)) err('ipRange', `ip-range ${formatCidr(r)} is outside subnet ${formatCidr(s)}`);
    else ok.ipRange = r;
  }
  return { ok, errors };
}

/**
 * For the API at `network create`: the errors this spec would get against the existing networks
 * (allocated ones by their subnet, others by the subnet they ask for) and the reserved ingress range.
 */
export function validateNetworkSpec(
  spec: NetworkSpec,
  existing: readonly { id: string; spec: NetworkSpec; allocated?: { subnet: string } }[],
  config: AllocatorConfig,
): AllocationError[] {
  const used: UsedSubnet[] = [];
  let ingressRange = true;
  for (const n of existing) {
    const text = n.allocated?.subnet ?? n.spec.subnet;
    if (n.spec.ingress && text !== undefined) ingressRange = false;
    const c = text === undefined ? undefined : parseCidr(text);
    if (c !== undefined && typeof c !== 'string') used.push({ id: n.id, name: n.spec.name, subnet: c, ingress: n.spec.ingress === true });
  }
  const r = parseCidr(config.ingressSubnet);
  if (ingressRange && typeof r !== 'string') used.push({ id: '', name: 'ingress network range', subnet: r, ingress: true });
  const errors: AllocationError[] = [];
  if (spec.ingress) {
    const other = existing.find((n) => n.spec.ingress);
    if (other) errors.push({ kind: 'network', id: '', field: 'ingress', message: `only one ingress network may exist; "${other.spec.name}" (${other.id}) is it` });
  }
  const withDefault = spec.ingress && spec.subnet === undefined ? { ...spec, subnet: config.ingressSubnet } : spec;
  return [...errors, ...checkAddressing('', withDefault, used, config).errors];
}
