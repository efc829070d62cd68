// Embedded DNS in a 3-node lab of real meshd: `dig` from inside tasks on every node, for every kind of
// name, scoped by network, with TCP fallback, upstream forwarding to a resolver this test runs, a dead
// upstream, and freshness as tasks come and go.
import t from 'tap';
import { execFile } from 'node:child_process';
import { nodeSocketPath } from '../../control/lab/daemons.js';
import { cli, okOn, until, WORKLOAD } from '../helpers/lab.js';
import { call } from '../../control/api/client.js';
import { startTestResolver, type TestResolver } from '../unit/dns/testresolver.js';

const prefix = `mt${process.pid % 100000}d`;
const base = `198.19.${170 + (process.pid % 20)}`;
const NODES = ['n1', 'n2', 'n3'];
const workload = WORKLOAD;
const ok = (...args: string[]): Promise<string> => okOn(prefix, 'n1', ...args);

const nodeIds = new Map<string, string>();
interface Task {
  id: string;
  node: string;
  netns: string;
  ip: string;
}

async function tasksOn(network: string, service: string): Promise<Task[]> {
  const info = JSON.parse(await ok('network', 'inspect', network)) as { tasks: { task: string; service: string; node: string; state: string; addresses: string[] }[] }[];
  return info[0]!.tasks
    .filter((x) => x.service === service && x.state === 'running')
    .map((x) => {
      const n = nodeIds.get(x.node)!;
      return { id: x.task, node: n, netns: `${prefix}-${n}-t-${x.task.slice(0, 12)}`, ip: x.addresses[0]! };
    });
}

/**
 * dig inside a task's namespace at the embedded DNS; returns the full answer. Asynchronous: the test
 * resolver runs in this process and must be able to answer while dig waits.
 */
