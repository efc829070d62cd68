// The embedded DNS on a real kernel: listeners at 127.0.0.11:53 inside throwaway namespaces, asked
// with dig from inside them (UDP, TCP, TC fallback), scoping per network, forwarding, listener removal.
import t from 'tap';
import { execFile } from 'node:child_process';
import { tempNetns } from '../../helpers/netns.js';
import { netnsPath } from '../../../native/index.js';
import { DnsServer } from '../../../dns/server.js';
import { Forwarder } from '../../../dns/upstream.js';
import { fixtureTable, NET } from '../../unit/dns/fixture.js';
import { startTestResolver } from '../../unit/dns/testresolver.js';

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

// Throwaway namespaces (mt*, loopback up, removed at teardown) come from the shared test helper.
const tempNs = (t: Teardown, tag: string): string => tempNetns(t, `dns${tag}`);

/** dig inside a namespace; asynchronous, so this process keeps serving the listener meanwhile. */
function dig(ns: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '+time=2', '+tries=1', ...args], { timeout: 15_000 }, (err, stdout) => {
      // dig exits 9 when no server answered: return its output, the test reads it.
      if (err && !stdout) reject(err);
      else resolve(stdout);
    });
  });
}

const status = (out: string): string => /status: (\w+)/.exec(out)?.[1] ?? 'none';
const short = (out: string): string[] => out.trim().split('\n').filter(Boolean).sort();

async function serve(t: Teardown, forwarder: Forwarder | null = null): Promise<DnsServer> {
  const server = new DnsServer({ table: fixtureTable(), forwarder });
  t.teardown(() => server.close());
  return server;
}

