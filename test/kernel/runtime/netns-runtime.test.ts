// The netns runtime against the real kernel: namespaces, mount namespaces, process groups, restart.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createNetns, deleteNetns, netnsExists, Rtnl } from '../../../dataplane/netlink/index.js';
import { NetnsRuntime, waitForExit, type HttpWorkloadReply, type TaskEvent } from '../../../dataplane/runtime/index.js';
import { procStat } from '../../../dataplane/runtime/procfs.js';
import { inNetns, tempNetns, uniqueName } from '../../helpers/netns.js';
import { leaks, median, REPO, scratch, waitFor, WORKLOAD } from './helpers.js';

const run = promisify(execFile);

function newRuntime(t: Test, tag: string, extra: { logLimitBytes?: number; pollMs?: number } = {}): { rt: NetnsRuntime; prefix: string; stateDir: string } {
  const rts: NetnsRuntime[] = [];
  const s = scratch(t, tag, () => rts);
  const rt = new NetnsRuntime({ stateDir: s.stateDir, prefix: s.prefix, ...extra });
  rts.push(rt);
  return { rt, ...s };
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z';
}

t.test('the HTTP workload runs in its own namespace and is reached over a veth from another', async (t) => {
  const { rt } = newRuntime(t, 'h');
  const events: TaskEvent[] = [];
  rt.subscribe((e) => events.push(e));
  const task = await rt.start({ id: 'web1aaaaaaaaaaaa', name: 'web.1', service: 'web', spec: { command: [process.execPath, WORKLOAD, 'http', '--port', '80'] } });
  t.equal(task.state, 'running');
  t.ok(netnsExists(task.netns), `namespace ${task.netns} exists`);
  t.equal(task.netnsPath, `/run/netns/${task.netns}`);
  t.match(task.netns, /^mt/);

  // The test's wiring (later the overlay's job): a veth from a client namespace into the task's.
  const client = tempNetns(t, 'c');
  const veth = uniqueName('v');
  const r = Rtnl.open(client);
  try {
    r.createVeth({ name: veth, peerName: 'eth0', peerNetns: task.netns });
    r.addAddress(r.mustLink(veth).index, '10.99.0.1/24');
    r.setLink(r.mustLink(veth).index, { up: true });
  } finally {
    r.close();
  }
  const tr = Rtnl.open(task.netns);
  try {
    tr.addAddress(tr.mustLink('eth0').index, '10.99.0.2/24');
    tr.setLink(tr.mustLink('eth0').index, { up: true });
  } finally {
    tr.close();
  }
  await waitFor('workload listening', async () => /listening on 80/.test(await rt.logs(task.id)));
  const get = `require('http').get('http://10.99.0.2/hello', (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => console.log(b)); }).on('error', (e) => { console.log('error ' + e.message); process.exit(1); })`;
  const reply = JSON.parse(inNetns(client, [process.execPath, '-e', get])) as HttpWorkloadReply;
  t.equal(reply.task, 'web.1', 'names the task (MESH_TASK_NAME)');
  t.equal(reply.ip, '10.99.0.2', 'the address the request arrived on');
  t.equal(reply.remote, '10.99.0.1', 'the client address is preserved');
  t.equal(reply.path, '/hello');
  t.equal(inNetns(client, [process.execPath, '-e', get.replace('/hello', '/healthz')]).trim(), 'ok');

  // the workload exits cleanly on SIGTERM: exit code 0, namespace gone
  t.equal(await rt.stop(task.id, 5000), 0);
  t.notOk(netnsExists(task.netns), 'namespace deleted on exit');
  t.same(events.map((e) => e.type), ['start', 'exit']);
  const exit = events[1];
  t.equal(exit?.type === 'exit' ? exit.exitCode : undefined, 0);
  t.equal(rt.inspect(task.id)?.reason, 'stopped');
  await rt.remove(task.id);
  t.equal(rt.inspect(task.id), undefined);
});

t.test('the UDP echo workload answers with its task name', async (t) => {
  const { rt } = newRuntime(t, 'q');
  // a PATH without /bin in the spec must not break the wrapper (it runs mount by absolute path)
  const task = await rt.start({ id: 'udp1', name: 'udp.1', spec: { command: [process.execPath, WORKLOAD, 'udp', '--port', '9000'], env: { PATH: '/nonexistent' } } });
  await waitFor('workload listening', async () => /listening on 9000/.test(await rt.logs(task.id)));
  const send = `const s = require('dgram').createSocket('udp4'); s.on('message', (m) => { console.log(m.toString()); process.exit(0); }); s.send('ping', 9000, '127.0.0.1'); setTimeout(() => process.exit(1), 3000);`;
  t.same(JSON.parse(inNetns(task.netns, [process.execPath, '-e', send])), { task: 'udp.1', echo: 'ping' });
  t.equal(await rt.stop(task.id, 5000), 0);
});

