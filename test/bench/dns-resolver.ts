// DNS micro-bench and long fuzz: `node dist/test/bench/dns-resolver.js [--fuzz N]`.
// Prints resolver ops/s for a VIP name, a 10-task dnsrr name, an NXDOMAIN name and a 100-record TCP
// answer, the server's packet path per query, then N fuzz packets (default 1,000,000) through it.
import { DnsTable } from '../../dns/table.js';
import { resolve } from '../../dns/resolver.js';
import { DnsServer } from '../../dns/server.js';
import { buildQuery, TYPE } from '../../dns/wire.js';
import { fixtureTable, NET, bigTasks } from '../unit/dns/fixture.js';
import { fuzzPacket, Rng } from '../unit/dns/fuzzgen.js';

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

const fi = process.argv.indexOf('--fuzz');
const count = fi > 0 ? Number(process.argv[fi + 1]) : 1_000_000;
const seed = Date.now() % 1e9;
const r = new Rng(seed);
const fserver = new DnsServer({ table, forwarder: null });
let replies = 0, bad = 0;
const f0 = performance.now();
for (let i = 0; i < count; i++) {
  const pkt = fuzzPacket(r);
  fserver.handle(nets, pkt, i & 3 ? 'udp' : 'tcp', (b) => {
    replies++;
    if (b.length < 12 || b.readUInt16BE(0) !== pkt.readUInt16BE(0)) bad++;
  });
}
const c = fserver.counters;
console.log(`fuzz: ${count.toLocaleString('en')} packets (seed ${seed}) in ${((performance.now() - f0) / 1000).toFixed(1)} s: ${replies} replies, ${bad} malformed replies, ${c.errors} exceptions; ${JSON.stringify(c.responses)} dropped ${JSON.stringify(c.dropped)}`);
process.exit(bad || c.errors ? 1 : 0);
