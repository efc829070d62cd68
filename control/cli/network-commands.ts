// `meshctl network create|ls|inspect|rm`: overlay networks (Docker's `network` verbs, swarm scope).
import { Command } from 'commander';
import { call } from '../api/client.js';
import { formatOption, printJson, table, type Format } from './output.js';
import type { TargetFn } from './cluster-commands.js';
import type { NetworkSummary } from '../daemon/network-routes.js';


const collect = (v: string, acc: string[]): string[] => [...acc, v];

function labels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

export function networkCommand(target: TargetFn): Command {
  const c = new Command('network').description('overlay networks: VXLAN across the nodes, with their own subnet, DNS and isolation');
  c.command('create')
    .description('create an overlay network (a subnet from the default pool unless --subnet)')
    .argument('<name>')
    .option('-d, --driver <driver>', 'only "overlay"', 'overlay')
    .option('--subnet <cidr>', 'e.g. 10.10.0.0/24')
    .option('--gateway <ip>', 'inside the subnet (default: its first address)')
    .option('--ip-range <cidr>', 'give task and VIP addresses only from this part of the subnet')
    .option('--attachable', 'standalone tasks may join (meshctl run --network)')
    .option('--opt <k=v>', 'driver options: encrypted (IPsec between nodes), mtu=N', collect, [])
    .option('--ingress', 'make this the routing mesh network (there is one)')
    .option('--label <k=v>', 'a label (repeatable)', collect, [])
    .action(async (name: string, o: { driver: string; subnet?: string; gateway?: string; ipRange?: string; attachable?: boolean; opt: string[]; ingress?: boolean; label: string[] }) => {
      const opts = labels(o.opt);
      const body: Record<string, unknown> = { name, driver: o.driver, labels: labels(o.label) };
      if (o.subnet) body.subnet = o.subnet;
      if (o.gateway) body.gateway = o.gateway;
      if (o.ipRange) body.ipRange = o.ipRange;
      if (o.attachable) body.attachable = true;
      if (o.ingress) body.ingress = true;
      for (const k of Object.keys(opts)) if (k !== 'encrypted' && k !== 'mtu') throw new Error(`--opt ${k}: unknown option (known: encrypted, mtu=N)`);
      if ('encrypted' in opts) body.encrypted = true;
      if (opts.mtu !== undefined) body.mtu = Number(opts.mtu);
      const r = await call<{ id: string }>(target(), 'POST', '/v1/networks', body);
      console.log(r.id);
    });
  c.command('ls')
    .description('list networks')
    .addOption(formatOption())
    .action(async (o: { format: Format }) => {
      const list = await call<NetworkSummary[]>(target(), 'GET', '/v1/networks');
      if (o.format === 'json') return printJson(list);
      console.log(table(['ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'VNI', 'ATTACHABLE', 'SERVICES'], list.map((n) => [n.id.slice(0, 12), n.name + (n.ingress ? ' (ingress)' : ''), n.driver, n.scope, n.error ? `error: ${n.error}` : n.subnet, n.vni ?? '-', n.attachable ? 'yes' : 'no', n.services])));
    });
  c.command('inspect')
    .description('show a network: spec, allocation, VIPs and the tasks on it')
    .argument('<network...>')
    .action(async (refs: string[]) => {
      const out = [];
      for (const r of refs) out.push(await call(target(), 'GET', `/v1/networks/${encodeURIComponent(r)}`));
      printJson(out);
    });
  c.command('rm')
    .description('remove networks (refused while a service uses them)')
    .argument('<network...>')
    .action(async (refs: string[]) => {
      for (const r of refs) {
        await call(target(), 'POST', `/v1/networks/${encodeURIComponent(r)}/rm`, {});
        console.log(r);
      }
    });
  return c;
}
