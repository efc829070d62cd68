// EmbeddedDns, the daemon's entry point, on a real kernel: attach/detach in task namespaces (1,000
// cycles without leaking a socket), racing attach/detach, the table fed through the public API, and
// the DNS behaviours asked with dig from inside the namespace.
import t from 'tap';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { tempNetns } from '../../helpers/netns.js';
import { netnsPath } from '../../../native/index.js';
import { EmbeddedDns } from '../../../dns/embedded.js';
import { startTestResolver } from '../../unit/dns/testresolver.js';
import { bigTasks } from '../../unit/dns/fixture.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../../../dns/model.js';

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

function dig(ns: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '+time=2', '+tries=1', ...args], { timeout: 15_000 }, (err, stdout) => {
      if (err && !stdout) reject(err);
      else resolve(stdout);
    });
  });
}
const status = (out: string): string => /status: (\w+)/.exec(out)?.[1] ?? 'none';
const short = (out: string): string[] => out.trim().split('\n').filter(Boolean);

const networks: NetworkRecord[] = [{ id: 'n-app', name: 'app', subnets: ['10.30.0.0/16'] }];
const services: ServiceRecord[] = [
  { id: 's-api', name: 'api', mode: 'vip', networks: [{ network: 'n-app', vips: ['10.30.0.2'], aliases: ['backend'] }] },
  { id: 's-rr', name: 'rr', mode: 'dnsrr', networks: [{ network: 'n-app', vips: [], aliases: [] }] },
  { id: 's-big', name: 'big', mode: 'dnsrr', networks: [{ network: 'n-app', vips: [], aliases: [] }] },
];
const tasks: TaskRecord[] = [
  { id: 'apitask1', serviceId: 's-api', slot: 1, networks: [{ network: 'n-app', addresses: ['10.30.0.11'], aliases: ['api-one'] }] },
  ...[1, 2, 3, 4].map((i) => ({ id: `rrtask${i}`, serviceId: 's-rr', slot: i, networks: [{ network: 'n-app', addresses: [`10.30.1.${i}`], aliases: [] }] })),
  ...bigTasks(100, 's-big', 'n-app').map((x, i) => ({ ...x, networks: [{ network: 'n-app', addresses: [`10.30.${10 + Math.floor(i / 200)}.${(i % 200) + 1}`], aliases: [] }] })),
];

t.test('1,000 attach/detach cycles in a task namespace leak no fd', async (t) => {
  const ns = tempNetns(t, 'dnsfd');
  const dns = new EmbeddedDns({ upstreams: [] });
  t.teardown(() => dns.close());
  dns.setTable(networks, services, tasks);
  // Warm up once (lazy addon and libuv state), then count.
  await dns.attach('warm', netnsPath(ns), ['n-app']);
  await dns.detach('warm');
  const before = openFds();
  let detached = 0;
  for (let i = 0; i < 1000; i++) {
    await dns.attach(`task${i}`, netnsPath(ns), ['n-app']);
    if (i % 250 === 0) t.same(short(await dig(ns, '+short', 'api')), ['10.30.0.2'], `cycle ${i}: serving`);
    if (await dns.detach(`task${i}`)) detached++;
  }
  t.equal(detached, 1000);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(openFds(), before, `fds before ${before}, after 1,000 cycles ${openFds()}`);
  t.same(dns.attachedTasks(), []);
  const ss = await new Promise<string>((res) => execFile('ip', ['netns', 'exec', ns, 'ss', '-tuan'], (_e, out) => res(out)));
  t.notMatch(ss, /127\.0\.0\.11:53/, 'nothing left at 127.0.0.11:53');
});

t.test('attach is idempotent, detach twice is harmless, racing calls never leak a listener', async (t) => {
  const ns = tempNetns(t, 'dnsrace');
  const dns = new EmbeddedDns({ upstreams: [] });
  t.teardown(() => dns.close());
  dns.setTable(networks, services, tasks);
  await dns.attach('a', netnsPath(ns), ['n-app']);
  await dns.attach('a', netnsPath(ns), ['n-other']); // same namespace: networks updated, no rebind
  t.equal(status(await dig(ns, 'api')), 'NXDOMAIN', 'now scoped to n-other');
  dns.setTaskNetworks('a', ['n-app']);
  t.same(short(await dig(ns, '+short', 'api')), ['10.30.0.2']);
  t.ok(await dns.detach('a'));
  t.notOk(await dns.detach('a'));
  const before = openFds();
  // Not awaited in between: a detach issued while its attach is still opening sockets must win.
  const ops: Promise<unknown>[] = [];
  for (let i = 0; i < 50; i++) {
    ops.push(dns.attach(`r${i}`, netnsPath(ns), ['n-app']).catch(() => undefined));
    ops.push(dns.detach(`r${i}`));
  }
  await Promise.all(ops);
  t.same(dns.server.listenerIds(), [], 'every raced attach was detached');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(openFds(), before);
  await t.rejects(dns.attach('x', '/run/netns/mt-no-such-ns', ['n-app']), { code: 'ENOENT' });
  t.same(dns.attachedTasks(), []);
});

