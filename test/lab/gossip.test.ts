// Gossip between real meshd processes in the namespace lab: failure detection, partition and heal,
// key rotation under a stream of table updates, and a member with a wrong key.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { killNetnsProcesses, nodeSocketPath } from '../../control/lab/daemons.js';
import { Keyring, MeshTransport, generateKey, sodiumReady } from '../../mesh/index.js';

const meshctl = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/meshctl.js');
const prefix = `mt${process.pid % 100000}g`;
const third = 60 + (process.pid % 30);
const base = `198.19.${third}`;

interface Res {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 60_000): Promise<Res> {
  return new Promise((resolve) => {
    execFile(process.execPath, [meshctl, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

const on = (n: string, ...args: string[]): Promise<Res> => cli(['-H', `unix://${nodeSocketPath(`${prefix}-${n}`)}`, ...args]);

interface Status {
  self: string;
  members: { name: string; hostname: string; status: string }[];
  keyIds: string[];
  primaryKeyId: string;
  dropped: Record<string, number>;
}

async function status(n: string): Promise<Status> {
  const r = await on(n, 'mesh', 'status', '--format', 'json');
  if (r.code !== 0) throw new Error(`mesh status on ${n}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

async function until<T>(what: string, budgetMs: number, fn: () => Promise<T | undefined>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return { value: v, ms: Date.now() - t0 };
    if (Date.now() - t0 > budgetMs) throw new Error(`${what}: not within ${budgetMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function entries(n: string, network: string): Promise<Map<string, string>> {
  const r = await on(n, 'mesh', 'table', 'ls', network, '--format', 'json');
  if (r.code !== 0) throw new Error(r.stderr);
  return new Map((JSON.parse(r.stdout) as { key: string; value: string }[]).map((e) => [e.key, e.value]));
}

t.before(async () => {
  const r = await cli(['lab', 'up', '--prefix', prefix, '--subnet', `${base}.0/24`, '--nodes', '4', '--managers', '1'], 120_000);
  if (r.code !== 0) throw new Error(`lab up: ${r.stderr}`);
  // Every node sees the other three alive.
  await until('all members alive', 20_000, async () => {
    for (const n of ['n1', 'n2', 'n3', 'n4']) {
      const s = await status(n);
      if (s.members.filter((m) => m.status === 'alive').length !== 4) return undefined;
    }
    return true;
  });
  for (const n of ['n1', 'n2', 'n3', 'n4']) await on(n, 'mesh', 'table', 'join', 'app');
});

t.teardown(async () => {
  await cli(['lab', 'down', '--prefix', prefix]);
});

t.test('a table entry written on one node reaches every node of the network', async (t) => {
  await on('n2', 'mesh', 'table', 'put', 'app', 'endpoints', 'web.1', '10.0.1.2');
  const { ms } = await until('entry everywhere', 10_000, async () => {
    for (const n of ['n1', 'n3', 'n4']) if ((await entries(n, 'app')).get('web.1') !== '10.0.1.2') return undefined;
    return true;
  });
  t.comment(`table update reached 3 nodes in ${ms} ms`);
  await on('n2', 'mesh', 'table', 'rm', 'app', 'endpoints', 'web.1');
  await until('delete everywhere', 10_000, async () => {
    for (const n of ['n1', 'n3', 'n4']) if ((await entries(n, 'app')).has('web.1')) return undefined;
    return true;
  });
  t.pass('the delete reached every node');
});

t.test('rotating the key while table updates flow loses none', async (t) => {
  const before = await status('n1');
  const dropsBefore = (await Promise.all(['n1', 'n2', 'n3', 'n4'].map(status))).map((s) => (s.dropped['unknown-key'] ?? 0) + (s.dropped.auth ?? 0));
  let stop = false;
  let written = 0;
  const writer = (async () => {
    while (!stop) {
      const n = ['n2', 'n3'][written % 2]!;
      await on(n, 'mesh', 'table', 'put', 'app', 'stream', `k${written}`, `v${written}`);
      written++;
    }
  })();
  const rot = await on('n1', 'swarm', 'update', '--rotate-gossip-key', '--format', 'json');
  t.equal(rot.code, 0, rot.stderr);
  const rot2 = await on('n1', 'swarm', 'update', '--rotate-gossip-key', '--format', 'json');
  t.equal(rot2.code, 0, rot2.stderr);
  stop = true;
  await writer;
  const after = await status('n1');
  t.not(after.primaryKeyId, before.primaryKeyId, 'a new primary key');
  t.comment(`${written} table updates written during two rotations`);
  await until('every update everywhere', 20_000, async () => {
    for (const n of ['n1', 'n2', 'n3', 'n4']) {
      const e = await entries(n, 'app');
      for (let i = 0; i < written; i++) if (e.get(`k${i}`) !== `v${i}`) return undefined;
    }
    return true;
  });
  t.pass(`all ${written} updates reached all 4 nodes`);
  const dropsAfter = (await Promise.all(['n1', 'n2', 'n3', 'n4'].map(status))).map((s) => (s.dropped['unknown-key'] ?? 0) + (s.dropped.auth ?? 0));
  t.same(dropsAfter, dropsBefore, 'no packet was dropped for an unknown key or a failed seal during rotation');
  for (const n of ['n2', 'n3', 'n4']) t.equal((await status(n)).primaryKeyId, after.primaryKeyId, `${n} sends with the new key`);
});

t.test('a member with a wrong key cannot join, and its packets are counted as dropped', async (t) => {
  await sodiumReady();
  const hostAddr = `${base}.1`;
  const rogue = await MeshTransport.start({ name: 'rogue', host: hostAddr, port: 7946, keyring: new Keyring([generateKey()]) });
  t.teardown(() => rogue.kill());
  const before = (await status('n1')).dropped['unknown-key'] ?? 0;
  rogue.join([{ host: `${base}.11`, port: 7946 }]);
  const { value } = await until('drops counted', 10_000, async () => {
    const d = (await status('n1')).dropped['unknown-key'] ?? 0;
    return d > before ? d : undefined;
  });
  t.ok(value > before, `n1 dropped ${value - before} packets under an unknown key`);
  await new Promise((r) => setTimeout(r, 1500));
  t.notOk((await status('n1')).members.some((m) => m.name === 'rogue'), 'the rogue is not a member');
  t.equal(rogue.status().members.filter((m) => m.status === 'alive').length, 1, 'the rogue sees nobody but itself');
});

t.test('partition one node from the underlay and heal: tables converge again', async (t) => {
  const ns = `${prefix}-n4`;
  const nft = (script: string): void => void execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script });
  nft(['table inet mtpart {', '  chain in { type filter hook input priority 0; policy drop; iif lo accept; }', '  chain out { type filter hook output priority 0; policy drop; oif lo accept; }', '}', ''].join('\n'));
  t.teardown(() => {
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'mtpart'], { stdio: 'ignore' });
    } catch {
      // already healed
    }
  });
  const { ms: suspectMs } = await until('n4 seen down by n1', 30_000, async () => {
    const m = (await status('n1')).members.find((x) => x.hostname === 'n4');
    return m && m.status !== 'alive' ? true : undefined;
  });
  t.comment(`n1 stopped seeing the partitioned node as alive after ${suspectMs} ms`);
  await on('n2', 'mesh', 'table', 'put', 'app', 'partition', 'during', 'yes');
  await new Promise((r) => setTimeout(r, 500));
  t.notOk((await entries('n4', 'app')).has('during'), 'the partitioned node missed the update');
  execFileSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'mtpart']);
  const { ms } = await until('n4 catches up', 45_000, async () => ((await entries('n4', 'app')).get('during') === 'yes' ? true : undefined));
  t.comment(`after healing, the partitioned node caught up in ${ms} ms`);
  await until('n4 alive again', 30_000, async () => ((await status('n1')).members.find((x) => x.hostname === 'n4')?.status === 'alive' ? true : undefined));
  t.pass('n4 is alive again in n1\'s view');
});

t.test('kill -9 a node: every other node marks it dead within the budget', async (t) => {
  const victim = (await status('n3')).self;
  const t0 = Date.now();
  await killNetnsProcesses(`${prefix}-n3`);
  const { ms } = await until('n3 dead everywhere', 20_000, async () => {
    for (const n of ['n1', 'n2', 'n4']) {
      const m = (await status(n)).members.find((x) => x.name === victim);
      if (!m || m.status !== 'dead') return undefined;
    }
    return true;
  });
  t.ok(ms < 15_000, `every survivor marked the killed node dead ${Date.now() - t0} ms after the kill`);
  t.comment(`gossip failure detection (kill -9 to dead on all 3 survivors): ${ms} ms`);
});
