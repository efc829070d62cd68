// Table input is checked where it is set: a record the resolver could not encode (an address that is
// not one, a name with a label over 63 octets or over 255 in all) is refused with a TypeError naming
// it, so the feeder sees its bug at once and one bad gossip entry never takes the node's DNS down.
import ipaddr from 'ipaddr.js';
import { canonicalIp, nameKey } from './names.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from './model.js';
import { taskName } from './model.js';

function checkName(what: string, name: string): void {
  const key = nameKey(name);
  if (key === '') throw new TypeError(`${what}: empty name`);
  let total = 1;
  for (const label of key.split('.')) {
    const n = Buffer.byteLength(label, 'latin1');
    if (n === 0 || n > 63) throw new TypeError(`${what}: "${name}" has an empty label or one longer than 63 octets`);
    total += n + 1;
  }
  if (total > 255) throw new TypeError(`${what}: "${name}" is longer than 255 octets`);
}

function checkIp(what: string, ip: string): void {
  try {
    canonicalIp(ip);
  } catch (e) {
    throw new TypeError(`${what}: ${(e as Error).message}`);
  }
}

export function validateNetwork(n: NetworkRecord): void {
  for (const c of n.subnets) {
    try {
      ipaddr.parseCIDR(c);
    } catch {
      throw new TypeError(`network ${n.id}: "${c}" is not a CIDR`);
    }
  }
}

export function validateService(s: ServiceRecord): void {
  const what = `service ${s.id}`;
  checkName(what, s.name);
  checkName(what, `tasks.${s.name}`);
  if (s.mode !== 'vip' && s.mode !== 'dnsrr') throw new TypeError(`${what}: mode "${String(s.mode)}"`);
  for (const a of s.networks) {
    for (const ip of a.vips) checkIp(what, ip);
    for (const alias of a.aliases) checkName(what, alias);
  }
}

/** The task name is checked against a typical service name length; the resolver skips what still fails. */
export function validateTask(t: TaskRecord): void {
  const what = `task ${t.id}`;
  checkName(what, taskName('x', t));
  for (const a of t.networks) {
    for (const ip of a.addresses) checkIp(what, ip);
    for (const alias of a.aliases) checkName(what, alias);
  }
}