t.test('the task sees its own resolv.conf, hosts and hostname; the host keeps its own', async (t) => {
  const { rt } = newRuntime(t, 'd');
  const hostResolv = fs.readFileSync('/etc/resolv.conf', 'utf8');
  const hostHosts = fs.readFileSync('/etc/hosts', 'utf8');
  const task = await rt.start({
    id: 'dns1', name: 'dns.1', hostname: 'dns-one',
    hostsFile: '127.0.0.1 localhost\n10.0.0.7 dns-one\n',
    spec: { command: ['sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname; grep -c " /etc/resolv.conf " /proc/self/mountinfo'] },
  });
  const done = await waitForExit(rt, task.id, 5000);
  t.equal(done.exitCode, 0);
  const [resolv, hosts, rest] = (await rt.logs(task.id)).split('---\n');
  t.equal(resolv, 'nameserver 127.0.0.11\noptions ndots:0\n', 'embedded DNS, ndots:0');
  t.equal(hosts, '127.0.0.1 localhost\n10.0.0.7 dns-one\n');
  t.equal(rest, 'dns-one\n1\n', 'own hostname (UTS namespace); resolv.conf is a mount in the task');
  t.equal(fs.readFileSync('/etc/resolv.conf', 'utf8'), hostResolv, "host's resolv.conf unchanged");
  t.equal(fs.readFileSync('/etc/hosts', 'utf8'), hostHosts, "host's hosts unchanged");
  t.notMatch(fs.readFileSync('/proc/self/mountinfo', 'utf8'), / \/etc\/resolv\.conf /, 'no mount leaked to the host');
});

t.test('updateFiles rewrites /etc/hosts under a running task', async (t) => {
  const { rt } = newRuntime(t, 'u');
  const task = await rt.start({
    id: 'upd1', name: 'upd.1',
    spec: { command: ['sh', '-c', 'for i in $(seq 200); do grep -q marker /etc/hosts && exit 0; sleep 0.02; done; exit 1'] },
  });
  await rt.updateFiles(task.id, { hostsFile: '127.0.0.1 localhost\n10.1.2.3 marker\n' });
  t.equal((await waitForExit(rt, task.id, 8000)).exitCode, 0, 'the task saw the new content');
});

t.test('stop kills the whole process group and anything left in the namespace', async (t) => {
  const { rt } = newRuntime(t, 'k');
  // Ignores SIGTERM (and so do its children, which inherit the ignore); one child escapes the group.
  const task = await rt.start({
    id: 'grp1', name: 'grp.1',
    spec: { command: ['sh', '-c', 'trap "" TERM; sleep 1000 & sleep 1000 & setsid sleep 1001 & echo ready; wait'] },
  });
  await waitFor('ready', async () => /ready/.test(await rt.logs(task.id)));
  const nsLink = fs.readlinkSync(`/proc/${task.pid}/ns/net`);
  const members = await waitFor('4 processes in the namespace', () => {
    const pids = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => {
      try {
        return fs.readlinkSync(`/proc/${p}/ns/net`) === nsLink && alive(p);
      } catch {
        return false;
      }
    });
    return pids.length >= 5 ? pids : undefined; // wrapper, sh, 2 x sleep, setsid sleep
  });
  const escaped = members.filter((p) => procStat(p)?.pgid !== task.pid);
  t.equal(escaped.length, 1, 'one process left the task group (setsid)');
  const t0 = Date.now();
  const code = await rt.stop(task.id, 300);
  const took = Date.now() - t0;
  t.ok(took >= 290, `SIGKILL only after the grace period (${took} ms)`);
  t.equal(code, 137, 'killed: 128 + SIGKILL');
  t.match(rt.inspect(task.id)?.reason, /killed after 300 ms grace/);
  await waitFor('every member gone', () => members.every((p) => !alive(p)), 3000);
  t.pass(`all ${members.length} processes are gone, the escaped one too`);
});

t.test('exit codes are reported', async (t) => {
  const { rt } = newRuntime(t, 'e');
  const cases: [string, string[], number][] = [
    ['ok', ['true'], 0],
    ['three', ['sh', '-c', 'exit 3'], 3],
    ['missing', ['/nonexistent/binary'], 127],
    ['selfkill', ['sh', '-c', 'kill -9 $$'], 137],
  ];
  const codes = new Map<string, number | null>();
  rt.subscribe((e) => e.type === 'exit' && codes.set(e.task.id, e.exitCode));
  for (const [id, command] of cases) await rt.start({ id, name: id, spec: { command } });
  for (const [id, , want] of cases) {
    t.equal((await waitForExit(rt, id, 5000)).exitCode, want, `${id}: ${want}`);
    t.equal(codes.get(id), want, `${id}: exit event`);
  }
  t.match(await rt.logs('missing'), /nonexistent/, 'the shell says why');
  await t.rejects(rt.start({ id: 'nocmd', name: 'x', spec: {} }), /needs spec\.command/);
  await t.rejects(rt.start({ id: 'bad/id', name: 'x', spec: { command: ['true'] } }), /not valid/);
  await t.rejects(rt.start({ id: 'ok', name: 'again', spec: { command: ['true'] } }), /already exists/);
});

