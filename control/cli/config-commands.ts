// `meshctl config create|update|ls|inspect|rm`: named blobs kept in Raft.
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { call } from '../api/client.js';
import { formatOption, printJson, table, type Format } from './output.js';
import type { TargetFn } from './cluster-commands.js';


function readData(file: string): string {
  const b = file === '-' ? fs.readFileSync(0) : fs.readFileSync(file);
  return b.toString('base64');
}

export function configCommand(target: TargetFn): Command {
  const c = new Command('config').description('named configuration blobs, replicated by the managers');
  for (const verb of ['create', 'update'] as const) {
    c.command(verb)
      .description(`${verb} a config from a file (- for standard input)`)
      .argument('<name>')
      .argument('<file>')
      .action(async (name: string, file: string) => {
        const r = await call<{ id: string }>(target(), 'PUT', `/v1/configs/${encodeURIComponent(name)}`, { data: readData(file), mode: verb });
        console.log(r.id);
      });
  }
  c.command('ls')
    .description('list configs')
    .addOption(formatOption())
    .action(async (o: { format: Format }) => {
      const list = await call<{ id: string; name: string; size: number; updatedAt: string }[]>(target(), 'GET', '/v1/configs');
      if (o.format === 'json') return printJson(list);
      console.log(table(['ID', 'NAME', 'SIZE', 'UPDATED'], list.map((x) => [x.id, x.name, x.size, x.updatedAt])));
    });
  c.command('inspect')
    .description('show a config; --data prints its contents')
    .argument('<name>')
    .option('--data', 'print the data only')
    .action(async (name: string, o: { data?: boolean }) => {
      const x = await call<{ data: string }>(target(), 'GET', `/v1/configs/${encodeURIComponent(name)}`);
      if (o.data) process.stdout.write(Buffer.from(x.data, 'base64'));
      else printJson(x);
    });
  c.command('rm')
    .description('remove configs')
    .argument('<name...>')
    .action(async (names: string[]) => {
      for (const n of names) {
        await call(target(), 'POST', `/v1/configs/${encodeURIComponent(n)}/rm`, {});
        console.log(n);
      }
    });
  return c;
}
