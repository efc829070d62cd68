// The resolver's rules, one by one, decoded with dns2 as the reference.
import t from 'tap';
import { Packet } from 'dns2';
import { ask, bigTasks, fixtureTable, NET, typeOf } from './fixture.js';
import { RCODE } from '../../../dns/wire.js';
import { DnsTable } from '../../../dns/table.js';

const table = fixtureTable();
const snap = table.snapshot();
const A = typeOf('A'), AAAA = typeOf('AAAA'), PTR = typeOf('PTR'), ANY = typeOf('ANY'), SRV = typeOf('SRV'), NS = typeOf('NS');
const sorted = (a: string[]): string[] => [...a].sort();

t.test('VIP mode: the service name is the VIP on the asker network', async (t) => {
  const r = ask(snap, [NET.app], 'web', A);
  t.equal(r.rcode, RCODE.NOERROR);
  t.same(r.addresses, ['10.0.1.2']);
  t.equal(r.pkt!.header.aa, 1, 'authoritative for cluster names');
  t.equal(r.pkt!.header.ra, 1);
  t.equal(r.pkt!.header.id, 0xbeef);
  t.equal(r.pkt!.answers[0]!.ttl, 10, 'VIP TTL');
  t.same(ask(snap, [NET.back], 'web', A).addresses, ['10.0.2.2'], 'same name, other network, other VIP');
  t.same(ask(snap, [NET.back, NET.app], 'web', A).addresses, ['10.0.2.2'], 'first of the asker networks wins');
});

t.test('dnsrr mode: all task IPs, rotated between answers', async (t) => {
  const seen = new Set<string>();
  for (let rot = 0; rot < 3; rot++) {
    const r = ask(snap, [NET.back], 'db', A, { rotation: rot });
    t.same(sorted(r.addresses), ['10.0.2.21', '10.0.2.22', '10.0.2.23']);
    t.equal(r.pkt!.answers[0]!.ttl, 5, 'task TTL');
    seen.add(r.addresses[0]!);
  }
  t.equal(seen.size, 3, 'each task comes first in turn');
});

