// Forwarding against real resolvers run by the test on 127.0.0.x (UDP and TCP), and dead ones.
import t from 'tap';
import { Packet } from 'dns2';
import { Forwarder } from '../../../dns/upstream.js';
import { DnsServer } from '../../../dns/server.js';
import { parseResolvConf, readResolvConf } from '../../../dns/resolvconf.js';
import { buildQuery, parseQuery, RCODE, TYPE, type ParsedQuery } from '../../../dns/wire.js';
import { closedPort, startTestResolver } from './testresolver.js';
import { fixtureTable, NET } from './fixture.js';

function q(name: string, opts: { id?: number; edns?: { payload: number } } = {}): { raw: Buffer; parsed: ParsedQuery } {
  const raw = buildQuery({ id: opts.id ?? 0x4242, name, type: TYPE.A, ...(opts.edns ? { edns: opts.edns } : {}) });
  const p = parseQuery(raw);
  if (p.kind !== 'query') throw new Error('bad query');
  return { raw, parsed: p.query };
}

async function ask(f: Forwarder, name: string, transport: 'udp' | 'tcp' = 'udp', id = 0x4242) {
  const { raw, parsed } = q(name, { id });
  const t0 = performance.now();
  const r = await f.forward(raw, parsed, transport);
  return { ...r, ms: performance.now() - t0, pkt: Packet.parse(r.bytes) };
}

t.test('forwards over UDP and restores the client ID', async (t) => {
  const up = await startTestResolver();
  t.teardown(up.close);
  const f = new Forwarder({ upstreams: [up] });
  const r = await ask(f, 'ok.test', 'udp', 0x1111);
  t.equal(r.rcode, RCODE.NOERROR);
  t.equal(r.pkt.header.id, 0x1111);
  t.same(r.pkt.answers.map((a) => a.address), ['192.0.2.1']);
  t.same(up.seen.udp, ['ok.test']);
  const nx = await ask(f, 'nx.test');
  t.equal(nx.rcode, RCODE.NXDOMAIN, 'upstream NXDOMAIN passed through');
  const tcp = await ask(f, 'ok.test', 'tcp');
  t.equal(tcp.rcode, RCODE.NOERROR);
  t.same(up.seen.tcp, ['ok.test'], 'a TCP client is forwarded over TCP');
  t.equal(f.stats.answered, 3);
});

t.test('TC from upstream: retried over TCP for the full answer', async (t) => {
  const up = await startTestResolver();
  t.teardown(up.close);
  const f = new Forwarder({ upstreams: [up] });
  const r = await ask(f, 'big.test');
  t.equal(r.pkt.header.tc, 0);
  t.equal(r.pkt.answers.length, 60);
  t.equal(f.stats.tcpRetries, 1);
  t.same(up.seen, { udp: ['big.test'], tcp: ['big.test'] });
});

t.test('a reply with the wrong ID is ignored (spoofing)', async (t) => {
  const up = await startTestResolver();
  t.teardown(up.close);
  const r = await ask(new Forwarder({ upstreams: [up] }), 'spoof.test');
  t.same(r.pkt.answers.map((a) => a.address), ['192.0.2.1']);
});

t.test('a dead (silent) upstream: failover after one attempt timeout, then skipped', async (t) => {
  const dead = await startTestResolver({ dead: true });
  const good = await startTestResolver();
  t.teardown(dead.close);
  t.teardown(good.close);
  const f = new Forwarder({ upstreams: [dead, good], attemptTimeoutMs: 200, failThreshold: 2, downMs: 5000 });
  const first = await ask(f, 'ok.test');
  t.equal(first.rcode, RCODE.NOERROR);
  t.ok(first.ms >= 190 && first.ms < 600, `first query waited one attempt timeout (${first.ms.toFixed(0)} ms)`);
  await ask(f, 'ok.test');
  t.same(f.usable().map((u) => u.address), [good.address], 'two failures: the dead one is down');
  const fast = await ask(f, 'ok.test');
  t.ok(fast.ms < 100, `then straight to the good one (${fast.ms.toFixed(1)} ms)`);
  t.equal(dead.seen.udp.length, 2);
});

t.test('a closed port (ICMP unreachable) fails over at once', async (t) => {
  const good = await startTestResolver();
  t.teardown(good.close);
  const f = new Forwarder({ upstreams: [await closedPort(), good], attemptTimeoutMs: 1000 });
  const r = await ask(f, 'ok.test');
  t.equal(r.rcode, RCODE.NOERROR);
  t.ok(r.ms < 200, `no timeout waited (${r.ms.toFixed(1)} ms)`);
  t.equal(f.stats.connectErrors, 1);
});

