// The outside probe against real listeners: two "replicas" (the built-in workload, HTTP and UDP) in
// throwaway namespaces behind veths, probed from the root namespace as an outside client would;
// plus the ways a probe must fail: a closed port (refused) and a firewalled one (timeout).
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempNetns, uniqueName } from '../../helpers/netns.js';
import { probe, probeUntil, parseTargets } from '../../probe/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const WORKLOAD = path.join(REPO, 'bin', 'workload.js');
const CLI = path.join(REPO, 'dist', 'test', 'probe', 'cli.js');
// 198.18.201.0/24: this test's underlay, a /30 per namespace (host side .4i+1, namespace .4i+2).
const NET = '198.18.201';

interface Replica {
  ns: string;
  addr: string;
  hostAddr: string;
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

function replicaNs(t: Teardown, i: number): Replica {
  const ns = tempNetns(t, 'p');
  const host = uniqueName('ph');
  const hostAddr = `${NET}.${4 * i + 1}`;
  const addr = `${NET}.${4 * i + 2}`;
  const ip = (...a: string[]): void => void execFileSync('ip', a);
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  t.teardown(() => void spawnSync('ip', ['link', 'del', host])); // gone with the namespace too; belt and braces
  ip('addr', 'add', `${hostAddr}/30`, 'dev', host);
  ip('link', 'set', host, 'up');
  ip('-n', ns, 'addr', 'add', `${addr}/30`, 'dev', 'eth0');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
  return { ns, addr, hostAddr };
}

function startWorkload(t: Teardown, ns: string, kind: 'http' | 'udp', port: number, name: string): Promise<void> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, WORKLOAD, kind, '--port', String(port), '--name', name], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (c) => reject(new Error(`workload ${name} exited with ${c}`)));
    setTimeout(() => reject(new Error(`workload ${name} did not start`)), 10_000).unref();
  });
}

t.test('probes real listeners from outside', async (t) => {
  const reps = [replicaNs(t, 0), replicaNs(t, 1)];
  await Promise.all(reps.flatMap((r, i) => [startWorkload(t, r.ns, 'http', 8080, `web.${i + 1}`), startWorkload(t, r.ns, 'udp', 9000, `echo.${i + 1}`)]));
  const targets = parseTargets(reps.map((r, i) => `n${i + 1}=${r.addr}`), 8080);

  const http = await probe({ proto: 'http', targets, count: 20, timeoutMs: 2000, criteria: { minSuccess: 1, minReplicas: 1 } });
  t.ok(http.overall.pass, 'every HTTP attempt answered');
  t.same(http.targets.map((x) => x.replicas), [{ 'web.1': 20 }, { 'web.2': 20 }], 'each node answered with its own replica');
  t.same(http.targets.map((x) => x.replicaIps), [[reps[0]!.addr], [reps[1]!.addr]], 'the replica saw the request arrive on its address');
  t.same(http.overall.replicas, { 'web.1': 20, 'web.2': 20 });
  t.equal(http.overall.evenness, 1);
  t.ok(http.overall.latencyMs && http.overall.latencyMs.p99 < 2000 && http.overall.latencyMs.p50 > 0, 'latency percentiles measured');

  const udp = await probe({ proto: 'udp', targets: parseTargets(reps.map((r) => r.addr), 9000), count: 10, timeoutMs: 2000 });
  t.ok(udp.overall.pass, 'every UDP request got its echo');
  t.same(udp.overall.replicas, { 'echo.1': 10, 'echo.2': 10 });

  const tcp = await probe({ proto: 'tcp', targets, count: 5, timeoutMs: 2000 });
  t.ok(tcp.overall.pass, 'TCP connects');

  // A replica count the deployment does not have must fail (a test that cannot fail is a defect).
  const tooMany = await probe({ proto: 'http', targets, count: 5, timeoutMs: 2000, criteria: { minReplicas: 2 } });
  t.notOk(tooMany.overall.pass, 'asking for 2 replicas behind each node fails');
});

t.test('failures are counted by cause', async (t) => {
  const [open, walled] = [replicaNs(t, 2), replicaNs(t, 3)];
  await startWorkload(t, open.ns, 'http', 8080, 'only');
  // The second namespace drops everything that comes in: silence, not a refusal.
  execFileSync('ip', ['netns', 'exec', walled.ns, 'nft', '-f', '-'], { input: 'table inet mtdrop { chain in { type filter hook input priority 0; policy drop; }; }\n' });
  const refused = await probe({ proto: 'http', targets: parseTargets([`${open.addr}:8081`]), count: 3, timeoutMs: 1000 });
  t.same(refused.targets[0]!.errors, { refused: 3 });
  t.notOk(refused.overall.pass);
  const udpRefused = await probe({ proto: 'udp', targets: parseTargets([`${open.addr}:9999`]), count: 2, timeoutMs: 1000 });
  t.same(udpRefused.targets[0]!.errors, { refused: 2 }, 'ICMP port unreachable surfaces as a refusal');
  const silent = await probe({ proto: 'tcp', targets: parseTargets([`${walled.addr}:8080`]), count: 2, timeoutMs: 300 });
  t.same(silent.targets[0]!.errors, { timeout: 2 });
  const partial = await probe({ proto: 'http', targets: parseTargets([`${open.addr}:8080`]), count: 4, timeoutMs: 1000, criteria: { minSuccess: 0.5 } });
  t.ok(partial.overall.pass, 'a threshold below 1 is honoured');
  // probeUntil gives up at its deadline with the failing report.
  const t0 = Date.now();
  const never = await probeUntil({ proto: 'tcp', targets: parseTargets([`${open.addr}:8082`]), count: 1, timeoutMs: 200 }, 1500, 200);
  t.notOk(never.overall.pass);
  t.ok(Date.now() - t0 < 4000, 'and does not overrun its deadline by much');
});

t.test('the CLI: table, JSON and exit codes', async (t) => {
  const r = replicaNs(t, 4);
  await startWorkload(t, r.ns, 'http', 8080, 'cli.1');
  const run = (...args: string[]): { code: number | null; out: string } => {
    const p = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { code: p.status, out: p.stdout + p.stderr };
  };
  const table = run('--port', '8080', '-n', '5', `n1=${r.addr}`);
  t.equal(table.code, 0, table.out);
  t.match(table.out, /n1\s+198\.18\.201\.18:8080\/http\s+5\/5\s+100%.*PASS/);
  t.match(table.out, /cli\.1\s+5/);
  const json = run('--port', '8080', '-n', '3', '--format', 'json', `${r.addr},${r.addr}:8089`);
  t.equal(json.code, 1, 'one dead target: exit 1');
  const rep = JSON.parse(json.out) as { targets: { ok: number; errors: Record<string, number> }[] };
  t.same(rep.targets.map((x) => x.ok), [3, 0]);
  t.same(rep.targets[1]!.errors, { refused: 3 });
  t.equal(run('--proto', 'sctp', r.addr).code, 2, 'usage errors: exit 2');
  t.equal(run(r.addr).code, 2, 'no port anywhere: exit 2');
});