async function dig(ns: string, ...args: string[]): Promise<{ status: string; answers: string[]; flags: string; text: string }> {
  const text = await new Promise<string>((resolve) => {
    execFile('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '+time=2', '+tries=1', ...args], { encoding: 'utf8', timeout: 10_000 }, (_e, stdout) => resolve(stdout ?? ''));
  });
  const status = /status: (\w+)/.exec(text)?.[1] ?? 'NO-REPLY';
  const flags = /;; flags: ([^;]*);/.exec(text)?.[1] ?? '';
  const sec = text.split(';; ANSWER SECTION:\n')[1]?.split('\n\n')[0] ?? '';
  const answers = sec.split('\n').filter(Boolean).map((l) => l.split(/\s+/).pop()!).sort();
  return { status, answers, flags, text };
}

let resolver: TestResolver;
let web: Task[];
let vip: string;

t.before(async () => {
  const r = await cli(['lab', 'up', '--prefix', prefix, '--subnet', `${base}.0/24`, '--nodes', '3', '--managers', '1'], 120_000);
  if (r.code !== 0) throw new Error(`lab up: ${r.stderr}`);
  for (const n of JSON.parse(await ok('node', 'ls', '--format', 'json')) as { id: string; hostname: string }[]) nodeIds.set(n.id, n.hostname);
  await ok('network', 'create', 'front');
  await ok('network', 'create', 'back');
  const cmd = `${workload} http --port 80`;
  await ok('service', 'create', '--name', 'web', '--replicas', '3', '--network', 'name=front,alias=www', '--command', cmd);
  await ok('service', 'create', '--name', 'rr', '--replicas', '3', '--endpoint-mode', 'dnsrr', '--network', 'front', '--command', cmd);
  // the same service name on two networks: "db" on back only; "api" on both
  await ok('service', 'create', '--name', 'db', '--replicas', '1', '--network', 'back', '--command', cmd);
  await ok('service', 'create', '--name', 'api', '--replicas', '1', '--network', 'front', '--network', 'back', '--command', cmd);
  // 100 replicas in dnsrr mode (sleepers, to keep the lab light): the answer needs TCP
  await ok('service', 'create', '--name', 'big', '--replicas', '100', '--endpoint-mode', 'dnsrr', '--network', 'front', '--command', '/bin/sleep 100000');
  web = await tasksOn('front', 'web');
  const svc = JSON.parse(await ok('service', 'inspect', 'web')) as { endpointVips: { network: string; addr: string }[] };
  vip = svc.endpointVips[0]!.addr;
  resolver = await startTestResolver({ address: `${base}.1` });
  for (const n of NODES) await call({ socketPath: nodeSocketPath(`${prefix}-${n}`), display: n }, 'POST', '/v1/local/dns/upstreams', { upstreams: [`${resolver.address}:${resolver.port}`] });
});

t.teardown(async () => {
  await resolver?.close();
  await cli(['lab', 'down', '--prefix', prefix]);
});

t.test('every kind of name, from a task on each node', async (t) => {
  t.equal(web.length, 3);
  const rr = (await tasksOn('front', 'rr')).map((x) => x.ip).sort();
  for (const w of web) {
    await until(`names on ${w.node}`, 5000, async () => ((await dig(w.netns, 'tasks.rr')).answers.length === 3 ? true : undefined));
    t.same((await dig(w.netns, 'web')).answers, [vip], `${w.node}: web -> its VIP`);
    t.same((await dig(w.netns, 'WeB.')).answers, [vip], `${w.node}: case and trailing dot do not matter`);
    t.same((await dig(w.netns, 'tasks.web')).answers, web.map((x) => x.ip).sort(), `${w.node}: tasks.web -> the task IPs`);
    t.same((await dig(w.netns, 'www')).answers, [vip], `${w.node}: a network alias resolves like the service`);
    t.same((await dig(w.netns, 'rr')).answers, rr, `${w.node}: dnsrr -> all task IPs`);
    const other = web.find((x) => x !== w)!;
    const slot = JSON.parse(await ok('service', 'ps', 'web', '--format', 'json')) as { id: string; slot: number }[];
    const s = slot.find((x) => x.id === other.id)!.slot;
    t.same((await dig(w.netns, `web.${s}.${other.id}`)).answers, [other.ip], `${w.node}: task name web.${s}.ID`);
    t.same((await dig(w.netns, '-x', other.ip)).answers, [`web.${s}.${other.id}.`], `${w.node}: PTR of a task`);
    t.same((await dig(w.netns, '-x', vip)).answers, ['web.'], `${w.node}: PTR of a VIP`);
    t.equal((await dig(w.netns, 'nosuchservice')).status, 'NXDOMAIN', `${w.node}: unknown name -> NXDOMAIN`);
    const aaaa = await dig(w.netns, 'web', 'AAAA');
    t.same([aaaa.status, aaaa.answers], ['NOERROR', []], `${w.node}: AAAA of an IPv4 name -> NODATA`);
  }
  t.notOk(resolver.seen.udp.some((q) => /web|rr|nosuchservice/i.test(q)), 'no cluster name reached the upstream');
});

t.test('rotation: dnsrr answers start at different records', async (t) => {
  const first = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const text = (await dig(web[0]!.netns, 'rr')).text;
    first.add((text.split(';; ANSWER SECTION:\n')[1] ?? '').split('\n')[0] ?? '');
  }
  t.ok(first.size > 1, `${first.size} different first records in 12 answers`);
});

t.test('scope: a task sees only its networks; the same name gives the address on the asker network', async (t) => {
  const api = JSON.parse(await ok('service', 'inspect', 'api')) as { endpointVips: { network: string; addr: string }[] };
  const nets = JSON.parse(await ok('network', 'ls', '--format', 'json')) as { id: string; name: string }[];
  const front = nets.find((n) => n.name === 'front')!.id;
  const back = nets.find((n) => n.name === 'back')!.id;
  const db = (await tasksOn('back', 'db'))[0]!;
  t.equal((await dig(web[0]!.netns, 'db')).status, 'NXDOMAIN', 'front task cannot see db (back only)');
  t.same((await dig(web[0]!.netns, 'api')).answers, [api.endpointVips.find((v) => v.network === front)!.addr], 'front task: api -> its front VIP');
  await until('db sees api', 5000, async () => ((await dig(db.netns, 'api')).answers.length ? true : undefined));
  t.same((await dig(db.netns, 'api')).answers, [api.endpointVips.find((v) => v.network === back)!.addr], 'back task: api -> its back VIP');
  t.equal((await dig(db.netns, 'web')).status, 'NXDOMAIN', 'back task cannot see web');
});

