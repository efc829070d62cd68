// The routing mesh in a 3-node lab of real meshd, probed from the lab's host side as an outside client
// would: an ingress port on every node (also one without a task) balanced over every replica, host
// mode only where a task runs, UDP, unpublish, and traffic moving to the others when a task or a
// whole node dies.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import { cli, okOn, onNode, until, WORKLOAD } from '../helpers/lab.js';

const prefix = `mt${process.pid % 100000}r`;
const base = `198.19.${190 + (process.pid % 10)}`;
const NODES = ['n1', 'n2', 'n3'];
const workload = WORKLOAD;
const ok = (...args: string[]): Promise<string> => okOn(prefix, 'n1', ...args);
const addr = (n: string): string => `${base}.${10 + Number(n.slice(1))}`;

/** One HTTP GET from the host side; resolves with the answering task's name, or an error string. */
function get(host: string, port: number, timeoutMs = 2000): Promise<{ task?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve({ task: (JSON.parse(body) as { task: string }).task });
        } catch {
          resolve({ error: `bad body ${body.slice(0, 80)}` });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.message }));
  });
}

function udp(host: string, port: number, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send(Buffer.from('ping'), port, host);
  });
}

t.before(async () => {
  const r = await cli(['lab', 'up', '--prefix', prefix, '--subnet', `${base}.0/24`, '--nodes', '3', '--managers', '1'], 120_000);
  if (r.code !== 0) throw new Error(`lab up: ${r.stderr}`);
  await ok('network', 'create', 'app');
  // two replicas, never on n1: n1 must still answer (the routing mesh)
  await ok('service', 'create', '--name', 'web', '--replicas', '2', '--network', 'app', '--constraint', 'node.hostname!=n1', '--publish', '8080:80', '--command', `${workload} http --port 80`);
});

t.teardown(async () => {
  await cli(['lab', 'down', '--prefix', prefix]);
});

t.test('an ingress port answers on every node, and 600 requests reach every replica fairly', async (t) => {
  for (const n of NODES) await until(`8080 on ${n}`, 10_000, async () => (await get(addr(n), 8080)).task);
  t.pass('every node answers, n1 runs no task');
  const count = new Map<string, number>();
  let failed = 0;
  for (let i = 0; i < 600; i++) {
    const r = await get(addr(NODES[i % 3]!), 8080);
    if (r.task) count.set(r.task, (count.get(r.task) ?? 0) + 1);
    else failed++;
  }
  t.equal(failed, 0, 'no request failed');
  t.equal(count.size, 2, `both replicas answered: ${JSON.stringify(Object.fromEntries(count))}`);
  for (const [task, n] of count) t.ok(n >= 150, `${task}: ${n} of 600 (fair share 300, at least half)`);
  const dbg = JSON.parse(await ok('debug', 'dataplane', 'web', '--format', 'json')) as { problems: string[]; ingress: { kernel: Record<string, number> | null }[]; hostDnat: string[] };
  t.same(dbg.problems, [], 'debug dataplane on n1 finds no problem');
  t.equal(Object.keys(dbg.ingress[0]?.kernel ?? {}).length, 2, 'and reads both backends back from the kernel');
  t.equal(dbg.hostDnat.length, 1, 'and the node DNAT of 8080');
});

t.test('host mode answers only on nodes with a task; a taken port is refused naming its owner', async (t) => {
  await ok('service', 'create', '--name', 'hostsvc', '--replicas', '1', '--constraint', 'node.hostname==n2', '--publish', 'published=9090,target=80,mode=host', '--command', `${workload} http --port 80`);
  await until('9090 on n2', 10_000, async () => (await get(addr('n2'), 9090)).task);
  for (const n of ['n1', 'n3']) t.ok((await get(addr(n), 9090, 1000)).error, `${n} (no task) does not answer 9090`);
  const clash = await onNode(prefix, 'n1', 'service', 'create', '--name', 'clash', '--publish', '8080:80', '--command', '/bin/true');
  t.not(clash.code, 0);
  t.match(clash.stderr, /8080\/tcp is already published by service "web"/, clash.stderr.trim());
});

t.test('UDP published in ingress mode works on every node', async (t) => {
  await ok('service', 'create', '--name', 'echo', '--replicas', '1', '--network', 'app', '--publish', '5353:9000/udp', '--command', `${workload} udp --port 9000`);
  for (const n of NODES) {
    const r = await until(`udp on ${n}`, 10_000, () => udp(addr(n), 5353));
    t.match(JSON.parse(r.value), { echo: 'ping' }, `${n}: ${r.value.slice(0, 60)}`);
  }
});

