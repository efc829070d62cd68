// Property tests: random tables answered by the resolver agree with a naive reference model of the
// rules; answers never exceed the UDP limit; the resolver never throws, whatever the bytes.
import t from 'tap';
import fc from 'fast-check';
import { Packet } from 'dns2';
import { DnsTable } from '../../../dns/table.js';
import { resolve } from '../../../dns/resolver.js';
import { buildQuery, RCODE, TYPE, udpLimit } from '../../../dns/wire.js';
import type { ServiceRecord, TaskRecord } from '../../../dns/model.js';

const NETS = ['n1', 'n2', 'n3'];
const SVC_NAMES = ['a', 'b', 'web', 'db', 'x-1'];
const ALIASES = ['a', 'web', 'alias', 'db.corp', 'tasks.a'];

const ipArb = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 254 })).map(([x, y]) => `10.${x}.0.${y}`);
const subset = <T>(xs: T[]) => fc.subarray(xs, { minLength: 0 });

const tableArb = fc
  .record({
    services: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom(...SVC_NAMES),
        mode: fc.constantFrom<'vip' | 'dnsrr'>('vip', 'dnsrr'),
        nets: fc.array(fc.record({ network: fc.constantFrom(...NETS), vip: ipArb, aliases: subset(ALIASES) }), { maxLength: 3 }),
      }),
      { selector: (s) => s.name, maxLength: 5 },
    ),
    tasks: fc.array(
      fc.record({
        svc: fc.integer({ min: 0, max: 6 }),
        nets: fc.array(fc.record({ network: fc.constantFrom(...NETS), ip: ipArb, aliases: subset(ALIASES) }), { maxLength: 2 }),
      }),
      { maxLength: 12 },
    ),
  })
  .map(({ services, tasks }) => {
    const svcs: ServiceRecord[] = services.map((s, i) => ({
      id: `s${i}`, name: s.name, mode: s.mode,
      networks: s.nets.filter((n, j) => s.nets.findIndex((m) => m.network === n.network) === j).map((n) => ({ network: n.network, vips: [n.vip], aliases: n.aliases })),
    }));
    const ts: TaskRecord[] = tasks.map((x, i) => ({
      id: `t${i}`, serviceId: `s${x.svc}`, slot: i + 1,
      networks: x.nets.filter((n, j) => x.nets.findIndex((m) => m.network === n.network) === j).map((n) => ({ network: n.network, addresses: [n.ip], aliases: n.aliases })),
    }));
    return { svcs, ts };
  });

/** The rules, written the slow obvious way. */
function expected(svcs: ServiceRecord[], ts: TaskRecord[], asker: string[], name: string): { kind: 'addrs'; addrs: string[] } | { kind: 'nx' } | { kind: 'fwd' } {
  for (const net of asker) {
    const byRank: Set<string>[] = [];
    const put = (rank: number, ips: readonly string[]): void => {
      (byRank[rank] ??= new Set());
      for (const ip of ips) byRank[rank]!.add(ip);
    };
    for (const s of svcs) {
      const tasks = ts.filter((x) => x.serviceId === s.id);
      const taskIps = tasks.flatMap((x) => x.networks.filter((a) => a.network === net).flatMap((a) => a.addresses));
      const att = s.networks.find((a) => a.network === net);
      const svcIps = s.mode === 'vip' ? (att?.vips ?? []) : taskIps;
      if (att && s.name === name) put(0, svcIps);
      if ((att || tasks.some((x) => x.networks.some((a) => a.network === net))) && `tasks.${s.name}` === name) put(1, taskIps);
      for (const x of tasks) {
        for (const a of x.networks.filter((a) => a.network === net)) {
          if (`${s.name}.${x.slot}.${x.id}` === name) put(2, a.addresses);
          if (a.aliases.includes(name)) put(4, a.addresses);
        }
      }
      if (att && att.aliases.includes(name)) put(3, svcIps);
    }
    const best = byRank.find((x) => x !== undefined);
    if (best) return { kind: 'addrs', addrs: [...best].sort() };
  }
  return name.includes('.') ? { kind: 'fwd' } : { kind: 'nx' };
}