t.test('names, rotation, EDNS, TC/TCP, NODATA never forwarded, upstream and dead upstream, from a task', async (t) => {
  const up = await startTestResolver();
  const dead = await startTestResolver({ dead: true });
  t.teardown(up.close);
  t.teardown(dead.close);
  const ns = tempNetns(t, 'dnsall');
  const dns = new EmbeddedDns({ upstreams: [up], forwarding: { attemptTimeoutMs: 300 } });
  t.teardown(() => dns.close());
  for (const n of networks) dns.upsertNetwork(n);
  for (const s of services) dns.upsertService(s);
  for (const x of tasks) dns.upsertTask(x);
  await dns.attach('task', netnsPath(ns), ['n-app']);
  t.same(short(await dig(ns, '+short', 'API.')), ['10.30.0.2'], 'VIP, case and trailing dot');
  t.same(short(await dig(ns, '+short', 'backend')), ['10.30.0.2'], 'service alias');
  t.same(short(await dig(ns, '+short', 'api-one')), ['10.30.0.11'], 'task alias');
  t.same(short(await dig(ns, '+short', 'api.1.apitask1')), ['10.30.0.11'], 'task name');
  t.same(short(await dig(ns, '+short', 'tasks.api')), ['10.30.0.11']);
  t.same(short(await dig(ns, '+short', '-x', '10.30.0.2')), ['api.'], 'PTR of the VIP');
  t.same(short(await dig(ns, '+short', '-x', '10.30.1.3')), ['rr.3.rrtask3.'], 'PTR of a task');
  t.equal(status(await dig(ns, '-x', '10.30.99.99')), 'NXDOMAIN', 'unknown address in our subnet');
  // dnsrr: every answer holds all tasks; the first one rotates between answers.
  const firsts = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const a = short(await dig(ns, '+short', 'rr'));
    t.same([...a].sort(), ['10.30.1.1', '10.30.1.2', '10.30.1.3', '10.30.1.4']);
    firsts.add(a[0]!);
  }
  t.ok(firsts.size >= 3, `rotated: ${firsts.size} different first addresses in 8 answers`);
  // NODATA for AAAA, answered here: the upstream never sees it.
  const aaaa = await dig(ns, 'api', 'AAAA');
  t.equal(status(aaaa), 'NOERROR');
  t.match(aaaa, /ANSWER: 0/);
  t.equal(status(await dig(ns, 'nosuchsvc')), 'NXDOMAIN');
  t.same(up.seen.udp.filter((n) => /api|rr|nosuchsvc/.test(n)), [], 'no cluster name or AAAA went upstream');
  // EDNS: OPT echoed; the client's buffer decides whether 100 records fit over UDP.
  t.match(await dig(ns, 'api'), /EDNS: version: 0, flags:; udp: 4096/);
  const b512 = await dig(ns, '+ignore', '+bufsize=512', 'big');
  t.match(b512, /flags: qr aa tc rd ra/, '100 records in 512 bytes: TC');
  const b4096 = await dig(ns, '+ignore', '+bufsize=4096', 'big');
  t.match(b4096, /ANSWER: 100/, 'fits a 4096-byte buffer over UDP');
  t.notMatch(b4096, /flags: qr aa tc/);
  const fallback = await dig(ns, '+noedns', 'big');
  t.match(fallback, /Truncated, retrying in TCP mode/);
  t.match(fallback, /ANSWER: 100/, 'TCP fallback gets all 100');
  t.match(await dig(ns, 'tasks.big'), /ANSWER: 100/);
  // TTLs: 10 s for the VIP, 5 s for task records.
  t.match(await dig(ns, '+noall', '+answer', 'api'), /api\.\s+10\s+IN\s+A/);
  t.match(await dig(ns, '+noall', '+answer', 'api-one'), /api-one\.\s+5\s+IN\s+A/);
  // Forwarding, then the upstreams changed to a dead one: SERVFAIL fast, cluster names unaffected.
  t.same(short(await dig(ns, '+short', 'ok.test')), ['192.0.2.1'], 'forwarded upstream');
  t.ok(up.seen.udp.includes('ok.test'));
  dns.setUpstreams([dead]);
  const t0 = Date.now();
  t.equal(status(await dig(ns, 'other.test')), 'SERVFAIL');
  t.ok(Date.now() - t0 < 1000, `dead upstream: SERVFAIL in ${Date.now() - t0} ms`);
  const t1 = Date.now();
  t.same(short(await dig(ns, '+short', 'api')), ['10.30.0.2']);
  t.ok(Date.now() - t1 < 300, `cluster name while upstream is dead: ${Date.now() - t1} ms`);
  // Table changes show at once: a task removed leaves dnsrr and its PTR; a new one appears.
  dns.removeTask('rrtask4');
  dns.upsertTask({ id: 'rrtask5', serviceId: 's-rr', slot: 5, networks: [{ network: 'n-app', addresses: ['10.30.1.5'], aliases: [] }] });
  t.same(short(await dig(ns, '+short', 'rr')).sort(), ['10.30.1.1', '10.30.1.2', '10.30.1.3', '10.30.1.5']);
  t.equal(status(await dig(ns, '-x', '10.30.1.4')), 'NXDOMAIN');
  const s = dns.stats();
  t.equal(s.server.errors, 0);
  t.equal(s.listeners, 1);
});
