// `meshctl lab up|down|status|exec|env|demo`
import { Command, Option } from 'commander';
import type { LabStatus } from '../lab/lab.js';
import { LAB_DEFAULTS, LabError, planLab, resolveNode } from '../lab/plan.js';
import { formatOption, printJson, table, type Format } from './output.js';
import { call } from '../api/client.js';

// The lab's code (netlink, the native addon) loads only for `meshctl lab`: every other command
// starts faster without it, which counts in an emulated guest (seconds per meshctl).
const lab = () => import('../lab/lab.js');

const int = (name: string) => (v: string): number => {
  if (!/^\d+$/.test(v)) throw new Error(`${name} must be a whole number, not "${v}"`);
  return Number(v);
};

function prefixOption(): Option {
  return new Option('--prefix <name>', 'lab name: prefixes every namespace and link it makes').default(LAB_DEFAULTS.prefix);
}


function printStatus(s: LabStatus, format: Format): void {
  if (format === 'json') return printJson(s);
  if (!s.up) {
    console.log(`lab "${s.prefix}" is not up${s.leftovers.length ? `; leftovers found: ${s.leftovers.join(', ')} (run \`meshctl lab down --prefix ${s.prefix}\`)` : ''}`);
    return;
  }
  console.log(`lab "${s.prefix}": underlay ${s.subnet}, host side ${s.hostAddress}`);
  console.log(
    table(
      ['NODE', 'NETNS', 'ADDRESS', 'LINK', 'PING FROM HOST', 'MESHD', 'PROBLEM'],
      s.nodes.map((n) => [n.name, n.netns, n.address, n.linkUp ? 'up' : 'down', n.reachable ? `${n.rttMs} ms` : 'no reply', n.daemon ? `${n.daemon.role}${n.daemon.raft ? ` (${n.daemon.raft})` : ''}` : '-', n.problem ?? '']),
    ),
  );
  if (s.leftovers.length) console.log(`leftovers not in this lab: ${s.leftovers.join(', ')}`);
}

async function loadPlan(prefix: string) {
  const st = (await lab()).readLabState(prefix);
  if (!st) throw new LabError(`lab "${prefix}" is not up (meshctl lab up --prefix ${prefix})`);
  return st.plan;
}

export function labCommand(): Command {
  const cmd = new Command('lab').description('a cluster of network namespaces on this machine, for demos and tests').enablePositionalOptions();

  cmd
    .command('up')
    .description('create N node namespaces on an underlay bridge (198.18.0.0/15), reachable from the host')
    .addOption(prefixOption())
    .option('--nodes <n>', 'number of nodes', int('--nodes'), LAB_DEFAULTS.nodes)
    .option('--subnet <cidr>', 'underlay subnet, inside 198.18.0.0/15', LAB_DEFAULTS.subnet)
    .option('--mtu <bytes>', 'underlay MTU', int('--mtu'), LAB_DEFAULTS.mtu)
    .option('--managers <m>', 'also form a cluster: swarm init on n1, join n2..nM as managers, the rest as workers', int('--managers'), 0)
    .option('--no-daemons', 'do not start meshd on the nodes')
    .option('--election-ms <ms>', 'Raft election timeout for the daemons', int('--election-ms'))
    .addOption(formatOption())
    .action(async (o: { prefix: string; nodes: number; subnet: string; mtu: number; managers: number; daemons: boolean; electionMs?: number; format: Format }) => {
      const st = await (await lab()).labUp({ prefix: o.prefix, nodes: o.nodes, subnet: o.subnet, mtu: o.mtu }, o.format === 'json' ? undefined : (l) => console.log(l), {
        daemons: o.daemons,
        managers: o.managers,
        daemonFlags: o.electionMs ? { electionMs: o.electionMs } : {},
      });
      if (o.format === 'json') printJson(st);
    });

  cmd
    .command('down')
    .description('remove every namespace and link of the lab (works after a crash or a half-finished up)')
    .addOption(prefixOption())
    .addOption(formatOption())
    .action(async (o: { prefix: string; format: Format }) => {
      const r = await (await lab()).labDown(o.prefix, o.format === 'json' ? undefined : (l) => console.log(l));
      if (o.format === 'json') printJson(r);
    });

  cmd
    .command('status')
    .description('nodes, their addresses, and whether the host side reaches them')
    .addOption(prefixOption())
    .addOption(formatOption())
    .action(async (o: { prefix: string; format: Format }) => {
      const s = await (await lab()).labStatus(o.prefix);
      printStatus(s, o.format);
      if (s.up && s.nodes.some((n) => n.problem)) process.exitCode = 1;
    });

  cmd
    .command('exec')
    .description('run a command inside a node: meshctl lab exec n1 -- ip addr')
    .addOption(prefixOption())
    .argument('<node>', 'n1, 1 or PREFIX-n1')
    .argument('<cmd...>', 'the command (put it after --)')
    .passThroughOptions()
    .action(async (node: string, cmd: string[], o: { prefix: string }) => {
      const n = resolveNode(await loadPlan(o.prefix), node);
      const argv = cmd[0] === '--' ? cmd.slice(1) : cmd;
      if (argv.length === 0) throw new LabError('lab exec needs a command: meshctl lab exec n1 -- ip addr');
      process.exitCode = await (await lab()).labExec(n.netns, argv);
    });

  cmd
    .command('env')
    .description("print the line that points meshctl at a node's daemon: eval $(meshctl lab env n1)")
    .addOption(prefixOption())
    .addOption(formatOption())
    .argument('<node>', 'n1, 1 or PREFIX-n1')
    .action(async (node: string, o: { prefix: string; format: Format }) => {
      const n = resolveNode(await loadPlan(o.prefix), node);
      const { nodeSocketPath } = await lab();
      const host = `unix://${nodeSocketPath(n.netns)}`;
      if (o.format === 'json') printJson({ MESH_HOST: host, node: n.name, netns: n.netns, address: n.address });
      else console.log(`export MESH_HOST=${host}`);
    });

  cmd
    .command('demo')
    .description('a 3-node lab with a cluster (1 manager, 2 workers), an overlay network, 6 replicas published in ingress mode and probed on every node from outside, and DNS from inside a task')
    .addOption(prefixOption())
    .action(async (o: { prefix: string }) => {
      const t0 = Date.now();
      const { labDown, labRun, labStatus, labUp, nodeSocketPath } = await lab();
      const { demoServices } = await import('./lab-demo.js');
      console.log(`== meshctl lab up --nodes 3 --prefix ${o.prefix}`);
      await labDown(o.prefix);
      await labUp({ ...LAB_DEFAULTS, prefix: o.prefix, nodes: 3 }, (l) => console.log(`   ${l}`), { managers: 1 });
      console.log(`\n== meshctl lab status --prefix ${o.prefix}`);
      const s = await labStatus(o.prefix);
      printStatus(s, 'table');
      const plan = planLab({ ...LAB_DEFAULTS, prefix: o.prefix, nodes: 3 });
      console.log('\n== node to node: ping from inside each node (row) to each other node (column)');
      let bad = s.nodes.filter((n) => n.problem).length;
      const rows: string[][] = [];
      for (const a of plan.nodes) {
        const row = [a.name];
        for (const b of plan.nodes) {
          if (a === b) {
            row.push('-');
            continue;
          }
          const r = await labRun(a.netns, ['ping', '-q', '-c', '1', '-W', '1', b.address]);
          const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout)?.[1];
          row.push(r.code === 0 ? `${rtt} ms` : 'FAIL');
          if (r.code !== 0) bad++;
        }
        rows.push(row);
      }
      console.log(table(['FROM \\ TO', ...plan.nodes.map((n) => n.name)], rows));
      console.log(`\n== meshctl node ls   (on n1: MESH_HOST=unix://${nodeSocketPath(plan.nodes[0]!.netns)})`);
      const nodes = await call<{ id: string; hostname: string; status: string; availability: string; managerStatus: string }[]>({ socketPath: nodeSocketPath(plan.nodes[0]!.netns), display: 'n1' }, 'GET', '/v1/nodes');
      console.log(table(['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS'], nodes.map((n) => [n.id, n.hostname, n.status, n.availability, n.managerStatus])));
      if (nodes.length !== 3 || nodes.some((n) => n.status !== 'Ready')) bad++;
      bad += await demoServices({ socketPath: nodeSocketPath(plan.nodes[0]!.netns), display: 'n1' }, plan.nodes, (l) => console.log(l));
      console.log(`\n${bad === 0 ? 'demo ok' : `demo found ${bad} problems`} in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
      console.log(`Explore: eval $(meshctl lab env n1); meshctl service ps web; meshctl debug dataplane web; curl ${plan.nodes[1]!.address}:8080`);
      console.log(`Tear down: meshctl lab down --prefix ${o.prefix}`);
      if (bad) process.exitCode = 1;
    });

  return cmd;
}