t.test('tasks.<service> gives task IPs in both modes', async (t) => {
  t.same(sorted(ask(snap, [NET.app], 'tasks.web', A).addresses), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  t.same(sorted(ask(snap, [NET.back], 'tasks.web', A).addresses), ['10.0.2.11', '10.0.2.12', '10.0.2.13']);
  t.same(sorted(ask(snap, [NET.back], 'tasks.db', A).addresses), ['10.0.2.21', '10.0.2.22', '10.0.2.23']);
});

t.test('task names and aliases', async (t) => {
  t.same(ask(snap, [NET.app], 'web.2.webtask2', A).addresses, ['10.0.1.12']);
  t.same(ask(snap, [NET.back], 'web.2.webtask2', A).addresses, ['10.0.2.12']);
  t.same(ask(snap, [NET.app], 'www', A).addresses, ['10.0.1.2'], 'service alias resolves like the service (VIP)');
  t.same(sorted(ask(snap, [NET.back], 'database', A).addresses), ['10.0.2.21', '10.0.2.22', '10.0.2.23'], 'service alias in dnsrr');
  t.same(ask(snap, [NET.back], 'db.internal.corp', A).addresses.length, 3, 'a dotted alias is ours, not forwarded');
  t.same(ask(snap, [NET.app], 'web-primary', A).addresses, ['10.0.1.11'], 'task alias: that task only');
  t.equal(ask(snap, [NET.back], 'web-primary', A).rcode, RCODE.NXDOMAIN, 'a task alias is scoped to its network');
});

t.test('case-insensitive, trailing dot or not, question echoed as asked', async (t) => {
  for (const n of ['WEB', 'Web.', 'wEb', 'TASKS.Web', 'web.2.WEBTASK2.']) {
    const r = ask(snap, [NET.app], n, A);
    t.equal(r.rcode, RCODE.NOERROR, n);
    t.ok(r.addresses.length > 0, n);
    t.equal(r.pkt!.questions[0]!.name, n.replace(/\.$/, ''), `${n}: question keeps the asker's case (0x20)`);
    t.equal(r.pkt!.answers[0]!.name, n.replace(/\.$/, ''), `${n}: owner points at the question`);
  }
});

t.test('scope: only names on the asker networks', async (t) => {
  t.equal(ask(snap, [NET.app], 'db', A).rcode, RCODE.NXDOMAIN, 'db lives on back only');
  t.equal(ask(snap, [NET.app], 'database', A).rcode, RCODE.NXDOMAIN);
  t.equal(ask(snap, [], 'web', A).rcode, RCODE.NXDOMAIN, 'attached to nothing');
  t.equal(ask(snap, ['net-unknown'], 'web', A).rcode, RCODE.NXDOMAIN);
  t.equal(ask(snap, [NET.app], '11.1.0.10.in-addr.arpa', PTR).rcode, RCODE.NOERROR);
  t.equal(ask(snap, [NET.back], '11.1.0.10.in-addr.arpa', PTR).res.kind, 'forward', 'not our subnet from back: upstream');
  t.equal(ask(snap, [NET.app], '21.2.0.10.in-addr.arpa', PTR).res.kind, 'forward');
});

t.test('NXDOMAIN for unknown cluster names, forwarding for the rest', async (t) => {
  const nx = ask(snap, [NET.app], 'nosuchservice', A);
  t.equal(nx.rcode, RCODE.NXDOMAIN);
  t.equal(nx.pkt!.answers.length, 0);
  t.equal(nx.pkt!.header.aa, 1);
  t.equal(ask(snap, [NET.app], 'nosuchservice', AAAA).rcode, RCODE.NXDOMAIN);
  t.equal(ask(snap, [NET.app], 'example.com', A).res.kind, 'forward');
  t.equal(ask(snap, [NET.app], 'web.example.com', A).res.kind, 'forward', 'a service name as first label is not enough');
  t.equal(ask(snap, [NET.app], 'tasks.nosuch', A).res.kind, 'forward', 'tasks.X may be a real public name');
  t.equal(ask(snap, [NET.app], 'com', NS).res.kind, 'forward', 'apex queries for a bare label are for TLDs');
  t.equal(ask(snap, [NET.app], '', NS).res.kind, 'forward', 'the root');
  t.equal(ask(snap, [NET.app], '99.1.0.10.in-addr.arpa', PTR).rcode, RCODE.NXDOMAIN, 'unknown IP in our subnet: never upstream');
  t.equal(ask(snap, [NET.app], '1.1.1.1.in-addr.arpa', PTR).res.kind, 'forward');
  t.equal(ask(snap, [NET.app], '1.0.10.in-addr.arpa', PTR).res.kind, 'forward', 'a prefix name is not an address');
});

t.test('NODATA: AAAA of an IPv4-only name and other types are answered here', async (t) => {
  for (const [name, type] of [['web', AAAA], ['tasks.web', AAAA], ['web', SRV], ['www', AAAA], ['web', typeOf('DNSKEY')]] as const) {
    const r = ask(snap, [NET.app], name, type);
    t.equal(r.res.kind, 'answer', `${name}/${type} not forwarded`);
    t.equal(r.rcode, RCODE.NOERROR);
    t.equal(r.pkt!.answers.length, 0);
    t.ok(r.res.kind === 'answer' && r.res.nodata);
  }
  const rr = ask(snap, [NET.back], 'db', AAAA);
  t.equal(rr.rcode, RCODE.NOERROR);
  t.equal(rr.pkt!.answers.length, 0);
});

t.test('IPv6: AAAA for v6 records, A for v4, ANY for both', async (t) => {
  t.same(ask(snap, [NET.v6], 'six', AAAA).addresses, ['fd00:6::2']);
  t.same(ask(snap, [NET.v6], 'six', A).addresses, ['10.0.6.2']);
  t.same(sorted(ask(snap, [NET.v6], 'six', ANY).addresses), ['10.0.6.2', 'fd00:6::2']);
  t.same(ask(snap, [NET.v6], 'tasks.six', AAAA).addresses, ['fd00:6::11']);
  t.equal(ask(snap, [NET.v6], 'tasks.six', A).pkt!.answers.length, 0, 'v6-only task: A is NODATA');
  const p = ask(snap, [NET.v6], '1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.0.0.0.0.0.d.f.ip6.arpa', PTR);
  t.same(p.addresses, ['six.1.sixtask1']);
  t.equal(ask(snap, [NET.v6], 'f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.0.0.0.0.0.d.f.ip6.arpa', PTR).rcode, RCODE.NXDOMAIN);
});

t.test('PTR for task IPs and VIPs', async (t) => {
  t.same(ask(snap, [NET.app], '12.1.0.10.in-addr.arpa', PTR).addresses, ['web.2.webtask2']);
  t.same(ask(snap, [NET.app], '2.1.0.10.in-addr.arpa', PTR).addresses, ['web'], 'VIP -> service name (Docker has none)');
  t.same(ask(snap, [NET.app], '2.1.0.10.IN-ADDR.ARPA.', PTR).addresses, ['web']);
  t.same(ask(snap, [NET.back], '21.2.0.10.in-addr.arpa', PTR).addresses, ['db.1.dbtask1']);
  t.equal(ask(snap, [NET.app], '2.1.0.10.in-addr.arpa', A).pkt!.answers.length, 0, 'A of a reverse name: NODATA');
  t.equal(ask(snap, [NET.app], '2.1.0.10.in-addr.arpa', PTR).pkt!.answers[0]!.ttl, 10);
});

t.test('EDNS0: OPT echoed, payload size honoured, DO echoed, BADVERS', async (t) => {
  const plain = ask(snap, [NET.app], 'web', A);
  t.equal(plain.pkt!.additionals.length, 0, 'no OPT without EDNS');
  const e = ask(snap, [NET.app], 'web', A, { edns: { payload: 1232, dnssecOk: true } });
  const opt = e.pkt!.additionals[0] as unknown as { type: number; class: number; doFlag: boolean; version: number };
  t.equal(opt.type, typeOf('OPT'));
  t.equal(opt.class, 4096, 'our payload size');
  t.equal(opt.doFlag, true);
  const bad = ask(snap, [NET.app], 'web', A, { edns: { payload: 1232, version: 1 } });
  t.equal(bad.rcode, RCODE.BADVERS);
  t.equal(bad.bytes![3]! & 0xf, 0, 'low bits in the header');
  t.equal(bad.bytes![bad.bytes!.length - 6], 1, 'high bits in the OPT TTL');
  t.equal(Packet.parse(bad.bytes!).header.rcode, 16, 'dns2 merges them to BADVERS');
});

t.test('truncation: 100-replica dnsrr service', async (t) => {
  const udp = ask(snap, [NET.bulk], 'big', A);
  t.equal(udp.pkt!.header.tc, 1, 'too big for 512: TC');
  t.equal(udp.pkt!.answers.length, 0);
  t.ok(udp.bytes!.length <= 512);
  const small = ask(snap, [NET.bulk], 'big', A, { edns: { payload: 1232 } });
  t.equal(small.pkt!.header.tc, 1, '100 x 16 bytes do not fit 1232 either');
  t.ok(small.bytes!.length <= 1232);
  t.equal(small.pkt!.additionals.length, 1, 'OPT kept in a truncated answer');
  const big = ask(snap, [NET.bulk], 'big', A, { edns: { payload: 4096 } });
  t.equal(big.pkt!.header.tc, 0, 'fits 4096');
  t.equal(big.addresses.length, 100);
  const tcp = ask(snap, [NET.bulk], 'big', A, { transport: 'tcp' });
  t.equal(tcp.pkt!.header.tc, 0);
  t.equal(new Set(tcp.addresses).size, 100, 'full answer over TCP');
  t.equal(ask(snap, [NET.bulk], 'big', A, { edns: { payload: 100 } }).bytes!.length <= 512, true, 'payload under 512 counts as 512');
  const t2 = new DnsTable();
  t2.setNetwork({ id: 'n', name: 'n', subnets: [] });
  t2.setService({ id: 's', name: 'huge', mode: 'dnsrr', networks: [{ network: 'n', vips: [], aliases: [] }] });
  for (const task of bigTasks(5000, 's', 'n')) t2.setTask(task);
  const huge = ask(t2.snapshot(), ['n'], 'huge', A, { transport: 'tcp' });
  t.ok(huge.bytes!.length <= 65535, 'TCP answer capped at 64 KiB');
  t.ok(huge.addresses.length > 4000);
});

t.test('table changes show in the next snapshot; old snapshots are untouched', async (t) => {
  const tb = fixtureTable();
  const before = tb.snapshot();
  t.equal(tb.snapshot(), before, 'cached while unchanged');
  tb.deleteTask('webtask3');
  tb.setTask({ id: 'webtask4', serviceId: 'svc-web', slot: 4, networks: [{ network: NET.app, addresses: ['10.0.1.14'], aliases: [] }] });
  const after = tb.snapshot();
  t.same(sorted(ask(after, [NET.app], 'tasks.web', A).addresses), ['10.0.1.11', '10.0.1.12', '10.0.1.14']);
  t.same(sorted(ask(before, [NET.app], 'tasks.web', A).addresses), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  t.equal(ask(after, [NET.app], '13.1.0.10.in-addr.arpa', PTR).rcode, RCODE.NXDOMAIN, 'its PTR goes too');
  tb.deleteService('svc-db');
  t.equal(ask(tb.snapshot(), [NET.back], 'db', A).rcode, RCODE.NXDOMAIN);
  t.equal(ask(tb.snapshot(), [NET.back], 'tasks.db', A).res.kind, 'forward');
  t.notOk(tb.deleteTask('nope'), 'unknown delete is a no-op');
  // A task that arrives before its service (gossip order) waits for it.
  tb.setTask({ id: 'early1', serviceId: 'svc-late', slot: 1, networks: [{ network: NET.app, addresses: ['10.0.1.50'], aliases: [] }] });
  t.equal(ask(tb.snapshot(), [NET.app], 'late', A).rcode, RCODE.NXDOMAIN);
  tb.setService({ id: 'svc-late', name: 'late', mode: 'dnsrr', networks: [{ network: NET.app, vips: [], aliases: [] }] });
  t.same(ask(tb.snapshot(), [NET.app], 'late', A).addresses, ['10.0.1.50']);
  t.equal(ask(tb.snapshot(), [NET.app], '50.1.0.10.in-addr.arpa', PTR).addresses[0], 'late.1.early1');
});

t.test('name collisions: a service name beats an alias; equal kinds merge', async (t) => {
  const tb = new DnsTable();
  tb.setNetwork({ id: 'n', name: 'n', subnets: [] });
  tb.setService({ id: 'a', name: 'api', mode: 'vip', networks: [{ network: 'n', vips: ['10.5.0.2'], aliases: ['shared', 'db'] }] });
  tb.setService({ id: 'b', name: 'db', mode: 'vip', networks: [{ network: 'n', vips: ['10.5.0.3'], aliases: ['shared'] }] });
  const s = tb.snapshot();
  t.same(ask(s, ['n'], 'db', A).addresses, ['10.5.0.3'], 'the service named db, not the alias');
  t.same(sorted(ask(s, ['n'], 'shared', A).addresses), ['10.5.0.2', '10.5.0.3']);
});

t.test('a VIP-mode service without a VIP yet and a dnsrr service without tasks: NODATA', async (t) => {
  const tb = new DnsTable();
  tb.setService({ id: 'a', name: 'pending', mode: 'vip', networks: [{ network: 'n', vips: [], aliases: [] }] });
  tb.setService({ id: 'b', name: 'empty', mode: 'dnsrr', networks: [{ network: 'n', vips: [], aliases: [] }] });
  for (const n of ['pending', 'empty', 'tasks.empty']) {
    const r = ask(tb.snapshot(), ['n'], n, A);
    t.equal(r.rcode, RCODE.NOERROR, n);
    t.equal(r.addresses.length, 0, n);
  }
});

t.test('bad table input is rejected where it is set, never at query time', async (t) => {
  const tb = fixtureTable();
  const v0 = tb.current;
  t.throws(() => tb.setService({ id: 'a', name: 'x', mode: 'vip', networks: [{ network: 'n', vips: ['not-an-ip'], aliases: [] }] }), TypeError);
  t.throws(() => tb.setTask({ id: 't', serviceId: 'svc-web', slot: 9, networks: [{ network: NET.app, addresses: ['10.0.1.256'], aliases: [] }] }), /task t/);
  t.throws(() => tb.setService({ id: 'b', name: 'x'.repeat(64), mode: 'vip', networks: [] }), /63 octets/);
  t.throws(() => tb.setService({ id: 'c', name: 'ok', mode: 'vip', networks: [{ network: 'n', vips: [], aliases: ['a..b'] }] }), /empty label/);
  t.throws(() => tb.setTask({ id: 'y'.repeat(70), serviceId: 'svc-web', slot: 1, networks: [] }), /63 octets/);
  t.throws(() => tb.setNetwork({ id: 'n', name: 'n', subnets: ['10.0.0.0/33'] }), /CIDR/);
  t.equal(tb.current, v0, 'nothing changed');
  t.same(ask(tb.snapshot(), [NET.app], 'web', A).addresses, ['10.0.1.2'], 'the table still answers');
  // A task name that only fails once combined with its service's name (over 255 octets) costs that
  // service its names, not the node its DNS.
  const long = 'l'.repeat(63);
  tb.setService({ id: 'svc-long', name: `${long}.${long}.${long}`, mode: 'dnsrr', networks: [{ network: NET.app, vips: [], aliases: [] }] });
  tb.setTask({ id: 'z'.repeat(63), serviceId: 'svc-long', slot: 1, networks: [{ network: NET.app, addresses: ['10.0.1.77'], aliases: [] }] });
  const snap2 = tb.snapshot();
  t.equal(snap2.skipped, 1);
  t.same(ask(snap2, [NET.app], 'web', A).addresses, ['10.0.1.2']);
});

t.test('setting an equal record is a no-op that keeps the cache; replaceAll syncs exactly', async (t) => {
  const tb = fixtureTable();
  const s0 = tb.snapshot();
  const v0 = tb.current;
  // Fresh but equal objects, as a feeder rebuilding from gossip would pass them.
  t.notOk(tb.setService(JSON.parse(JSON.stringify({ id: 'svc-db', name: 'db', mode: 'dnsrr', networks: [{ network: NET.back, vips: [], aliases: ['database', 'db.internal.corp'] }] }))));
  t.notOk(tb.setTask({ id: 'dbtask1', serviceId: 'svc-db', slot: 1, networks: [{ network: NET.back, addresses: ['10.0.2.21'], aliases: [] }] }));
  t.notOk(tb.setNetwork({ id: NET.app, name: 'app', subnets: ['10.0.1.0/24'] }));
  t.equal(tb.current, v0, 'no version bump');
  t.equal(tb.snapshot(), s0, 'no rebuild');
  t.ok(tb.setTask({ id: 'dbtask1', serviceId: 'svc-db', slot: 1, networks: [{ network: NET.back, addresses: ['10.0.2.29'], aliases: [] }] }), 'a real change');
  t.ok(tb.current > v0);
  const tb2 = new DnsTable();
  t.ok(tb2.replaceAll([{ id: 'n', name: 'n', subnets: [] }], [{ id: 's', name: 'svc', mode: 'dnsrr', networks: [{ network: 'n', vips: [], aliases: [] }] }],
    [1, 2, 3].map((i) => ({ id: `t${i}`, serviceId: 's', slot: i, networks: [{ network: 'n', addresses: [`10.1.0.${i}`], aliases: [] }] }))));
  t.same(sorted(ask(tb2.snapshot(), ['n'], 'svc', A).addresses), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
  const same = (): Parameters<DnsTable['replaceAll']> => [[{ id: 'n', name: 'n', subnets: [] }], [{ id: 's', name: 'svc', mode: 'dnsrr', networks: [{ network: 'n', vips: [], aliases: [] }] }],
    [1, 3].map((i) => ({ id: `t${i}`, serviceId: 's', slot: i, networks: [{ network: 'n', addresses: [`10.1.0.${i}`], aliases: [] }] }))];
  t.ok(tb2.replaceAll(...same()), 't2 gone');
  t.same(sorted(ask(tb2.snapshot(), ['n'], 'svc', A).addresses), ['10.1.0.1', '10.1.0.3']);
  t.notOk(tb2.replaceAll(...same()), 'the same state again: no change');
  const bad = same();
  bad[2] = [...bad[2], { id: 't9', serviceId: 's', slot: 9, networks: [{ network: 'n', addresses: ['bogus'], aliases: [] }] }];
  bad[2] = [...bad[2]].filter((x) => x.id !== 't1');
  t.throws(() => tb2.replaceAll(...bad), TypeError);
  t.same(sorted(ask(tb2.snapshot(), ['n'], 'svc', A).addresses), ['10.1.0.1', '10.1.0.3'], 'a refused replaceAll changes nothing');
  t.same(tb2.size, { networks: 1, services: 1, tasks: 2 });
});
