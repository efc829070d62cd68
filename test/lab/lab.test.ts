// The namespace lab driven through the real CLI, probed from the host side and from inside nodes.
import t from 'tap';
import { execFile, spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const meshctl = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/meshctl.js');
const prefix = `mt${process.pid % 100000}l`;
const subnet = `198.19.${100 + (process.pid % 100)}.0/24`;
const base = subnet.split('.').slice(0, 3).join('.');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string; signal?: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [meshctl, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr, ...(e?.signal ? { signal: e.signal } : {}) });
    });
  });
}

function leftovers(): string[] {
  const ns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`)) : [];
  const links = fs.readdirSync('/sys/class/net').filter((n) => n.startsWith(`${prefix}-`));
  return [...ns, ...links];
}

t.teardown(async () => {
  await cli(['lab', 'down', '--prefix', prefix]);
});

t.test('up, reach every node from the host and from each other, exec, env, down twice', async (t) => {
  const up = await cli(['lab', 'up', '--nodes', '3', '--prefix', prefix, '--subnet', subnet]);
  t.equal(up.code, 0, up.stderr);
  t.match(up.stdout, /3 nodes in \d+ ms/);
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const n of ['ul', 'n1', 'n2', 'n3']) t.match(netns, new RegExp(`^${prefix}-${n}\\b`, 'm'), `ip netns shows ${prefix}-${n}`);
  // From the host side, as a client outside the cluster would.
  for (let i = 1; i <= 3; i++) t.match(execFileSync('ping', ['-c', '1', '-W', '2', `${base}.${10 + i}`], { encoding: 'utf8' }), /1 received/);
  // Node to node, from inside each node.
  for (let a = 1; a <= 3; a++) {
    for (let b = 1; b <= 3; b++) {
      if (a === b) continue;
      const r = await cli(['lab', 'exec', '--prefix', prefix, `n${a}`, '--', 'ping', '-c', '1', '-W', '2', `${base}.${10 + b}`]);
      t.equal(r.code, 0, `n${a} -> n${b}`);
    }
  }
  const mtu = await cli(['lab', 'exec', '--prefix', prefix, 'n1', '--', 'cat', '/sys/class/net/eth0/mtu']);
  t.equal(mtu.stdout.trim(), '1500');
  const failing = await cli(['lab', 'exec', '--prefix', prefix, '2', '--', 'sh', '-c', 'exit 7']);
  t.equal(failing.code, 7, 'exec passes the exit code through');
  const status = JSON.parse((await cli(['lab', 'status', '--prefix', prefix, '--format', 'json'])).stdout) as { up: boolean; nodes: { reachable: boolean; problem?: string }[] };
  t.equal(status.up, true);
  t.equal(status.nodes.length, 3);
  t.ok(status.nodes.every((n) => n.reachable && !n.problem), 'status: every node reachable, no problem');
  const env = await cli(['lab', 'env', '--prefix', prefix, 'n3']);
  t.equal(env.stdout.trim(), `export MESH_HOST=unix:///run/meshd/${prefix}-n3/meshd.sock`);
  const again = await cli(['lab', 'up', '--nodes', '3', '--prefix', prefix, '--subnet', subnet]);
  t.equal(again.code, 1);
  t.match(again.stderr, /already up .* lab down/);
  t.equal((await cli(['lab', 'down', '--prefix', prefix])).code, 0);
  t.same(leftovers(), [], 'nothing left after down');
  const second = await cli(['lab', 'down', '--prefix', prefix]);
  t.equal(second.code, 0);
  t.match(second.stdout, /nothing to remove/);
});

t.test('a crash at every step of up leaves nothing that down cannot remove', async (t) => {
  for (let step = 1; step <= 5; step++) {
    const r = await cli(['lab', 'up', '--nodes', '3', '--prefix', prefix, '--subnet', subnet], { MESH_LAB_CRASH_AT: String(step) });
    t.equal(r.signal, 'SIGKILL', `up was killed at step ${step}`);
    t.ok(leftovers().length > 0, `step ${step} left objects behind`);
    const st = JSON.parse((await cli(['lab', 'status', '--prefix', prefix, '--format', 'json'])).stdout) as { up: boolean; leftovers: string[] };
    t.equal(st.up, false);
    t.ok(st.leftovers.length > 0, 'status names the leftovers');
    t.equal((await cli(['lab', 'down', '--prefix', prefix])).code, 0);
    t.same(leftovers(), [], `nothing left after a crash at step ${step}`);
  }
});

t.test('killed at a random moment, then up again cleans the leftovers itself', async (t) => {
  for (let i = 0; i < 5; i++) {
    const child = spawn(process.execPath, [meshctl, 'lab', 'up', '--nodes', '4', '--prefix', prefix, '--subnet', subnet], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 60 + i * 15));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const up = await cli(['lab', 'up', '--nodes', '2', '--prefix', prefix, '--subnet', subnet]);
    if (up.code === 1 && /already up/.test(up.stderr)) {
      t.pass('the killed up had finished; down and go on');
    } else {
      t.equal(up.code, 0, up.stderr);
    }
    t.equal((await cli(['lab', 'down', '--prefix', prefix])).code, 0);
    t.same(leftovers(), []);
  }
});

t.test('bad input: clear errors, nothing created', async (t) => {
  const cases: [string[], RegExp][] = [
    [['lab', 'up', '--prefix', 'Bad!'], /lab prefix "Bad!" must be/],
    [['lab', 'up', '--prefix', prefix, '--subnet', '10.1.0.0/24'], /must lie inside 198\.18\.0\.0\/15/],
    [['lab', 'up', '--prefix', prefix, '--nodes', '0'], /--nodes must be a whole number from 1 to 200/],
    [['lab', 'up', '--prefix', prefix, '--nodes', 'x'], /--nodes must be a whole number/],
    [['lab', 'up', '--prefix', prefix, '--subnet', '198.19.0.0/29'], /has room for 0 nodes/],
    [['lab', 'exec', '--prefix', prefix, 'n1', '--', 'true'], /lab "mt\d+l" is not up/],
    [['lab', 'status', '--prefix', prefix, '--format', 'yaml'], /--format must be "table" or "json"/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    t.not(r.code, 0, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
  }
  t.same(leftovers(), []);
});
