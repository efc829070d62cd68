// The runner's sweep of a killed run's leftovers: a half-made lab (node namespace with a process still
// running in it, underlay, host link) and a lone test namespace are all removed; nothing else is.
import t from 'tap';
import fs from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { listNetns } from '../../dataplane/netlink/index.js';
import { otherTestRuns, sweepTestObjects } from '../helpers/sweep.js';

const base = `mt${process.pid % 100000}zw`;
const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

t.test('a killed run\'s lab and namespaces are swept, processes in them stopped', async (t) => {
  const mine = (n: string): boolean => n.startsWith(base);
  t.teardown(() => sweepTestObjects(mine).then(() => undefined));
  const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
  for (const ns of [`${base}-ul`, `${base}-n1`, `${base}x0`]) ip('netns', 'add', ns);
  ip('link', 'add', `${base}-h`, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', `${base}-ul`);
  const keep = `mt${process.pid % 100000}zk`; // another run's name: not matched, not touched
  ip('netns', 'add', keep);
  t.teardown(() => void ip('netns', 'del', keep));
  // A "daemon" left running inside the node namespace, detached like a killed run's child.
  const orphan = spawn('ip', ['netns', 'exec', `${base}-n1`, 'sleep', '300'], { detached: true, stdio: 'ignore' });
  orphan.unref();
  await new Promise((r) => setTimeout(r, 200));
  t.ok(alive(orphan.pid!), 'the orphan runs before the sweep');

  const r = await sweepTestObjects(mine);
  t.same(r.labs, [base], 'the lab prefix is taken down as a lab');
  t.same(r.netns, [`${base}x0`], 'the lone namespace is removed by the generic pass');
  t.same(listNetns().filter(mine), [], 'no namespace of the killed run is left');
  t.notOk(fs.existsSync(`/sys/class/net/${base}-h`), 'the host link is gone');
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(alive(orphan.pid!), 'the process left in the node namespace was stopped');
  t.ok(listNetns().includes(keep), 'a namespace the filter does not match is untouched');

  const again = await sweepTestObjects(mine);
  t.same(again, { labs: [], netns: [], links: [] }, 'a second sweep finds nothing');
});

t.test('other test runs are seen; this process and its ancestors are not', async (t) => {
  t.notOk(otherTestRuns().includes(process.pid), 'not this process');
  t.notOk(otherTestRuns().includes(process.ppid), 'not the tap runner that started it');
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)', '/x/dist/test/lab/other.test.js'], { stdio: 'ignore' });
  t.teardown(() => void other.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
  t.ok(otherTestRuns().includes(other.pid!), 'a process running a dist/test file is another run');
});
