// `meshctl run --network NET [--name N] -- CMD ARGS` and `meshctl rm NAME|ID`: standalone tasks on
// attachable networks, on the node meshctl talks to (like `docker run` on an attachable overlay).
import { Command } from 'commander';
import { call } from '../api/client.js';
import { formatOption, printJson, type Format } from './output.js';
import type { TargetFn } from './cluster-commands.js';

interface AttachmentView {
  id: string;
  name: string;
  state: string;
  message: string;
  networks: { name: string; addresses: string[] }[];
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

export function runCommands(target: TargetFn): Command[] {
  const run = new Command('run')
    .description('run a standalone task on this node, attached to attachable networks (removed when it exits)')
    .option('--network <name>', 'an attachable network (repeatable)', collect, [])
    .option('--name <name>', 'its name: resolves to it in DNS on its networks')
    .option('--runtime <r>', 'netns (a command) or docker (an image)')
    .option('--image <ref>', 'docker image (ID or reference)')
    .option('-e, --env <K=V>', 'environment (repeatable)', collect, [])
    .addOption(formatOption())
    .argument('[command...]', 'the command and its arguments (after --)')
    .action(async (command: string[], o: { network: string[]; name?: string; runtime?: string; image?: string; env: string[]; format: Format }) => {
      if (!o.network.length) throw new Error('--network is required (an attachable network: meshctl network create --attachable NAME)');
      const env = Object.fromEntries(o.env.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
      const body: Record<string, unknown> = { networks: o.network, env };
      if (o.name) body.name = o.name;
      if (o.runtime) body.runtime = o.runtime;
      if (o.image) body.image = o.image;
      if (command.length) body.command = command;
      const v = await call<AttachmentView>(target(), 'POST', '/v1/local/run', body, 60_000);
      if (o.format === 'json') return printJson(v);
      if (v.state !== 'running') throw new Error(`task ${v.name} (${v.id}) is ${v.state}: ${v.message}`);
      console.log(`${v.id} ${v.name} running, ${v.networks.map((n) => `${n.name} ${n.addresses.join(',')}`).join('; ')}`);
    });
  const rm = new Command('rm')
    .description('stop and remove standalone tasks (by name or ID)')
    .argument('<task...>')
    .action(async (ids: string[]) => {
      for (const id of ids) {
        await call(target(), 'POST', `/v1/local/rm/${encodeURIComponent(id)}`, {});
        console.log(id);
      }
    });
  return [run, rm];
}