const caseArb = (name: string) => fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length })
  .map((flips) => [...name].map((c, i) => (flips[i] ? c.toUpperCase() : c)).join(''));

t.test('resolver agrees with the reference model', async (t) => {
  fc.assert(
    fc.property(
      tableArb,
      subset(NETS),
      fc.constantFrom(...SVC_NAMES, ...ALIASES, 'tasks.web', 'tasks.db', 'web.1.t0', 'a.2.t1', 'nope', 'nope.example'),
      fc.boolean(),
      fc.nat(),
      fc.boolean(),
      (tb, asker, name, dot, rotation, tcp) => {
        const table = new DnsTable();
        for (const s of tb.svcs) table.setService(s);
        for (const x of tb.ts) table.setTask(x);
        const want = expected(tb.svcs, tb.ts, asker, name);
        const asked = fc.sample(caseArb(name), { numRuns: 1, seed: rotation })[0]! + (dot ? '.' : '');
        const res = resolve(table.snapshot(), asker, buildQuery({ name: asked, type: TYPE.A }), { transport: tcp ? 'tcp' : 'udp', rotation });
        if (want.kind === 'fwd') return res.kind === 'forward';
        if (res.kind !== 'answer') return false;
        const pkt = Packet.parse(res.bytes);
        if (want.kind === 'nx') return res.rcode === RCODE.NXDOMAIN && pkt.answers.length === 0;
        if (res.rcode !== RCODE.NOERROR) return false;
        if (pkt.header.tc) return !tcp && res.bytes.length <= 512 && want.addrs.length * 16 + res.bytes.length > 512;
        const got = pkt.answers.map((a) => a.address!).sort();
        return JSON.stringify(got) === JSON.stringify(want.addrs) && pkt.answers.every((a) => a.name === asked.replace(/\.$/, ''));
      },
    ),
    { numRuns: 1500 },
  );
  t.pass('1500 random tables');
});

t.test('UDP answers never exceed the client limit', async (t) => {
  const table = new DnsTable();
  table.setService({ id: 's', name: 'many', mode: 'dnsrr', networks: [{ network: 'n', vips: [], aliases: [] }] });
  for (let i = 0; i < 300; i++) table.setTask({ id: `t${i}`, serviceId: 's', slot: i, networks: [{ network: 'n', addresses: [`10.1.${i >> 8}.${i & 255}`], aliases: [] }] });
  const snap = table.snapshot();
  fc.assert(
    fc.property(fc.option(fc.integer({ min: 0, max: 65535 })), fc.integer({ min: 0, max: 300 }), (payload, n) => {
      const q = buildQuery({ name: n === 300 ? 'many' : `many.${n}.t${n}`, type: TYPE.A, ...(payload === null ? {} : { edns: { payload } }) });
      const r = resolve(snap, ['n'], q, { transport: 'udp', rotation: n });
      const limit = udpLimit(payload === null ? null : { payload: Math.max(payload, 512), version: 0, dnssecOk: false });
      return r.kind === 'answer' && r.bytes.length <= limit;
    }),
    { numRuns: 500 },
  );
  t.pass('500 payload sizes');
});

t.test('the resolver never throws, and answers carry the query ID', async (t) => {
  const table = new DnsTable();
  table.setService({ id: 's', name: 'web', mode: 'vip', networks: [{ network: 'n', vips: ['10.0.0.2'], aliases: [] }] });
  const snap = table.snapshot();
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
      const r = resolve(snap, ['n'], bytes, { transport: 'udp', rotation: 0 });
      if (r.kind !== 'answer') return true;
      return r.bytes.readUInt16BE(0) === ((bytes[0]! << 8) | bytes[1]!) && (r.bytes[2]! & 0x80) !== 0;
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random byte strings');
});