t.test('logs are bounded by rotation', async (t) => {
  const limit = 4000;
  const { rt, stateDir } = newRuntime(t, 'l', { logLimitBytes: limit, pollMs: 20 });
  const task = await rt.start({
    id: 'log1', name: 'log.1',
    spec: { command: ['sh', '-c', 'for i in $(seq 40); do for j in 1 2 3 4 5 6 7 8 9 10; do echo "line $i.$j ............................................................................................"; done; sleep 0.03; done; echo last-line'] },
  });
  await waitForExit(rt, task.id, 10_000);
  const dir = path.join(stateDir, task.id);
  const size = fs.statSync(path.join(dir, 'log')).size + (fs.existsSync(path.join(dir, 'log.1')) ? fs.statSync(path.join(dir, 'log.1')).size : 0);
  t.ok(fs.existsSync(path.join(dir, 'log.1')), 'rotated');
  t.ok(size < 3 * limit, `kept ${size} bytes of ~40 KB written`);
  t.match(await rt.logs(task.id, { tail: 1 }), /^last-line\n$/);
});

t.test('a restarted meshd adopts running tasks and cleans up dead and half-started ones', async (t) => {
  const { rt: first, prefix, stateDir } = newRuntime(t, 'a');
  await first.close(); // the "old meshd" is another process below
  // The old meshd: starts tasks and dies without stopping them (process.exit, no cleanup).
  const script = `
    import { NetnsRuntime } from ${JSON.stringify(path.join(REPO, 'dist/dataplane/runtime/index.js'))};
    const rt = new NetnsRuntime({ stateDir: ${JSON.stringify(stateDir)}, prefix: ${JSON.stringify(prefix)} });
    const live = await rt.start({ id: 'live', name: 'live.1', spec: { command: ['sleep', '1000'] } });
    const dies = await rt.start({ id: 'dies', name: 'dies.1', spec: { command: ['sh', '-c', 'sleep 0.3; exit 4'] } });
    console.log(JSON.stringify({ live, dies }));
    process.exit(0);`;
  const out = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
  const old = JSON.parse(out.stdout) as { live: { pid: number; netns: string }; dies: { netns: string } };
  // A start that was interrupted after the namespace was made (record says "creating").
  const halfNs = `${prefix}half`;
  fs.mkdirSync(path.join(stateDir, 'half'));
  fs.writeFileSync(path.join(stateDir, 'half', 'task.json'), JSON.stringify({ version: 1, id: 'half', name: 'half', netns: halfNs, hostname: 'half', state: 'creating', startedAt: new Date().toISOString() }));
  createNetns(halfNs);
  // A namespace with our prefix that no record knows (state lost): only removed with the sweep option.
  const strayNs = `${prefix}stray`;
  createNetns(strayNs);
  t.teardown(() => {
    for (const ns of [halfNs, strayNs]) deleteNetns(ns);
  });
  await new Promise((r) => setTimeout(r, 600)); // "dies" exits while nobody watches

  const rt = new NetnsRuntime({ stateDir, prefix, sweepUnknownNamespaces: true });
  t.teardown(async () => {
    for (const task of rt.list()) await rt.remove(task.id);
    await rt.close();
  });
  const t0 = performance.now();
  const report = await rt.adopt();
  t.comment(`adopt: ${(performance.now() - t0).toFixed(1)} ms`);
  t.same(report.adopted.map((x) => [x.id, x.pid, x.adopted, x.state]), [['live', old.live.pid, true, 'running']]);
  t.same(report.exited.map((x) => [x.id, x.exitCode]).sort(), [['dies', 4], ['half', null]]);
  t.same(report.removed, [`netns ${strayNs} (no task record)`]);
  t.notOk(netnsExists(old.dies.netns), "the dead task's namespace is gone");
  t.notOk(netnsExists(halfNs), 'the half-made namespace is gone');
  t.ok(netnsExists(old.live.netns), "the live task's namespace stays");
  t.match(rt.inspect('half')?.reason, /start interrupted/);

  // the adopted task is fully ours: stop reaches it and reports its exit code (from the wrapper's file)
  const exits: (number | null)[] = [];
  rt.subscribe((e) => e.type === 'exit' && exits.push(e.exitCode));
  t.equal(await rt.stop('live', 3000), 143, 'sleep killed by SIGTERM');
  t.same(exits, [143]);
  t.notOk(alive(old.live.pid));
  for (const task of rt.list()) await rt.remove(task.id);
  t.same(fs.readdirSync(stateDir), [], 'state directory empty');
});

t.test('start latency (figure)', async (t) => {
  const { rt } = newRuntime(t, 'p');
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    await rt.start({ id: `lat${i}`, name: `lat.${i}`, spec: { command: ['sleep', '1000'] } });
    times.push(performance.now() - t0);
  }
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await rt.remove(`lat${i}`);
  t.comment(`netns runtime: start median ${median(times).toFixed(1)} ms (max ${Math.max(...times).toFixed(1)} ms); stop+remove ${((performance.now() - t0) / 10).toFixed(1)} ms each`);
  t.pass();
});

t.test('no runtime left a namespace behind', async (t) => {
  t.same(leaks, []);
});
