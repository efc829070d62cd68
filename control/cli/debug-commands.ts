// `meshctl debug dataplane SERVICE`: what this node's kernel holds for a service, and why a published
// port or VIP would not reach a task from here.
import { Command } from 'commander';
import { call } from '../api/client.js';
import { formatOption, printJson, table, type Format } from './output.js';
import type { TargetFn } from './cluster-commands.js';
import type { DataplaneReport } from '../daemon/debug-dataplane.js';

const fmt = (k: Record<string, number> | null): string => (k === null ? 'not programmed' : Object.entries(k).map(([ip, w]) => `${ip}${w ? '' : '(w0)'}`).join(' ') || 'no backends');

export function debugCommand(target: TargetFn): Command {
  const d = new Command('debug').description('look inside this node\'s dataplane');
  d.command('dataplane')
    .description('load-balancer state for a service on this node (VIPs, published ports), read back from the kernel, with reasons when traffic would not reach a task')
    .argument('<service>')
    .addOption(formatOption())
    .action(async (svc: string, o: { format: Format }) => {
      const r = await call<DataplaneReport>(target(), 'GET', `/v1/local/debug/dataplane/${encodeURIComponent(svc)}`);
      if (o.format === 'json') return printJson(r);
      console.log(`service ${r.service} on node ${r.node} (backend ${r.backend})`);
      if (r.vips.length) console.log(`\n${table(['VIP', 'SANDBOX', 'TASKS (from gossip)', 'KERNEL'], r.vips.map((v) => [v.vip, v.netns, v.tasks.join(' ') || '-', fmt(v.kernel)]))}`);
      if (r.ingress.length) console.log(`\n${table(['PUBLISHED', 'SANDBOX', 'TASKS (ingress network)', 'KERNEL'], r.ingress.map((v) => [v.port, v.netns, v.tasks.join(' ') || '-', fmt(v.kernel)]))}`);
      if (r.hostDnat.length) console.log(`\nnode DNAT: ${r.hostDnat.join('; ')}`);
      console.log(r.problems.length ? `\nproblems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}` : '\nno problem found: traffic to this service reaches its tasks from here');
    });
  return d;
}
