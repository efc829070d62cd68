// `meshctl publish SERVICE PUBLISHED:TARGET[/tcp|udp] --mode ingress|host` and
// `meshctl publish --rm SERVICE PUBLISHED[/udp]`: a port change is a service update (the allocator
// reserves ingress ports cluster-wide; host-mode ports are placed by the scheduler).
import { Command, Option } from 'commander';
import { call } from '../api/client.js';
import { parsePublish } from './service-flags.js';
import type { TargetFn } from './cluster-commands.js';
import type { PortConfig, ServiceSpec } from '../store/objects.js';

export function publishCommand(target: TargetFn): Command {
  return new Command('publish')
    .description('publish a service port on every node (ingress mode, the routing mesh) or on the nodes that run it (host mode)')
    .argument('<service>')
    .argument('<port>', 'PUBLISHED:TARGET[/tcp|udp] (with --rm: PUBLISHED[/udp])')
    .addOption(new Option('--mode <mode>', 'ingress: every node accepts and balances; host: only nodes with a task, straight to it').choices(['ingress', 'host']).default('ingress'))
    .option('--rm', 'unpublish the port')
    .action(async (ref: string, port: string, o: { mode: 'ingress' | 'host'; rm?: boolean }) => {
      const t = target();
      const cur = await call<{ spec: ServiceSpec }>(t, 'GET', `/v1/services/${encodeURIComponent(ref)}`);
      const spec = structuredClone(cur.spec);
      if (o.rm) {
        const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(port);
        if (!m) throw new Error(`--rm ${port}: use PUBLISHED[/tcp|udp]`);
        const proto = m[2] ?? 'tcp';
        const before = spec.endpoint.ports.length;
        spec.endpoint.ports = spec.endpoint.ports.filter((p) => !(p.published === Number(m[1]) && p.protocol === proto));
        if (spec.endpoint.ports.length === before) throw new Error(`service ${ref} does not publish ${m[1]}/${proto}`);
      } else {
        const p: PortConfig = { ...parsePublish(port), mode: o.mode };
        if (spec.endpoint.ports.some((x) => x.published === p.published && x.protocol === p.protocol)) throw new Error(`service ${ref} already publishes ${p.published}/${p.protocol} (meshctl publish --rm ${ref} ${p.published}${p.protocol === 'udp' ? '/udp' : ''} first)`);
        spec.endpoint.ports.push(p);
      }
      await call(t, 'POST', `/v1/services/${encodeURIComponent(ref)}/update`, { spec });
      console.log(o.rm ? `${ref}: ${port} unpublished` : `${ref}: ${port} published (${o.mode})`);
    });
}
