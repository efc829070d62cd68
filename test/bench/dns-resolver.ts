// DNS micro-bench: `npm run bench -- dns`. Prints resolver ops/s for a VIP name, a 10-task dnsrr
// name, an NXDOMAIN name and a 100-record TCP answer, the server's packet path per query, and the
// snapshot rebuild at 1000 services x 5 tasks (cold, and after one task changed). The fuzzer is
// `npm run bench -- dns-fuzz`, the socket-level comparison with Docker `npm run bench -- dns-perf`.
import { DnsTable } from '../../dns/table.js';
import { resolve } from '../../dns/resolver.js';
import { DnsServer } from '../../dns/server.js';
import { buildQuery, TYPE } from '../../dns/wire.js';
import { fixtureTable, NET, bigTasks } from '../unit/dns/fixture.js';

function bench(label: string, fn: (i: number) => void, ms = 700): void {
  for (let i = 0; i < 2000; i++) fn(i); // warm up
  let n = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  while (performance.now() - t0 < ms) for (let j = 0; j < 500; j++) fn(n++);
  const dt = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${label.padEnd(34)} ${Math.round((n / dt) * 1000).toLocaleString('en').padStart(11)} ops/s  ${(((cpu.user + cpu.system) / n)).toFixed(2)} us CPU/op`);
}

const table = fixtureTable();
table.setService({ id: 'svc-rr10', name: 'rr10', mode: 'dnsrr', networks: [{ network: NET.app, vips: [], aliases: [] }] });
for (const t of bigTasks(10, 'svc-rr10', NET.app)) table.setTask(t);
const snap = table.snapshot();
const nets = [NET.app, NET.bulk];
const qVip = buildQuery({ name: 'web', type: TYPE.A, edns: { payload: 1232 } });
const qRr = buildQuery({ name: 'rr10', type: TYPE.A, edns: { payload: 1232 } });
const qNx = buildQuery({ name: 'nosuch', type: TYPE.A, edns: { payload: 1232 } });
const qBig = buildQuery({ name: 'big', type: TYPE.A });
bench('resolve VIP (A, EDNS)', (i) => resolve(snap, nets, qVip, { transport: 'udp', rotation: i }));
bench('resolve dnsrr 10 tasks', (i) => resolve(snap, nets, qRr, { transport: 'udp', rotation: i }));
bench('resolve NXDOMAIN', (i) => resolve(snap, nets, qNx, { transport: 'udp', rotation: i }));
bench('resolve dnsrr 100 tasks over TCP', (i) => resolve(snap, nets, qBig, { transport: 'tcp', rotation: i }));
const server = new DnsServer({ table, forwarder: null });
bench('server.handle VIP', () => server.handle(nets, qVip, 'udp', () => undefined));

const t2 = new DnsTable();
for (let s = 0; s < 1000; s++) {
  t2.setService({ id: `s${s}`, name: `svc${s}`, mode: 'vip', networks: [{ network: 'n', vips: [`10.${s >> 8}.${s & 255}.1`], aliases: [] }] });
  for (let k = 0; k < 5; k++) t2.setTask({ id: `t${s}-${k}`, serviceId: `s${s}`, slot: k + 1, networks: [{ network: 'n', addresses: [`10.${100 + (s >> 8)}.${s & 255}.${k + 2}`], aliases: [] }] });
}
const b0 = performance.now();
t2.snapshot();
console.log(`snapshot rebuild, 1000 services x 5 tasks: ${(performance.now() - b0).toFixed(1)} ms`);
const timed = (label: string, fn: () => void): void => {
  const t0 = performance.now();
  fn();
  console.log(`${label.padEnd(58)} ${(performance.now() - t0).toFixed(1).padStart(7)} ms`);
};
timed('snapshot after one task replaced', () => {
  t2.setTask({ id: 't7-0', serviceId: 's7', slot: 1, networks: [{ network: 'n', addresses: ['10.250.0.1'], aliases: [] }] });
  t2.snapshot();
});
// The daemon's full resync: the whole state as fresh objects, equal to what is held.
const fresh = (): Parameters<DnsTable['replaceAll']> => {
  const ss = [], ts = [];
  for (let s = 0; s < 1000; s++) {
    ss.push({ id: `s${s}`, name: `svc${s}`, mode: 'vip' as const, networks: [{ network: 'n', vips: [`10.${s >> 8}.${s & 255}.1`], aliases: [] }] });
    for (let k = 0; k < 5; k++) ts.push({ id: `t${s}-${k}`, serviceId: `s${s}`, slot: k + 1, networks: [{ network: 'n', addresses: [s === 7 && k === 0 ? '10.250.0.1' : `10.${100 + (s >> 8)}.${s & 255}.${k + 2}`], aliases: [] }] });
  }
  return [[], ss, ts];
};
const state = fresh();
timed('replaceAll with an equal state (fresh objects): no-op', () => {
  if (t2.replaceAll(...state)) throw new Error('an equal state changed the table');
  t2.snapshot();
});
state[2] = [...state[2]].filter((t) => t.id !== 't9-4');
timed('replaceAll with one task gone + snapshot', () => {
  t2.replaceAll(...state);
  t2.snapshot();
});