t.test('a 100-replica dnsrr answer is truncated over UDP and complete over TCP', async (t) => {
  const w = web[0]!;
  await until('100 big tasks known', 60_000, async () => ((await dig(w.netns, '+tcp', 'big')).answers.length === 100 ? true : undefined));
  const udp = await dig(w.netns, '+ignore', '+noedns', 'big');
  t.match(udp.flags, /\btc\b/, 'UDP answer (512 bytes) has TC set');
  const auto = await dig(w.netns, '+noedns', 'big');
  t.equal(auto.answers.length, 100, 'dig retries over TCP and gets all 100');
});

t.test('other names go to the upstream; a dead upstream gives SERVFAIL fast and never stalls cluster names', async (t) => {
  const w = web[1]!;
  t.same((await dig(w.netns, 'hello.test')).answers, ['192.0.2.1'], 'forwarded to the test resolver');
  t.ok(resolver.seen.udp.includes('hello.test'), 'the resolver saw it');
  const big = await dig(w.netns, 'big.test');
  t.equal(big.answers.length, 60, 'an upstream answer with TC is retried over TCP');
  const node = w.node;
  await call({ socketPath: nodeSocketPath(`${prefix}-${node}`), display: node }, 'POST', '/v1/local/dns/upstreams', { upstreams: [`${base}.250:53`] });
  try {
    const t0 = Date.now();
    const r = await dig(w.netns, 'nowhere.test');
    const ms = Date.now() - t0;
    t.equal(r.status, 'SERVFAIL', `dead upstream -> SERVFAIL in ${ms} ms`);
    t.ok(ms < 2500, 'quickly (dig itself waits up to 2 s)');
    const t1 = Date.now();
    t.same((await dig(w.netns, 'web')).answers, [vip], 'cluster names still answered');
    t.ok(Date.now() - t1 < 500, `in ${Date.now() - t1} ms`);
  } finally {
    await call({ socketPath: nodeSocketPath(`${prefix}-${node}`), display: node }, 'POST', '/v1/local/dns/upstreams', { upstreams: [`${resolver.address}:${resolver.port}`] });
  }
});

t.test('freshness: a new replica appears and a stopped one leaves on every node within the gossip budget', async (t) => {
  await ok('service', 'scale', 'web=4', '--detach');
  const now = await (async () => {
    for (let i = 0; i < 100; i++) {
      const l = await tasksOn('front', 'web');
      if (l.length === 4) return l;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no 4th web task');
  })();
  const ips = now.map((x) => x.ip).sort();
  const t0 = Date.now();
  for (const w of web) await until(`4 in tasks.web on ${w.node}`, 5000, async () => (JSON.stringify((await dig(w.netns, 'tasks.web')).answers) === JSON.stringify(ips) ? true : undefined));
  t.pass(`new replica in DNS on every node ${Date.now() - t0} ms after it ran`);
  await ok('service', 'scale', 'web=3');
  const left = await (async () => {
    for (let i = 0; i < 100; i++) {
      const l = await tasksOn('front', 'web');
      if (l.length === 3) return l;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('still 4');
  })();
  const ips3 = left.map((x) => x.ip).sort();
  const t1 = Date.now();
  const watchers = (await tasksOn('front', 'rr')).slice(0, 3);
  for (const w of watchers) await until(`3 in tasks.web on ${w.node}`, 5000, async () => (JSON.stringify((await dig(w.netns, 'tasks.web')).answers) === JSON.stringify(ips3) ? true : undefined));
  t.pass(`stopped replica left DNS on every node ${Date.now() - t1} ms after it stopped`);
});
