// What both sides of the dnsperf bench serve: a VIP service, a 10-task dnsrr service, and 200 other
// services of 5 tasks each so that lookups are not in a toy table. Docker gets the first two (plus the
// client) as real swarm services.
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../../dns/model.js';

export const BENCH_NET = 'net-bench';
export const NAMES = { vip: 'vipsvc', rr: 'rr10', nx: 'nosuch' } as const;

export function benchTable(): { networks: NetworkRecord[]; services: ServiceRecord[]; tasks: TaskRecord[] } {
  const networks: NetworkRecord[] = [{ id: BENCH_NET, name: 'bench', subnets: ['10.200.0.0/16'] }];
  const services: ServiceRecord[] = [
    { id: 'svc-vip', name: NAMES.vip, mode: 'vip', networks: [{ network: BENCH_NET, vips: ['10.200.0.2'], aliases: [] }] },
    { id: 'svc-rr', name: NAMES.rr, mode: 'dnsrr', networks: [{ network: BENCH_NET, vips: [], aliases: [] }] },
  ];
  const tasks: TaskRecord[] = [];
  const task = (svc: string, slot: number, ip: string): TaskRecord =>
    ({ id: `${svc}-t${slot}`, serviceId: svc, slot, networks: [{ network: BENCH_NET, addresses: [ip], aliases: [] }] });
  for (let i = 1; i <= 3; i++) tasks.push(task('svc-vip', i, `10.200.0.${10 + i}`));
  for (let i = 1; i <= 10; i++) tasks.push(task('svc-rr', i, `10.200.1.${10 + i}`));
  for (let s = 0; s < 200; s++) {
    services.push({ id: `svc-f${s}`, name: `filler${s}`, mode: 'vip', networks: [{ network: BENCH_NET, vips: [`10.200.${2 + (s >> 6)}.${(s & 63) + 1}`], aliases: [] }] });
    for (let k = 1; k <= 5; k++) tasks.push(task(`svc-f${s}`, k, `10.200.${10 + s}.${k}`));
  }
  return { networks, services, tasks };
}
