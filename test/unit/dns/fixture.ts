// A cluster's worth of DNS records for the tests, and helpers to ask and decode (with dns2, the
// reference decoder: every response we build must parse there too).
import { Packet } from 'dns2';
import { DnsTable } from '../../../dns/table.js';
import { resolve, type Resolution, type Transport } from '../../../dns/resolver.js';
import { buildQuery, TYPE } from '../../../dns/wire.js';
import type { Snapshot } from '../../../dns/snapshot.js';
import type { TaskRecord } from '../../../dns/model.js';

export const NET = { app: 'net-app', back: 'net-back', bulk: 'net-bulk', v6: 'net-v6' } as const;

export function bigTasks(n: number, serviceId = 'svc-big', net: string = NET.bulk): TaskRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `big${String(i).padStart(3, '0')}`,
    serviceId,
    slot: i + 1,
    networks: [{ network: net, addresses: [`10.9.${Math.floor(i / 250)}.${(i % 250) + 1}`], aliases: [] }],
  }));
}

/** web: VIP on app and back, 3 tasks; db: dnsrr on back, 3 tasks; big: dnsrr, 100 tasks; six: IPv6. */
export function fixtureTable(): DnsTable {
  const t = new DnsTable();
  t.setNetwork({ id: NET.app, name: 'app', subnets: ['10.0.1.0/24'] });
  t.setNetwork({ id: NET.back, name: 'back', subnets: ['10.0.2.0/24'] });
  t.setNetwork({ id: NET.bulk, name: 'bulk', subnets: ['10.9.0.0/16'] });
  t.setNetwork({ id: NET.v6, name: 'v6', subnets: ['fd00:6::/64', '10.0.6.0/24'] });
  t.setService({
    id: 'svc-web', name: 'web', mode: 'vip',
    networks: [{ network: NET.app, vips: ['10.0.1.2'], aliases: ['www'] }, { network: NET.back, vips: ['10.0.2.2'], aliases: [] }],
  });
  for (let i = 1; i <= 3; i++) {
    t.setTask({
      id: `webtask${i}`, serviceId: 'svc-web', slot: i,
      networks: [
        { network: NET.app, addresses: [`10.0.1.${10 + i}`], aliases: i === 1 ? ['web-primary'] : [] },
        { network: NET.back, addresses: [`10.0.2.${10 + i}`], aliases: [] },
      ],
    });
  }
  t.setService({ id: 'svc-db', name: 'db', mode: 'dnsrr', networks: [{ network: NET.back, vips: [], aliases: ['database', 'db.internal.corp'] }] });
  for (let i = 1; i <= 3; i++) t.setTask({ id: `dbtask${i}`, serviceId: 'svc-db', slot: i, networks: [{ network: NET.back, addresses: [`10.0.2.${20 + i}`], aliases: [] }] });
  t.setService({ id: 'svc-big', name: 'big', mode: 'dnsrr', networks: [{ network: NET.bulk, vips: [], aliases: [] }] });
  for (const task of bigTasks(100)) t.setTask(task);
  t.setService({ id: 'svc-six', name: 'six', mode: 'vip', networks: [{ network: NET.v6, vips: ['fd00:6::2', '10.0.6.2'], aliases: [] }] });
  t.setTask({ id: 'sixtask1', serviceId: 'svc-six', slot: 1, networks: [{ network: NET.v6, addresses: ['fd00:6::11'], aliases: [] }] });
  return t;
}

export interface Asked {
  res: Resolution;
  /** dns2's decoding of the response (answers only when res is an answer). */
  pkt: Packet | null;
  rcode: number;
  addresses: string[];
  bytes: Buffer | null;
}

export const typeOf = (name: keyof typeof TYPE): number => TYPE[name];

export function ask(
  snap: Snapshot, nets: readonly string[], name: string, type: number,
  opts: { transport?: Transport; rotation?: number; edns?: { payload: number; dnssecOk?: boolean; version?: number } } = {},
): Asked {
  const q = buildQuery({ id: 0xbeef, name, type, ...(opts.edns ? { edns: opts.edns } : {}) });
  const res = resolve(snap, nets, q, { transport: opts.transport ?? 'udp', rotation: opts.rotation ?? 0 });
  if (res.kind !== 'answer') return { res, pkt: null, rcode: -1, addresses: [], bytes: null };
  const pkt = Packet.parse(res.bytes);
  const addresses = pkt.answers.map((a) => String(a.address ?? a.domain));
  return { res, pkt, rcode: res.rcode, addresses, bytes: res.bytes };
}
