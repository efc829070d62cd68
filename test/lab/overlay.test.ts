// Overlay networks across real meshd processes in the namespace lab: tasks on three nodes reach each
// other over VXLAN (TCP and full-size DF pings), other networks are isolated, egress works, the
// kernel's FDB and neighbour tables follow the tasks, overlay health names a blocked UDP 4789, and a
// restarted meshd adopts the dataplane without touching it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { killNetnsProcesses, nodeSocketPath, startNodeDaemon } from '../../control/lab/daemons.js';
import { cli, okOn, onNode, until, WORKLOAD, type Res } from '../helpers/lab.js';

const prefix = `mt${process.pid % 100000}o`;
const base = `198.19.${100 + (process.pid % 30)}`;
const NODES = ['n1', 'n2', 'n3'];
const workload = WORKLOAD;
const on = (n: string, ...args: string[]): Promise<Res> => onNode(prefix, n, ...args);
const ok = (n: string, ...args: string[]): Promise<string> => okOn(prefix, n, ...args);

/** Runs a command inside a namespace; never throws (the result says how it went). */
function inNs(ns: string, argv: string[], timeoutMs = 5000): Res {
  try {
    const stdout = execFileSync('ip', ['netns', 'exec', ns, ...argv], { timeout: timeoutMs, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { code: x.status ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

interface Task {
  id: string;
  node: string; // n1..n3
  netns: string;
  ip: string;
}

const nodeIds = new Map<string, string>(); // node id -> n1..

async function tasksOn(network: string, service: string): Promise<Task[]> {
  const info = JSON.parse(await ok('n1', 'network', 'inspect', network)) as { tasks: { task: string; service: string; node: string; state: string; addresses: string[] }[] }[];
  return info[0]!.tasks
    .filter((x) => x.service === service && x.state === 'running')
    .map((x) => {
      const n = nodeIds.get(x.node)!;
      return { id: x.task, node: n, netns: `${prefix}-${n}-t-${x.task.slice(0, 12)}`, ip: x.addresses[0]! };
    });
}

function vniOf(network: string): Promise<number> {
  return ok('n1', 'network', 'inspect', network).then((s) => (JSON.parse(s) as { allocated: { vni: number } }[])[0]!.allocated.vni);
}

function kernelView(node: string, vni: number): { fdb: Set<string>; neigh: Set<string> } {
  const ns = `${prefix}-${node}-ov-${vni}`;
  const fdb = inNs(ns, ['bridge', '-j', 'fdb', 'show', 'dev', `vx-${vni}`]);
  const neigh = inNs(ns, ['ip', '-j', 'neigh', 'show', 'dev', `vx-${vni}`]);
  if (fdb.code !== 0 || neigh.code !== 0) return { fdb: new Set(), neigh: new Set() };
  const f = (JSON.parse(fdb.stdout) as { mac: string; dst?: string }[]).filter((e) => e.dst).map((e) => `${e.mac}>${e.dst}`);
  const n = (JSON.parse(neigh.stdout) as { dst: string; lladdr: string; state: string[] }[]).filter((e) => e.state.includes('PERMANENT')).map((e) => `${e.dst}=${e.lladdr}`);
  return { fdb: new Set(f), neigh: new Set(n) };
}

const macOf = (ip: string): string => ['02', '42', ...ip.split('.').map((p) => Number(p).toString(16).padStart(2, '0'))].join(':');
const addrOfNode = (n: string): string => `${base}.${10 + Number(n.slice(1))}`;

interface HealthRow {
  node: string;
  state: string;
  detail: string;
}

async function health(n: string): Promise<HealthRow[]> {
  return (JSON.parse(await ok(n, 'mesh', 'status', '--format', 'json')) as { overlay: HealthRow[] }).overlay;
}

t.before(async () => {
  const r = await cli(['lab', 'up', '--prefix', prefix, '--subnet', `${base}.0/24`, '--nodes', '3', '--managers', '1'], 120_000);
  if (r.code !== 0) throw new Error(`lab up: ${r.stderr}`);
  const nodes = JSON.parse(await ok('n1', 'node', 'ls', '--format', 'json')) as { id: string; hostname: string }[];
  for (const n of nodes) nodeIds.set(n.id, n.hostname);
  await ok('n1', 'network', 'create', 'app');
  await ok('n1', 'network', 'create', 'other');
  const cmd = `${workload} http --port 80`;
  await ok('n1', 'service', 'create', '--name', 'web', '--replicas', '3', '--network', 'app', '--command', cmd);
  await ok('n1', 'service', 'create', '--name', 'iso', '--replicas', '1', '--network', 'other', '--command', cmd);
  await ok('n1', 'service', 'create', '--name', 'both', '--replicas', '1', '--network', 'app', '--network', 'other', '--command', cmd);
});

t.teardown(async () => {
  await cli(['lab', 'down', '--prefix', prefix]);
});

t.test('tasks on three nodes reach each other over VXLAN: TCP, and 1400-byte pings with DF set', async (t) => {
  const web = await tasksOn('app', 'web');
  t.equal(new Set(web.map((x) => x.node)).size, 3, 'one web task per node');
  for (const a of web) {
    for (const b of web) {
      if (a === b) continue;
      // FDB entries arrive by gossip: allow the budget, then it must hold.
      await until(`ping ${a.node} -> ${b.node}`, 5000, () => (inNs(a.netns, ['ping', '-c1', '-W1', '-M', 'do', '-s', '1400', b.ip]).code === 0 ? true : undefined));
      const http = inNs(a.netns, [process.execPath, '-e', `require('http').get('http://${b.ip}/',r=>{let d='';r.on('data',c=>d+=c);r.on('end',()=>{console.log(d);process.exit(0)})}).on('error',e=>{console.error(e.message);process.exit(1)})`]);
      t.equal(http.code, 0, `TCP ${a.node} -> ${b.node} (${b.ip}): ${http.stderr}`);
      t.match(JSON.parse(http.stdout || '{}'), { ip: b.ip, remote: a.ip }, 'answered by the right task, client address kept');
    }
  }
  const big = inNs(web[0]!.netns, ['ping', '-c1', '-W1', '-M', 'do', '-s', '1423', web[1]!.ip]);
  t.not(big.code, 0, 'a frame above the overlay MTU (underlay 1500 - 50) is refused with DF');
});

t.test('networks are isolated; a task on two networks reaches both; egress leaves through the node', async (t) => {
  const web = await tasksOn('app', 'web');
  const iso = (await tasksOn('other', 'iso'))[0]!;
  const both = (await tasksOn('app', 'both'))[0]!;
  const bothOther = (await tasksOn('other', 'both'))[0]!;
  for (const w of web) {
    t.not(inNs(iso.netns, ['ping', '-c1', '-W1', w.ip]).code, 0, `other -> app ${w.ip} blocked`);
    t.not(inNs(w.netns, ['ping', '-c1', '-W1', iso.ip]).code, 0, `app ${w.node} -> other blocked`);
  }
  await until('both -> web', 5000, () => (inNs(both.netns, ['ping', '-c1', '-W1', web[0]!.ip]).code === 0 ? true : undefined));
  await until('both -> iso', 5000, () => (inNs(both.netns, ['ping', '-c1', '-W1', iso.ip]).code === 0 ? true : undefined));
  t.pass(`task on both networks (${both.ip}, ${bothOther.ip}) reaches each`);
  // The lab's host side is outside the cluster: reaching it is egress (masqueraded to the node).
  for (const w of web) t.equal(inNs(w.netns, ['ping', '-c1', '-W2', `${base}.1`]).code, 0, `egress from ${w.node}`);
  const routes = inNs(web[0]!.netns, ['ip', '-j', 'route', 'show', 'default']);
  t.match(JSON.parse(routes.stdout), [{ dst: 'default', dev: 'gw0' }], 'default route through the egress interface');
});

t.test('FDB and neighbour entries follow the tasks on every node, within the gossip budget', async (t) => {
  const vni = await vniOf('app');
  const expect = async (): Promise<Map<string, Task[]>> => {
    const all = [...(await tasksOn('app', 'web')), ...(await tasksOn('app', 'both'))];
    // a node without a task on the network has no sandbox for it (and so no entries)
    return new Map(NODES.map((n) => [n, all.some((x) => x.node === n) ? all.filter((x) => x.node !== n) : []]));
  };
  const matches = (n: string, remote: Task[]): boolean => {
    const k = kernelView(n, vni);
    const fdb = new Set(remote.map((x) => `${macOf(x.ip)}>${addrOfNode(x.node)}`));
    const neigh = new Set(remote.map((x) => `${x.ip}=${macOf(x.ip)}`));
    return [...fdb].every((e) => k.fdb.has(e)) && k.fdb.size === fdb.size && [...neigh].every((e) => k.neigh.has(e)) && k.neigh.size === neigh.size;
  };
  const want = await expect();
  for (const n of NODES) await until(`kernel state on ${n}`, 5000, () => (matches(n, want.get(n)!) ? true : undefined));
  t.pass('each node holds exactly the remote endpoints: static FDB (MAC -> VTEP) and permanent neighbours');

  const before = await tasksOn('app', 'web');
  await ok('n1', 'service', 'scale', 'web=2');
  const after = await until('scale down', 10_000, async () => {
    const l = await tasksOn('app', 'web');
    return l.length === 2 ? l : undefined;
  });
  const gone = before.find((b) => !after.value.some((a) => a.id === b.id))!;
  const t0 = Date.now();
  const want2 = await expect();
  for (const n of NODES) {
    await until(`entries of the removed task gone on ${n}`, 5000, () => (matches(n, want2.get(n)!) ? true : undefined));
    const k = kernelView(n, vni);
    t.notOk(k.neigh.has(`${gone.ip}=${macOf(gone.ip)}`), `${n}: neighbour of ${gone.ip} removed`);
  }
  t.pass(`removed task's FDB and neighbour entries left every node ${Date.now() - t0} ms after it stopped`);
  // No flooding: no all-zero FDB entry anywhere
  for (const n of NODES) t.notOk([...kernelView(n, vni).fdb].some((e) => e.startsWith('00:00:00:00:00:00')), `${n}: no flood entry`);
});

t.test('blocking UDP 4789 on a node shows in mesh status within 10 s, and clearing it too', async (t) => {
  await until('all paths healthy', 15_000, async () => ((await health('n1')).length === 2 && (await health('n1')).every((h) => h.state === 'ok') ? true : undefined));
  execFileSync('ip', ['netns', 'exec', `${prefix}-n3`, 'nft', '-f', '-'], { input: 'table inet mtblock {\n chain input_drop { type filter hook input priority 0; udp dport 4789 drop; }\n}\n' });
  try {
    const r = await until('n3 reported broken', 10_000, async () => (await health('n1')).find((h) => h.node === 'n3' && h.state === 'broken'));
    t.match(r.value.detail, /UDP 4789/, `reported in ${r.ms} ms: ${r.value.detail}`);
    t.equal((await health('n1')).find((h) => h.node === 'n2')?.state, 'ok', 'the other path stays healthy');
    const text = await ok('n1', 'mesh', 'status');
    t.match(text, /gossip up, VXLAN path to n3 broken \(UDP 4789 blocked\?\)/, 'the table view says it in words');
  } finally {
    execFileSync('ip', ['netns', 'exec', `${prefix}-n3`, 'nft', 'delete', 'table', 'inet', 'mtblock']);
  }
  const healed = await until('n3 healthy again', 10_000, async () => (await health('n1')).find((h) => h.node === 'n3' && h.state === 'ok'));
  t.pass(`healthy again ${healed.ms} ms after the rule went`);
});

t.test('an idle node runs no networking pass per heartbeat (each reply carries the same view)', async (t) => {
  const passes = async (n: string): Promise<number> => (JSON.parse(await ok(n, 'mesh', 'status', '--format', 'json')) as { dataplane: { passes: number } }).dataplane.passes;
  // settled: no task starting, no gossip change for a while
  await until('the cluster idles', 30_000, async () => {
    const a = await Promise.all(NODES.map(passes));
    await new Promise((r) => setTimeout(r, 2000));
    const b = await Promise.all(NODES.map(passes));
    return a.every((x, i) => x === b[i]) ? true : undefined;
  });
  const before = await Promise.all(NODES.map(passes));
  await new Promise((r) => setTimeout(r, 6000)); // 6 heartbeats (1 s period)
  const after = await Promise.all(NODES.map(passes));
  // A pass per heartbeat was most of an idle node's CPU: 6 here. One may still come from the
  // 30 s drift resync.
  NODES.forEach((n, i) => t.ok(after[i]! - before[i]! <= 1, `${n}: ${after[i]! - before[i]!} passes in 6 idle seconds`));
});

t.test('a restarted meshd adopts the dataplane (zero kernel writes); after kill -9 stale objects go', async (t) => {
  const ns = `${prefix}-n2`;
  const sock = nodeSocketPath(ns);
  const dataplane = async (): Promise<{ passes: number; writes: number }> => (JSON.parse(await ok('n2', 'mesh', 'status', '--format', 'json')) as { dataplane: { passes: number; writes: number } }).dataplane;
  await killNetnsProcesses(ns, 'SIGTERM');
  await startNodeDaemon(ns, 'n2');
  t.ok(fs.existsSync(sock));
  // Let it settle (session, gossip sync, grace), then count.
  await until('restarted node reconciled', 15_000, async () => ((await dataplane()).passes >= 3 ? true : undefined));
  await new Promise((r) => setTimeout(r, 2500));
  const d = await dataplane();
  const log = fs.readFileSync(`/run/meshd/${ns}/meshd.log`, 'utf8').split('\n').filter((l) => /overlay:|egress:|networking:/.test(l)).slice(-6).join('\n');
  t.equal(d.writes, 0, `restart with nothing changed: ${d.passes} passes, ${d.writes} kernel writes${d.writes ? `\n${log}` : ''}`);
  const web = await tasksOn('app', 'web');
  const mine = web.find((x) => x.node === 'n2');
  const other = web.find((x) => x.node !== 'n2');
  if (mine && other) t.equal(inNs(mine.netns, ['ping', '-c1', '-W1', other.ip]).code, 0, 'adopted task still reaches the others');

  // kill -9, then leave litter a crashed daemon could have left: a stale sandbox and a stale egress veth
  await killNetnsProcesses(ns, 'SIGKILL');
  execFileSync('ip', ['netns', 'add', `${ns}-ov-9999`]);
  execFileSync('ip', ['-n', ns, 'link', 'add', 'mg00000000', 'type', 'veth', 'peer', 'name', 'mgpeer']);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'mg00000000', 'master', 'msh-gw']);
  await startNodeDaemon(ns, 'n2');
  await until('stale sandbox removed', 15_000, () => (fs.existsSync(`/run/netns/${ns}-ov-9999`) ? undefined : true));
  await until('stale egress veth removed', 15_000, () => (inNs(ns, ['ip', 'link', 'show', 'mg00000000']).code !== 0 ? true : undefined));
  t.pass('stale sandbox and veth removed after kill -9 and restart');
  // after kill -9 the peers may have declared n2 dead and dropped its entries: they come back when it rejoins
  if (mine && other) await until('adopted task reachable after kill -9', 20_000, () => (inNs(mine.netns, ['ping', '-c1', '-W1', other.ip]).code === 0 ? true : undefined));
});

t.test('attachable networks: a standalone task joins one (not another), is reachable and resolvable, and goes with rm', async (t) => {
  const refused = await on('n3', 'run', '--network', 'app', '--', '/bin/sleep', '1000');
  t.not(refused.code, 0, 'a network made without --attachable refuses standalone tasks');
  t.match(refused.stderr, /not attachable.*--attachable/, refused.stderr.trim());
  await ok('n1', 'network', 'create', '--attachable', 'att');
  await ok('n1', 'service', 'create', '--name', 'svc-att', '--replicas', '1', '--network', 'att', '--constraint', 'node.hostname==n1', '--command', `${workload} http --port 80`);
  const out = await ok('n3', 'run', '--network', 'att', '--name', 'probe', '--format', 'json', '--', workload, 'http', '--port', '80');
  const v = JSON.parse(out) as { id: string; state: string; networks: { addresses: string[] }[] };
  t.equal(v.state, 'running', 'runs on the node that asked (a worker)');
  const ip = v.networks[0]!.addresses[0]!;
  const svc = (await tasksOn('att', 'svc-att'))[0]!;
  await until('service task reaches the standalone task', 5000, () => (inNs(svc.netns, ['ping', '-c1', '-W1', ip]).code === 0 ? true : undefined));
  const dig = inNs(svc.netns, ['dig', '@127.0.0.11', '+short', 'probe']);
  t.equal(dig.stdout.trim(), ip, 'its name resolves on the network');
  await ok('n3', 'rm', 'probe');
  await until('standalone task gone', 10_000, () => (fs.existsSync(`/run/netns/${prefix}-n3-t-${v.id.slice(0, 12)}`) ? undefined : true));
  await until('its endpoint gone', 5000, () => (inNs(svc.netns, ['dig', '@127.0.0.11', '+short', 'probe']).stdout.trim() === '' ? true : undefined));
  t.pass('removed, and its name and address left the network');
});
