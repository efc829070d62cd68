// Managers and workers as real meshd processes in the namespace lab: kill leaders, lose and restore
// quorum, restart from the WAL, notice dead workers. Everything through meshctl, as a user would.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { killNetnsProcesses, nodeSocketPath, startNodeDaemon } from '../../control/lab/daemons.js';

const meshctl = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/meshctl.js');
const tag = process.pid % 100000;

interface Res {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(args: string[], timeoutMs = 60_000): Promise<Res> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [meshctl, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

interface NodeRow {
  id: string;
  hostname: string;
  status: string;
  managerStatus: string;
}

class Lab {
  constructor(
    readonly prefix: string,
    readonly subnet: string,
  ) {}
  ns(n: string): string {
    return `${this.prefix}-${n}`;
  }
  on(n: string, ...args: string[]): Promise<Res> {
    return cli(['-H', `unix://${nodeSocketPath(this.ns(n))}`, ...args]);
  }
  async nodes(n: string): Promise<NodeRow[]> {
    const r = await this.on(n, 'node', 'ls', '--format', 'json');
    if (r.code !== 0) throw new Error(`node ls on ${n}: ${r.stderr}`);
    return JSON.parse(r.stdout) as NodeRow[];
  }
  async leader(n: string): Promise<string> {
    const l = (await this.nodes(n)).find((x) => x.managerStatus === 'Leader');
    if (!l) throw new Error('no leader in node ls');
    return l.hostname;
  }
  kill(n: string): Promise<number> {
    return killNetnsProcesses(this.ns(n));
  }
  /** Polls a write (a label on the node itself) through `via` until it succeeds; returns ms taken. */
  async writeUntilOk(via: string, label: string, budgetMs: number): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const r = await this.on(via, 'node', 'update', '--label-add', label, via);
      if (r.code === 0) return Date.now() - t0;
      if (Date.now() - t0 > budgetMs) throw new Error(`no write through ${via} within ${budgetMs} ms: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

async function up(t: Test, name: string, nodes: number, managers: number, third: number): Promise<Lab> {
  const lab = new Lab(`mt${tag}${name}`, `198.19.${third}.0/24`);
  const r = await cli(['lab', 'up', '--prefix', lab.prefix, '--subnet', lab.subnet, '--nodes', String(nodes), '--managers', String(managers)], 120_000);
  t.teardown(async () => {
    await cli(['lab', 'down', '--prefix', lab.prefix]);
  });
  if (r.code !== 0) throw new Error(`lab up: ${r.stderr}${r.stdout}`);
  return lab;
}

t.test('3 managers: kill the leader, a new one is elected and writes continue; lose quorum, get a clear error; force-new-cluster keeps the data', async (t) => {
  const lab = await up(t, 'a', 3, 3, 41);
  const nodes = await lab.nodes('n1');
  t.equal(nodes.length, 3);
  t.ok(nodes.every((n) => n.status === 'Ready'), 'all Ready');
  t.equal(nodes.filter((n) => n.managerStatus === 'Leader').length, 1, 'one leader');
  t.equal(nodes.filter((n) => n.managerStatus === 'Reachable').length, 2);

  const first = await lab.leader('n1');
  const survivors = ['n1', 'n2', 'n3'].filter((n) => n !== first);
  await lab.writeUntilOk(survivors[0]!, 'before=1', 5000);
  await lab.kill(first);
  const failover = await lab.writeUntilOk(survivors[0]!, 'after=1', 15_000);
  t.ok(failover < 15_000, `a write succeeded ${failover} ms after killing the leader`);
  t.comment(`failover: first write after killing the leader took ${failover} ms`);
  const second = await lab.leader(survivors[1]!);
  t.not(second, first, 'a new leader was elected');
  // A peer is Unreachable after two election timeouts without contact; a failover faster than that
  // can show it Reachable for a moment, so poll within a budget.
  let status: string | undefined;
  for (const until = Date.now() + 8000; Date.now() < until; await new Promise((res) => setTimeout(res, 200))) {
    status = (await lab.nodes(survivors[1]!)).find((n) => n.hostname === first)?.managerStatus;
    if (status === 'Unreachable') break;
  }
  t.equal(status, 'Unreachable', 'the killed leader shows Unreachable');

  // Lose quorum: 1 of 3 left. Writes must fail with a clear error, not hang.
  const last = survivors.find((n) => n !== second)!;
  await lab.kill(second);
  const w = await lab.on(last, 'node', 'update', '--label-add', 'noquorum=1', last);
  t.not(w.code, 0, 'the write fails');
  t.match(w.stderr, /lost quorum/);
  t.match(w.stderr, /force-new-cluster/);
  t.ok(w.ms < 15_000, `it failed in ${w.ms} ms, not a hang`);

  // The survivor restarts the cluster alone, with its data.
  const f = await lab.on(last, 'swarm', 'init', '--force-new-cluster');
  t.equal(f.code, 0, f.stderr);
  await lab.writeUntilOk(last, 'forced=1', 5000);
  const inspect = await lab.on(last, 'node', 'inspect', survivors[0]!);
  const labels = (JSON.parse(inspect.stdout) as { labels: Record<string, string> }).labels;
  t.match(labels, { before: '1', after: '1' }, 'writes from before the forced restart survive');
  t.match((await lab.nodes(last)).find((n) => n.hostname === last), { managerStatus: 'Leader' });
});

t.test('5 managers: lose two and keep working, lose a third and get a clear error', async (t) => {
  const lab = await up(t, 'b', 5, 5, 42);
  const all = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const nodes = await lab.nodes('n1');
  t.equal(nodes.filter((n) => n.managerStatus === 'Reachable' || n.managerStatus === 'Leader').length, 5);
  const leader = await lab.leader('n1');
  const follower = all.find((n) => n !== leader)!;
  await lab.kill(leader);
  await lab.kill(follower);
  const alive = all.filter((n) => n !== leader && n !== follower);
  const ms = await lab.writeUntilOk(alive[0]!, 'two-down=1', 15_000);
  t.comment(`with 2 of 5 managers dead, a write succeeded after ${ms} ms`);
  await lab.kill(alive[2]!);
  const w = await lab.on(alive[0]!, 'node', 'update', '--label-add', 'three-down=1', alive[0]!);
  t.not(w.code, 0);
  t.match(w.stderr, /2 of 5 managers reachable, 3 needed/);
});

t.test('a killed manager restarts from its WAL and catches up', async (t) => {
  const lab = await up(t, 'c', 3, 3, 43);
  const leader = await lab.leader('n1');
  const victim = ['n1', 'n2', 'n3'].find((n) => n !== leader)!;
  await lab.kill(victim);
  await lab.writeUntilOk(leader, 'while-down=1', 5000);
  await startNodeDaemon(lab.ns(victim), victim);
  // A linearizable read on the restarted manager sees the write it missed.
  const deadline = Date.now() + 15_000;
  let labels: Record<string, string> = {};
  while (Date.now() < deadline) {
    const r = await lab.on(victim, 'node', 'inspect', leader);
    if (r.code === 0) {
      labels = (JSON.parse(r.stdout) as { labels: Record<string, string> }).labels;
      if (labels['while-down']) break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  t.equal(labels['while-down'], '1');
  const view = await lab.nodes(victim);
  t.equal(view.filter((n) => n.managerStatus === 'Reachable' || n.managerStatus === 'Leader').length, 3, 'all three managers reachable again');
});

t.test('workers: a dead worker is marked Down within the heartbeat budget; bad tokens are refused', async (t) => {
  const lab = await up(t, 'd', 3, 1, 44);
  const nodes = await lab.nodes('n1');
  t.same(nodes.map((n) => [n.hostname, n.status, n.managerStatus]), [['n1', 'Ready', 'Leader'], ['n2', 'Ready', ''], ['n3', 'Ready', '']]);
  const t0 = Date.now();
  await lab.kill('n3');
  let downAfter = -1;
  while (Date.now() - t0 < 15_000) {
    if ((await lab.nodes('n1')).find((n) => n.hostname === 'n3')?.status === 'Down') {
      downAfter = Date.now() - t0;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(downAfter > 0 && downAfter < 5000, `n3 marked Down ${downAfter} ms after its meshd was killed (budget: 3 missed 1 s heartbeats)`);
  t.comment(`worker down detection: ${downAfter} ms`);
  // node rm of a down worker works; of a live one needs --force.
  const rmLive = await lab.on('n1', 'node', 'rm', 'n2');
  t.not(rmLive.code, 0);
  t.match(rmLive.stderr, /is up .* --force/);
  t.equal((await lab.on('n1', 'node', 'rm', 'n3')).code, 0);
  t.notOk((await lab.nodes('n1')).some((n) => n.hostname === 'n3'));
  // Joining with a wrong token is refused with a clear error.
  const wrong = await cli(['-H', `unix://${nodeSocketPath(lab.ns('n2'))}`, 'swarm', 'leave']);
  t.equal(wrong.code, 0, wrong.stderr);
  const bad = await lab.on('n2', 'swarm', 'join', '--token', 'SWMTKN-1-' + 'a'.repeat(50) + '-' + 'b'.repeat(25), '198.19.44.11:2377');
  t.not(bad.code, 0);
  t.match(bad.stderr, /presented a CA whose digest is [0-9a-z]{50}, but the token pins a{50}/);
  const tok = (await lab.on('n1', 'swarm', 'join-token', 'worker', '-q')).stdout.trim();
  const forged = tok.replace(/-[0-9a-z]{25}$/, '-' + 'c'.repeat(25));
  const bad2 = await lab.on('n2', 'swarm', 'join', '--token', forged, '198.19.44.11:2377');
  t.match(bad2.stderr, /secret does not match/);
  // Rotating the worker token refuses the old one and accepts the new one.
  const rot = await lab.on('n1', 'swarm', 'join-token', 'worker', '--rotate', '-q');
  t.equal(rot.code, 0);
  t.match((await lab.on('n2', 'swarm', 'join', '--token', tok, '198.19.44.11:2377')).stderr, /secret does not match/);
  t.equal((await lab.on('n2', 'swarm', 'join', '--token', rot.stdout.trim(), '198.19.44.11:2377')).code, 0);
});

t.test('promote a worker to manager and demote it again', async (t) => {
  const lab = await up(t, 'e', 3, 1, 45);
  t.equal((await lab.on('n1', 'node', 'promote', 'n2')).code, 0);
  const deadline = Date.now() + 20_000;
  let row: NodeRow | undefined;
  while (Date.now() < deadline) {
    row = (await lab.nodes('n1')).find((n) => n.hostname === 'n2');
    if (row?.managerStatus === 'Reachable') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(row?.managerStatus, 'Reachable', 'n2 became a voting manager');
  // n2 now serves manager commands itself.
  const ls = await lab.on('n2', 'node', 'ls', '--format', 'json');
  t.equal(ls.code, 0, ls.stderr);
  t.equal((JSON.parse(ls.stdout) as NodeRow[]).length, 3);
  const info = JSON.parse((await lab.on('n2', 'node', 'inspect', 'n2')).stdout) as { role: string };
  t.equal(info.role, 'manager');
  // The last manager cannot be demoted; n2 can.
  const dem = await lab.on('n1', 'node', 'demote', 'n2');
  t.equal(dem.code, 0, dem.stderr);
  const until = Date.now() + 20_000;
  let refused = '';
  while (Date.now() < until) {
    const r = await lab.on('n2', 'node', 'ls');
    if (r.code !== 0 && /this node is a worker/.test(r.stderr)) {
      refused = r.stderr;
      break;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  t.match(refused, /this node is a worker/, 'n2 is a worker again');
  const last = await lab.on('n1', 'node', 'demote', 'n1');
  t.not(last.code, 0);
  t.match(last.stderr, /last manager/);
});

t.test('swarm init --dispatcher-heartbeat sets the period; swarm inspect shows it; swarm update changes it; workers learn it; bad values are refused', async (t) => {
  const lab = await up(t, 'h', 2, 0, 46);
  const bad = await lab.on('n1', 'swarm', 'init', '--dispatcher-heartbeat', '5');
  t.not(bad.code, 0);
  t.match(bad.stderr, /--dispatcher-heartbeat 5: use a duration like/, 'a number without a unit is refused, with an example');
  const tooShort = await lab.on('n1', 'swarm', 'init', '--dispatcher-heartbeat', '50ms');
  t.not(tooShort.code, 0);
  t.match(tooShort.stderr, /heartbeatPeriodMs/, 'below 100 ms is refused, naming the setting');
  const init = await lab.on('n1', 'swarm', 'init', '--dispatcher-heartbeat', '2s');
  t.equal(init.code, 0, init.stderr);
  const spec = async (): Promise<{ heartbeatPeriodMs: number; heartbeatGrace: number }> => {
    const r = await lab.on('n1', 'swarm', 'inspect', '--format', 'json');
    if (r.code !== 0) throw new Error(`swarm inspect: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { spec: { heartbeatPeriodMs: number; heartbeatGrace: number } }).spec;
  };
  t.equal((await spec()).heartbeatPeriodMs, 2000, 'the new cluster has the period it was made with');
  const table = await lab.on('n1', 'swarm', 'inspect');
  t.match(table.stdout, /dispatcher heartbeat\s+2s \(a node is down after 3 missed: 6s\)/, 'inspect says it in words');
  // A worker learns the period from its session replies: its sessions are then held that long.
  const tok = (await lab.on('n1', 'swarm', 'join-token', 'worker', '-q')).stdout.trim();
  const join = await lab.on('n2', 'swarm', 'join', '--token', tok, '198.19.46.11:2377');
  t.equal(join.code, 0, join.stderr);
  const workerPeriod = async (want: number): Promise<number | undefined> => {
    let got: number | undefined;
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
      const r = await lab.on('n2', 'info', '--format', 'json');
      got = r.code === 0 ? (JSON.parse(r.stdout) as { cluster: { heartbeatPeriodMs: number } | null }).cluster?.heartbeatPeriodMs : undefined;
      if (got === want) break;
    }
    return got;
  };
  t.equal(await workerPeriod(2000), 2000, 'the worker beats at the cluster\'s period');
  const info = await lab.on('n2', 'info');
  t.match(info.stdout, /swarm\s+active \(worker\)/, 'info says the node is a worker');
  t.match(info.stdout, /dispatcher heartbeat\s+2s/, 'info shows the period');
  const upd = await lab.on('n1', 'swarm', 'update', '--dispatcher-heartbeat', '3s');
  t.equal(upd.code, 0, upd.stderr);
  t.equal((await spec()).heartbeatPeriodMs, 3000, 'swarm update changed it');
  t.equal(await workerPeriod(3000), 3000, 'the worker follows the update');
  const nodes = await lab.nodes('n1');
  t.same(nodes.map((n) => n.status), ['Ready', 'Ready'], 'both nodes stay Ready across the change');
});
