// The vm tier's cluster test: vagrant/provision/*.sh run for real in 3 qemu guests booted from
// Debian's stock kernel (vmcluster.sh), forming a cluster (init, manager join, worker join) over a
// virtual underlay in 198.18.200.0/24; then vagrant/probe.sh runs from the host side of that
// underlay, as it runs against the Vagrant lab, and every row of its table must pass (the
// published-port rows must pass: the routing mesh is in the build).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const VMC = path.join(REPO, 'test/vm/cluster/vmcluster.sh');
const PROBE = path.join(REPO, 'vagrant/probe.sh');

function sh(args: string[], opts: { timeoutS?: number; env?: Record<string, string> } = {}): { code: number; out: string } {
  const r = spawnSync('bash', [VMC, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: (opts.timeoutS ?? 120) * 1000, env: { ...process.env, ...opts.env } });
  return { code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** null when VMs can run here (running the one-time setup if needed), else why not. */
function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'the vm tier needs root';
  if (sh(['check']).code === 0) return null;
  const s = sh(['setup'], { timeoutS: 600 });
  if (s.code !== 0) return `vmcluster setup failed: ${s.out.trim().split('\n').slice(-3).join(' | ')}`;
  const c = sh(['check']);
  return c.code === 0 ? null : `VMs cannot run here: ${c.out.trim()}`;
}

// Runs wherever VMs can run (CI included); MESH_VM_CLUSTER=0 skips it for a quicker local run.
const why = process.env.MESH_VM_CLUSTER === '0' ? 'skipped: MESH_VM_CLUSTER=0' : unavailable();
t.test('3 VMs provisioned by the Vagrant scripts form a cluster, probed from outside', { skip: why ?? false }, async (t) => {
  const t0 = Date.now();
  // mt-prefixed: a leftover is visible to the runner's leak check (vmcluster's netns is mt<pid>vmc).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtvmc-'));
  t.teardown(() => {
    const d = sh(['down', dir], { timeoutS: 60 });
    if (d.code !== 0) console.error(d.out);
    if (!process.env.MESH_VMC_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  });
  // The guests' own knobs (not provisioning steps): IPVS for the routing mesh (Debian's kernel has
  // it; explicit, so a missing IPVS fails instead of falling back), a longer Raft election timeout, as emulated
  // CPUs shared by 3 VMs on 2 cores stall for seconds at a time. A 5 s node heartbeat (Docker's
  // default; meshd's is 1 s) through the provisioning knob MESH_DISPATCHER_HEARTBEAT, which the
  // Vagrantfile passes through as well: workers were seen silent for 3-5 s, and with 1 s x 3 they
  // were marked down and their tasks moved to m1.
  // One manager: with two, under TCG on 2 shared cores, the leader's ReadIndex confirmations missed
  // their 5 s deadline over and over (observed: "a consistent read could not be confirmed by a
  // quorum"); multi-manager Raft is the lab tier's business. The worker-join path is the same
  // cluster.sh code as the manager join, with the other token.
  // MESH_BUILD=0: the host built dist/ before this test; a guest must not rebuild the shared checkout
  // because a source file is newer than dist/ (an edit during a run made every guest run npm ci).
  const up = sh(['up', dir, '-n', '3', '--roles', 'init,worker,worker', '-t', '840', '-e', 'MESH_DAEMON_ARGS=--election-ms 3000 --lb-backend ipvs', '-e', 'MESH_BUILD=0', '-e', 'MESH_DISPATCHER_HEARTBEAT=5s']);
  t.equal(up.code, 0, `vmcluster up: ${up.out.trim()}`);
  if (up.code !== 0) return;

  const wait = sh(['wait', dir, '540'], { timeoutS: 560 });
  const provisionedS = (Date.now() - t0) / 1000;
  t.equal(wait.code, 0, 'every guest ran vagrant/provision/all.sh to the end');
  if (wait.code !== 0) {
    t.comment(wait.out);
    return;
  }
  for (let i = 0; i < 3; i++) {
    const log = fs.readFileSync(path.join(dir, `vm${i}`, 'provision.log'), 'utf8');
    // The guests run this machine's root: nothing to install, nothing to build; all else is real.
    t.match(log, /packages: all \d+ present/, `vm${i}: apt skipped (packages present)`);
    t.match(log, /firewall: nftables table inet meshd_host loaded/, `vm${i}: firewall loaded`);
    t.match(log, /systemd: enabling and \(re\)starting meshd\.service/, `vm${i}: the meshd unit started by systemd, as on a Vagrant box`);
    t.match(log, /meshd answers on/, `vm${i}: meshd answers on its socket`);
  }
  const logs = [0, 1, 2].map((i) => fs.readFileSync(path.join(dir, `vm${i}`, 'provision.log'), 'utf8'));
  t.match(logs[0], /swarm init --advertise-addr 198\.18\.200\.11/, 'm1 initialized the cluster');
  t.match(logs[1], /joined a swarm as a worker/, 'w1 joined as a worker with the token from the shared folder');
  t.match(logs[2], /joined a swarm as a worker/, 'w2 joined as a worker');

  // The probe script from the host side of the underlay (a namespace outside every VM).
  const results = path.join(dir, 'probe.tsv');
  const env = [
    `PROBE_NODES='m1=198.18.200.11 w1=198.18.200.12 w2=198.18.200.13'`,
    `PROBE_EXEC='bash ${VMC} exec ${dir}'`,
    `PROBE_RESULTS=${results}`,
    'PROBE_REPLICAS=6',
  ].join(' ');
  const p0 = Date.now();
  const probe = sh(['host', dir, '--', `env ${env} bash ${PROBE}`], { timeoutS: 420 });
  const probeS = (Date.now() - p0) / 1000;
  t.comment(probe.out.split('\n').filter((l) => !l.startsWith('probe: ') || /passed/.test(l)).join('\n'));
  const rows = fs.existsSync(results)
    ? fs.readFileSync(results, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
        const [result = '', check = '', target = '', detail = ''] = l.split('\t');
        return { result, check, target, detail };
      })
    : [];
  const count = (check: string, result: string): number => rows.filter((r) => r.check === check && r.result === result).length;
  t.equal(count('cluster', 'PASS'), 1, 'all 3 nodes Ready');
  t.equal(count('2377/tcp', 'PASS'), 3, 'the control port answers on every node from outside');
  t.equal(count('firewall', 'PASS'), 3, 'the firewall drops a port it does not open, on every node');
  t.equal(count('deploy', 'PASS'), 1, 'the service on an overlay converged');
  // Every node that runs a task probes from it (6 replicas spread over 3 nodes: normally all three).
  t.ok(count('overlay', 'PASS') >= 2, `from a task on each node that has one, all 6 replicas answer over VXLAN (${count('overlay', 'PASS')} nodes)`);
  t.equal(count('overlay', 'FAIL'), 0, 'no node fails the east-west probe');
  for (const r of rows.filter((x) => x.result === 'FAIL')) t.fail(`${r.check} ${r.target}: ${r.detail}`);
  // The routing mesh is in the build: a skipped publish row is a failure, not a pass.
  for (const mode of ['ingress', 'host']) {
    t.equal(count(mode, 'SKIP'), 0, `${mode}: not skipped`);
    t.equal(count(mode, 'PASS'), 3, `${mode}-mode published port answers on every node`);
  }
  t.equal(probe.code, 0, 'vagrant/probe.sh exits 0');
  if (probe.code !== 0 || rows.some((r) => r.result === 'FAIL')) {
    for (const n of ['m1', 'w1', 'w2']) t.comment(`${n} meshd.log tail:\n${sh(['exec', dir, n, '--', 'journalctl -u meshd.service -n 25 --no-pager'], { timeoutS: 120 }).out}`);
  }
  const total = (Date.now() - t0) / 1000;
  // test/run.js prints "# durations:" comments in its short log.
  t.comment(`durations: vm cluster: boot + provision ${provisionedS.toFixed(1)} s, probe.sh ${probeS.toFixed(1)} s, total ${total.toFixed(1)} s`);
});
