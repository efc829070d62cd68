// The docker runtime against a real dockerd (started here if none runs), with an image imported
// from a busybox-static tarball: NetworkMode none, our namespace wiring, resolv.conf, exit codes,
// adoption by label after a restart, and no leftovers (containers, namespaces, image).
import t, { type Test } from 'tap';
import fs from 'node:fs';
import { netnsExists, Rtnl } from '../../dataplane/netlink/index.js';
import { waitForExit, type TaskEvent } from '../../dataplane/runtime/index.js';
import { DockerRuntime, LABEL } from '../../dataplane/runtime/docker-runtime.js';
import { inNetns, tempNetns, uniqueName } from '../helpers/netns.js';
import { leaks, median, scratch, waitFor } from '../kernel/runtime/helpers.js';
import { ensureDockerd, importTestImage } from './dockerd.js';

const d = await ensureDockerd();
if (typeof d === 'string') {
  t.plan(0, `docker cannot run here: ${d}`);
} else {
  const { docker } = d;
  const owner = uniqueName('owner');
  const image = await importTestImage(docker);
  t.teardown(async () => {
    // Containers of this run, whatever state the tests left them in; then the image and dockerd.
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL.owner}=${owner}`] } });
    for (const c of left) await docker.getContainer(c.Id).remove({ force: true });
    await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    await d.stop();
  });
  t.comment(`dockerd: ${d.startedByUs ? 'started by this test' : 'already running'}; image ${image.slice(0, 19)}`);

  const newRuntime = (tt: Test, tag: string): { rt: DockerRuntime; prefix: string; stateDir: string } => {
    const rts: DockerRuntime[] = [];
    const s = scratch(tt, tag, () => rts);
    const rt = new DockerRuntime({ docker, owner, stateDir: s.stateDir, prefix: s.prefix, pull: false });
    rts.push(rt);
    return { rt, ...s };
  };

  t.test('busybox httpd in a container with no Docker network, reached over our veth', async (t) => {
    const { rt } = newRuntime(t, 'dh');
    const events: TaskEvent[] = [];
    rt.subscribe((e) => events.push(e));
    const task = await rt.start({ id: 'web1cccccccccccc', name: 'web.1', service: 'web', spec: { image, command: ['httpd', '-f', '-p', '80', '-h', '/www'] } });
    t.equal(task.state, 'running');
    t.match(task.netnsPath, /^\/proc\/\d+\/ns\/net$/);
    t.ok(netnsExists(task.netns), `named as ${task.netns} too`);
    t.equal(fs.statSync(`/run/netns/${task.netns}`).ino, fs.statSync(task.netnsPath).ino, 'the name is the container namespace');
    const c = await docker.getContainer(task.netns).inspect();
    t.equal(c.HostConfig.NetworkMode, 'none');
    t.same([c.Config.Labels[LABEL.task], c.Config.Labels[LABEL.service]], [task.id, 'web']);
    t.same(inNetns(task.netns, ['ip', '-o', 'link']).trim().split('\n').map((l) => l.split(': ')[1]), ['lo'], 'only lo: Docker made no network');

    const client = tempNetns(t, 'c');
    const veth = uniqueName('v');
    const r = Rtnl.open(client);
    try {
      r.createVeth({ name: veth, peerName: 'eth0', peerNetns: task.netns });
      r.addAddress(r.mustLink(veth).index, '10.98.0.1/24');
      r.setLink(r.mustLink(veth).index, { up: true });
    } finally {
      r.close();
    }
    const tr = Rtnl.open(task.netnsPath); // by path, as the overlay may
    try {
      tr.addAddress(tr.mustLink('eth0').index, '10.98.0.2/24');
      tr.setLink(tr.mustLink('eth0').index, { up: true });
    } finally {
      tr.close();
    }
    const get = (p: string): string =>
      inNetns(client, [process.execPath, '-e', `require('http').get('http://10.98.0.2${p}', (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => console.log(b.trim())); }).on('error', (e) => { console.log('error ' + e.message); process.exit(1); })`]);
    const page = await waitFor('httpd answers', () => {
      try {
        return get('/index.html');
      } catch {
        return undefined;
      }
    });
    t.equal(page.trim(), 'hello from busybox');
    t.match(get('/cgi-bin/whoami'), /^task=web\.1 remote=\[?(::ffff:)?10\.98\.0\.1\]?$/m, 'the CGI names the task and sees the client address');

    // httpd has no SIGTERM handler, but docker-init (PID 1) forwards it: no wait for the grace period
    const t0 = Date.now();
    t.equal(await rt.stop(task.id, 10_000), 143);
    t.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    t.notOk(netnsExists(task.netns), 'namespace name removed on exit');
    t.same(events.map((e) => e.type), ['start', 'exit']);
    await rt.remove(task.id);
    await t.rejects(docker.getContainer(task.netns).inspect(), 'container removed');
  });

  t.test('resolv.conf, hosts, hostname and environment are ours', async (t) => {
    const { rt } = newRuntime(t, 'dd');
    const task = await rt.start({
      id: 'dns1', name: 'dns.1', hostname: 'dns-one', hostsFile: '127.0.0.1 localhost\n10.0.0.7 dns-one\n',
      spec: { image, command: ['sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname; echo "$MESH_TASK_NAME $FOO"'], env: { FOO: 'bar' } },
    });
    t.equal((await waitForExit(rt, task.id, 10_000)).exitCode, 0);
    const [resolv, hosts, rest] = (await rt.logs(task.id)).split('---\n');
    t.equal(resolv, 'nameserver 127.0.0.11\noptions ndots:0\n');
    t.equal(hosts, '127.0.0.1 localhost\n10.0.0.7 dns-one\n');
    t.equal(rest, 'dns-one\ndns.1 bar\n');
    t.equal(await rt.logs(task.id, { tail: 1 }), 'dns.1 bar\n');
  });

  t.test('exit codes, and SIGKILL after the grace period', async (t) => {
    const { rt } = newRuntime(t, 'de');
    await rt.start({ id: 'three', name: 'three', spec: { image, command: ['sh', '-c', 'exit 3'] } });
    t.equal((await waitForExit(rt, 'three', 10_000)).exitCode, 3);
    await rt.start({ id: 'stub', name: 'stub', spec: { image, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.1; done'] } });
    await waitFor('ready', async () => /ready/.test(await rt.logs('stub')), 10_000);
    const t0 = Date.now();
    t.equal(await rt.stop('stub', 1000), 137, 'SIGKILL: 137');
    t.ok(Date.now() - t0 >= 900, `after the grace (${Date.now() - t0} ms)`);
    await t.rejects(rt.start({ id: 'noimg', name: 'x', spec: { command: ['true'] } }), /needs spec\.image/);
    await t.rejects(rt.start({ id: 'gone', name: 'x', spec: { image: 'sha256:' + '0'.repeat(64) } }), /not present/);
  });

  t.test('a restarted meshd adopts its containers by label and cleans up the dead', async (t) => {
    const { rt: first, prefix, stateDir } = newRuntime(t, 'da');
    const live = await first.start({ id: 'live', name: 'live.1', spec: { image, command: ['sleep', '1000'] } });
    const dies = await first.start({ id: 'dies', name: 'dies.1', spec: { image, command: ['sh', '-c', 'sleep 0.5; exit 4'] } });
    await first.close(); // meshd goes away; containers keep running
    await new Promise((r) => setTimeout(r, 1500));
    t.ok(netnsExists(dies.netns), 'nobody watched: the dead task still has its name');

    const rts: DockerRuntime[] = [];
    scratch(t, 'da2', () => rts); // teardown for the second instance (its own scratch dir unused)
    const rt = new DockerRuntime({ docker, owner, stateDir, prefix, pull: false });
    rts.push(rt);
    const report = await rt.adopt();
    t.same(report.adopted.map((x) => [x.id, x.pid, x.adopted]), [['live', live.pid, true]]);
    t.same(report.exited.map((x) => [x.id, x.exitCode]), [['dies', 4]]);
    t.notOk(netnsExists(dies.netns), "the dead task's namespace name is gone");
    t.ok(netnsExists(live.netns), 'the live one keeps its name');
    t.equal(rt.inspect('live')?.name, 'live.1', 'name from the labels');
    t.equal(await rt.stop('live', 5000), 143);
    for (const x of rt.list()) await rt.remove(x.id);
    t.same(fs.readdirSync(stateDir), [], 'no per-task files left');
    t.same(await docker.listContainers({ all: true, filters: { label: [`${LABEL.owner}=${owner}`] } }), [], 'no containers left');
  });

  t.test('start latency (figure)', async (t) => {
    const { rt } = newRuntime(t, 'dp');
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await rt.start({ id: `lat${i}`, name: `lat.${i}`, spec: { image, command: ['sleep', '1000'] } });
      times.push(performance.now() - t0);
    }
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await rt.remove(`lat${i}`);
    t.comment(`docker runtime: start median ${median(times).toFixed(0)} ms (max ${Math.max(...times).toFixed(0)} ms); remove ${((performance.now() - t0) / 5).toFixed(0)} ms each`);
    t.pass();
  });

  t.test('no runtime left a namespace behind', async (t) => {
    t.same(leaks, []);
  });
}