t.test('cluster names over UDP and TCP from inside a namespace', async (t) => {
  const ns = tempNs(t, 'a');
  const server = await serve(t);
  await server.addListener('task-a', { nsPath: netnsPath(ns), networks: [NET.app] });
  t.same(short(await dig(ns, '+short', 'web')), ['10.0.1.2'], 'VIP');
  t.same(short(await dig(ns, '+short', 'WEB.')), ['10.0.1.2'], 'case and trailing dot');
  t.same(short(await dig(ns, '+short', 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  t.same(short(await dig(ns, '+short', 'web.2.webtask2')), ['10.0.1.12'], 'task name');
  t.same(short(await dig(ns, '+short', 'www')), ['10.0.1.2'], 'alias');
  t.same(short(await dig(ns, '+short', '-x', '10.0.1.2')), ['web.'], 'PTR of the VIP');
  t.same(short(await dig(ns, '+short', '-x', '10.0.1.11')), ['web.1.webtask1.'], 'PTR of a task');
  const tcp = await dig(ns, '+tcp', 'tasks.web');
  t.equal(status(tcp), 'NOERROR');
  t.match(tcp, /ANSWER: 3/, 'over TCP');
  const nx = await dig(ns, 'nosuchservice');
  t.equal(status(nx), 'NXDOMAIN');
  t.match(nx, /flags: qr aa rd ra/);
  const aaaa = await dig(ns, 'web', 'AAAA');
  t.equal(status(aaaa), 'NOERROR', 'NODATA for AAAA');
  t.match(aaaa, /ANSWER: 0/);
  t.match(await dig(ns, 'web'), /EDNS: version: 0, flags:; udp: 4096/, 'OPT echoed');
  t.ok(server.counters.queries.udp >= 9 && server.counters.queries.tcp >= 1);
});

t.test('a 100-replica dnsrr answer truncates over UDP; dig retries over TCP and gets all', async (t) => {
  const ns = tempNs(t, 'b');
  const server = await serve(t);
  await server.addListener('task-b', { nsPath: netnsPath(ns), networks: [NET.bulk] });
  const noretry = await dig(ns, '+ignore', '+noedns', 'big');
  t.match(noretry, /flags: qr aa tc rd ra/, 'TC over UDP');
  t.match(noretry, /ANSWER: 0/);
  const out = await dig(ns, 'big');
  t.match(out, /Truncated, retrying in TCP mode/);
  t.match(out, /ANSWER: 100/);
  t.ok(server.counters.truncated >= 2);
  t.equal(short(await dig(ns, '+short', '+tcp', 'big')).length, 100);
});

t.test('two namespaces on different networks see their own scope', async (t) => {
  const a = tempNs(t, 'c');
  const b = tempNs(t, 'd');
  const server = await serve(t);
  await server.addListener('on-app', { nsPath: netnsPath(a), networks: [NET.app] });
  await server.addListener('on-back', { nsPath: netnsPath(b), networks: [NET.back] });
  t.same(short(await dig(a, '+short', 'web')), ['10.0.1.2']);
  t.same(short(await dig(b, '+short', 'web')), ['10.0.2.2'], 'same service, the VIP on the asker network');
  t.equal(status(await dig(a, 'db')), 'NXDOMAIN', 'db is on back only');
  t.same(short(await dig(b, '+short', 'db')).length, 3, 'dnsrr on back');
  t.equal(status(await dig(a, '-x', '10.0.2.21')), 'SERVFAIL', 'outside app subnets: not ours, forwarded (no upstream here)');
  t.equal(status(await dig(a, '-x', '10.0.1.99')), 'NXDOMAIN', 'unknown address in app subnet: ours');
});

t.test('forwarding from inside a namespace, and a dead upstream', async (t) => {
  const up = await startTestResolver();
  const dead = await startTestResolver({ dead: true });
  t.teardown(up.close);
  t.teardown(dead.close);
  const ns = tempNs(t, 'e');
  const server = await serve(t, new Forwarder({ upstreams: [dead, up], attemptTimeoutMs: 300 }));
  await server.addListener('task-e', { nsPath: netnsPath(ns), networks: [NET.app] });
  t.same(short(await dig(ns, '+short', 'ok.test')), ['192.0.2.1'], 'forwarded through the dead one to the live one');
  t.same(short(await dig(ns, '+short', 'web')), ['10.0.1.2']);
  const big = await dig(ns, 'big.test');
  t.match(big, /ANSWER: 60/, 'upstream TC -> TCP upstream; fits the client EDNS buffer');
  const onlyDead = tempNs(t, 'f');
  const server2 = await serve(t, new Forwarder({ upstreams: [dead], attemptTimeoutMs: 300 }));
  await server2.addListener('task-f', { nsPath: netnsPath(onlyDead), networks: [NET.app] });
  const t0 = Date.now();
  t.equal(status(await dig(onlyDead, 'example.org')), 'SERVFAIL');
  t.ok(Date.now() - t0 < 1500, `SERVFAIL in ${Date.now() - t0} ms`);
  const t1 = Date.now();
  t.same(short(await dig(onlyDead, '+short', 'web')), ['10.0.1.2'], 'cluster names unaffected');
  t.ok(Date.now() - t1 < 1000);
});

t.test('a removed listener is gone from the namespace', async (t) => {
  const ns = tempNs(t, 'g');
  const server = await serve(t);
  await server.addListener('task-g', { nsPath: netnsPath(ns), networks: [NET.app] });
  t.same(short(await dig(ns, '+short', 'web')), ['10.0.1.2']);
  await server.removeListener('task-g');
  const ss = await new Promise<string>((res) => execFile('ip', ['netns', 'exec', ns, 'ss', '-tuln'], (_e, out) => res(out)));
  t.notMatch(ss, /127\.0\.0\.11:53/, 'no socket left at 127.0.0.11:53');
  t.match(await dig(ns, '+time=1', 'web'), /timed out|no servers could be reached|refused/i);
  // And it can come back.
  await server.addListener('task-g', { nsPath: netnsPath(ns), networks: [NET.back] });
  t.same(short(await dig(ns, '+short', 'web')), ['10.0.2.2']);
});