t.test('only dead upstreams: SERVFAIL within the attempt timeout, then at once', async (t) => {
  const dead = await startTestResolver({ dead: true });
  t.teardown(dead.close);
  const f = new Forwarder({ upstreams: [dead], attemptTimeoutMs: 150, failThreshold: 2, downMs: 400 });
  const a = await ask(f, 'x.test');
  t.equal(a.rcode, RCODE.SERVFAIL);
  t.equal(a.pkt.header.id, 0x4242);
  t.ok(a.ms < 400, `${a.ms.toFixed(0)} ms`);
  await ask(f, 'x.test');
  const c = await ask(f, 'x.test');
  t.equal(c.rcode, RCODE.SERVFAIL);
  t.ok(c.ms < 20, `known dead: immediate (${c.ms.toFixed(1)} ms)`);
  t.equal(f.stats.rejected, 1);
  await new Promise((r) => setTimeout(r, 450));
  t.equal(f.usable().length, 1, 'tried again after downMs');
  const none = await ask(new Forwarder({ upstreams: [] }), 'x.test');
  t.equal(none.rcode, RCODE.SERVFAIL, 'no upstream configured');
});

t.test('upstream SERVFAIL: the next upstream is asked; its answer wins', async (t) => {
  const a = await startTestResolver();
  t.teardown(a.close);
  const f = new Forwarder({ upstreams: [a] });
  t.equal((await ask(f, 'fail.test')).rcode, RCODE.SERVFAIL, 'the only answer is passed on');
  const b = await startTestResolver();
  t.teardown(b.close);
  const g = new Forwarder({ upstreams: [a, b] });
  await ask(g, 'fail.test');
  t.same(b.seen.udp, ['fail.test'], 'asked the second');
});

t.test('cap on concurrent upstream queries: SERVFAIL beyond it', async (t) => {
  const dead = await startTestResolver({ dead: true });
  t.teardown(dead.close);
  const f = new Forwarder({ upstreams: [dead], maxInflight: 5, attemptTimeoutMs: 300, failThreshold: 100 });
  const all = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(f, `n${i}.test`)));
  t.equal(all.filter((r) => r.ms < 50).length, 7, '7 refused at once');
  t.ok(all.every((r) => r.rcode === RCODE.SERVFAIL));
  t.equal(f.stats.rejected, 7);
  t.equal(f.stats.inflight, 0);
});

t.test('a stalled upstream never stalls cluster names', async (t) => {
  const dead = await startTestResolver({ dead: true });
  t.teardown(dead.close);
  const fwd = new Forwarder({ upstreams: [dead], attemptTimeoutMs: 500, failThreshold: 1000 });
  const server = new DnsServer({ table: fixtureTable(), forwarder: fwd });
  const waits: Promise<Buffer>[] = [];
  for (let i = 0; i < 200; i++) waits.push(new Promise((res) => server.handle([NET.app], q(`x${i}.example`).raw, 'udp', res)));
  let got: Buffer | null = null;
  server.handle([NET.app], q('web').raw, 'udp', (b) => (got = b));
  // The callback ran before handle() returned: 200 queries stuck upstream cannot delay it.
  t.ok(got, 'answered synchronously');
  t.equal(Packet.parse(got!).answers[0]!.address, '10.0.1.2');
  const later = await Promise.all(waits);
  t.ok(later.every((b) => (b[3]! & 0xf) === RCODE.SERVFAIL));
  t.equal(server.counters.forwarded, 200);
  t.equal(server.counters.responses.SERVFAIL, 200);
});

t.test('the server cuts a big forwarded answer to TC for a UDP client', async (t) => {
  const up = await startTestResolver();
  t.teardown(up.close);
  const server = new DnsServer({ table: fixtureTable(), forwarder: new Forwarder({ upstreams: [up] }) });
  const udp = await new Promise<Buffer>((res) => server.handle([NET.app], q('big.test').raw, 'udp', res));
  t.equal(Packet.parse(udp).header.tc, 1);
  t.ok(udp.length <= 512);
  const tcp = await new Promise<Buffer>((res) => server.handle([NET.app], q('big.test').raw, 'tcp', res));
  t.equal(Packet.parse(tcp).answers.length, 60);
  const edns = await new Promise<Buffer>((res) => server.handle([NET.app], q('big.test', { edns: { payload: 4096 } }).raw, 'udp', res));
  t.equal(Packet.parse(edns).answers.length, 60, 'a client with a big EDNS buffer gets it all over UDP');
});

t.test('resolv.conf', async (t) => {
  t.same(parseResolvConf('# x\nnameserver 10.0.0.1\nnameserver 127.0.0.11\nnameserver fe80::1%eth0 ; c\nnameserver bogus\nsearch a b\nnameserver 10.0.0.1\noptions ndots:0\nnameserver 127.0.0.53'), [
    { address: '10.0.0.1', port: 53 }, { address: 'fe80::1', port: 53 }, { address: '127.0.0.53', port: 53 },
  ]);
  t.same(readResolvConf('/nonexistent/resolv.conf'), []);
  t.ok(Array.isArray(readResolvConf()));
});