t.test('a killed task: traffic moves to the other replica, no failure after the budget', async (t) => {
  const ps = JSON.parse(await ok('service', 'ps', 'web', '--format', 'json')) as { id: string; node: string; desiredState: string; state: string }[];
  const victim = ps.find((x) => x.desiredState === 'running' && x.state === 'running')!;
  const ns = `${prefix}-${victim.node}-t-${victim.id.slice(0, 12)}`;
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  for (const p of pids) process.kill(Number(p), 'SIGKILL');
  const t0 = Date.now();
  let lastFail = 0;
  let fails = 0;
  while (Date.now() - t0 < 8000) {
    const r = await get(addr(NODES[Math.floor(Math.random() * 3)]!), 8080, 1000);
    if (r.error) {
      fails++;
      lastFail = Date.now() - t0;
    }
  }
  t.ok(lastFail < 5000, `${fails} requests failed, the last ${lastFail} ms after the kill (budget 5 s)`);
  let after = 0;
  for (let i = 0; i < 60; i++) if ((await get(addr(NODES[i % 3]!), 8080)).error) after++;
  t.equal(after, 0, 'then every request succeeds');
});

t.test('unpublish closes the port everywhere', async (t) => {
  await ok('service', 'scale', 'web=0');
  const dbg = JSON.parse(await ok('debug', 'dataplane', 'web', '--format', 'json')) as { problems: string[] };
  t.match(dbg.problems.join('\n'), /no task of "web" is running/, 'with no replica, debug dataplane says why the port refuses');
  await ok('service', 'scale', 'web=2');
  await ok('publish', '--rm', 'web', '8080');
  for (const n of NODES) await until(`8080 closed on ${n}`, 10_000, async () => ((await get(addr(n), 8080, 1000)).error ? true : undefined));
  t.pass('no node answers 8080 any more');
  await ok('publish', 'web', '8081:80');
  for (const n of NODES) await until(`8081 on ${n}`, 20_000, async () => (await get(addr(n), 8081)).task);
  t.pass('meshctl publish opens a new one on every node');
});

t.test('a node dies (meshd and tasks killed, link down; last: the lab keeps a dead node): the others stop sending to it within the budget', async (t) => {
  const running = (): Promise<{ id: string; node: string }[]> =>
    ok('service', 'ps', 'web', '--format', 'json').then((o) => (JSON.parse(o) as { id: string; node: string; desiredState: string; state: string }[]).filter((x) => x.desiredState === 'running' && x.state === 'running'));
  const before = await until('2 web replicas running', 20_000, async () => {
    const r = await running();
    return r.length === 2 ? r : undefined;
  });
  const nodes = [...new Set(before.value.map((x) => x.node))];
  t.equal(nodes.length, 2, `the replicas are spread over two nodes (${nodes.join(', ')})`);
  const victim = nodes.find((n) => n !== 'n1')!;
  // both replicas take traffic (the republish's task replacement is over) before the node dies
  await until('both replicas answer', 30_000, async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await get(addr('n1'), 8081);
      if (r.task) seen.add(r.task);
    }
    return seen.size === 2 ? true : undefined;
  });
  const alive = NODES.filter((n) => n !== victim);
  // What a power cut looks like from outside: every process of the node gone (its meshd and its
  // tasks), and its underlay link down, so nothing answers or resets for it.
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n === `${prefix}-${victim}` || n.startsWith(`${prefix}-${victim}-`));
  for (const ns of netns) {
    for (const p of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)) process.kill(Number(p), 'SIGKILL');
  }
  execFileSync('ip', ['-n', `${prefix}-ul`, 'link', 'set', victim, 'down']);
  const t0 = Date.now();
  let lastFail = 0;
  let fails = 0;
  let sent = 0;
  const causes = new Map<string, number>();
  while (Date.now() - t0 < 16_000) {
    const r = await get(addr(alive[sent++ % alive.length]!), 8081, 1000);
    if (r.error) {
      fails++;
      lastFail = Date.now() - t0;
      causes.set(r.error, (causes.get(r.error) ?? 0) + 1);
    }
  }
  // The budget: the managers mark a silent node down after 3 missed 1 s heartbeats, and every node
  // drops its endpoints at its next heartbeat reply (<= 1 s); gossip declaring it dead (suspicion,
  // which stretches under load) does the same if it comes first. 8 s leaves room for a loaded machine.
  t.ok(lastFail < 8000, `${fails} of ${sent} requests failed, the last ${lastFail} ms after the node died (budget 8 s)`);
  t.comment(`node ${victim} killed: ${fails} of ${sent} requests failed, the last ${lastFail} ms after (${JSON.stringify(Object.fromEntries(causes))})`);
  let after = 0;
  for (let i = 0; i < 60; i++) if ((await get(addr(alive[i % alive.length]!), 8081)).error) after++;
  t.equal(after, 0, `then every request through ${alive.join(' and ')} succeeds`);
  const dbg = JSON.parse(await ok('debug', 'dataplane', 'web', '--format', 'json')) as { ingress: { kernel: Record<string, number> | null }[] };
  t.ok(Object.keys(dbg.ingress[0]?.kernel ?? {}).length >= 1, `n1's ingress backends: ${JSON.stringify(dbg.ingress[0]?.kernel)}`);
  const replaced = await until('a replacement replica runs', 20_000, async () => {
    const r = await running();
    return r.length === 2 && r.every((x) => x.node !== victim) ? r : undefined;
  });
  t.pass(`the managers replaced the lost replica (now on ${replaced.value.map((x) => x.node).join(', ')})`);
});
