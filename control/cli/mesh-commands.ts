// `meshctl mesh status` and debug access to the gossip tables.
import { Command, Option } from 'commander';
import { call } from '../api/client.js';
import { formatOption, printJson, table, type Format } from './output.js';
import type { TargetFn } from './cluster-commands.js';


interface Status {
  self: string;
  addr: { host: string; port: number };
  members: { name: string; hostname: string; addr: string; status: string; incarnation: number }[];
  keyIds: string[];
  primaryKeyId: string;
  tables: Record<string, number>;
  counters: Record<string, number>;
  dropped: Record<string, number>;
  health: number;
  overlay: { node: string; addr: string; state: string; detail: string; rttMs?: number }[];
  dataplane?: { passes: number; writes: number; lastWrites: number; errors: number; lastError?: string };
}

export function meshCommand(target: TargetFn): Command {
  const mesh = new Command('mesh').description('the gossip mesh on 7946: members, keys, tables');

  mesh
    .command('status')
    .description('members as this node sees them, key ids in the ring (never the keys), table sizes, packet counters')
    .addOption(formatOption())
    .action(async (o: { format: Format }) => {
      const s = await call<Status>(target(), 'GET', '/v1/mesh/status');
      if (o.format === 'json') return printJson(s);
      console.log(`this node: ${s.self} on ${s.addr.host}:${s.addr.port}, local health ${s.health} (0 is best)`);
      console.log(`keys: ${s.keyIds.map((k) => (k === s.primaryKeyId ? `${k} (primary)` : k)).join(', ')}\n`);
      console.log(table(['MEMBER', 'HOSTNAME', 'ADDRESS', 'STATE', 'INCARNATION'], s.members.map((m) => [m.name, m.hostname, m.addr, m.status, m.incarnation])));
      const nets = Object.entries(s.tables);
      if (nets.length) console.log(`\n${table(['NETWORK', 'ENTRIES'], nets)}`);
      if (s.overlay.length) {
        console.log(`\n${table(['OVERLAY PATH TO', 'ADDRESS', 'STATE', 'RTT', 'DETAIL'], s.overlay.map((h) => [h.node, h.addr, h.state, h.rttMs !== undefined ? `${h.rttMs} ms` : '-', h.detail]))}`);
        const alive = new Set(s.members.filter((m) => m.status === 'alive').map((m) => m.hostname));
        for (const h of s.overlay.filter((x) => x.state === 'broken' || x.state === 'mtu')) {
          console.log(`${alive.has(h.node) ? 'gossip up, ' : 'gossip down, '}${h.state === 'mtu' ? `MTU too small on the path to ${h.node}` : `VXLAN path to ${h.node} broken (UDP 4789 blocked?)`}`);
        }
      }
      if (s.dataplane) console.log(`\ndataplane: ${s.dataplane.passes} passes, ${s.dataplane.writes} kernel writes (last pass ${s.dataplane.lastWrites}), ${s.dataplane.errors} errors${s.dataplane.lastError ? ` (last: ${s.dataplane.lastError})` : ''}`);
      const drops = Object.entries(s.dropped).filter(([, n]) => n > 0);
      console.log(`\npackets: udp in ${s.counters.udpIn}, out ${s.counters.udpOut}; tcp in ${s.counters.tcpIn}, out ${s.counters.tcpOut}; dropped ${drops.length ? drops.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}`);
    });

  const t = mesh.command('table').description('debug: read and write network-scoped gossip tables');
  t.command('put')
    .argument('<network>')
    .argument('<table>')
    .argument('<key>')
    .argument('<value>')
    .action(async (network: string, tbl: string, key: string, value: string) => {
      await call(target(), 'POST', '/v1/mesh/tables', { network, table: tbl, key, value });
    });
  t.command('rm')
    .argument('<network>')
    .argument('<table>')
    .argument('<key>')
    .action(async (network: string, tbl: string, key: string) => {
      await call(target(), 'POST', '/v1/mesh/tables', { network, table: tbl, key, delete: true });
    });
  t.command('ls')
    .argument('<network>')
    .addOption(formatOption())
    .action(async (network: string, o: { format: Format }) => {
      const entries = await call<{ table: string; key: string; value: string; owner: string; version: number }[]>(target(), 'GET', `/v1/mesh/tables/${encodeURIComponent(network)}`);
      if (o.format === 'json') return printJson(entries);
      console.log(table(['TABLE', 'KEY', 'VALUE', 'OWNER', 'VERSION'], entries.map((e) => [e.table, e.key, e.value, e.owner, e.version])));
    });
  t.command('join')
    .description('take part in a network\'s tables')
    .argument('<network>')
    .action(async (network: string) => {
      await call(target(), 'POST', `/v1/mesh/networks/${encodeURIComponent(network)}/join`, {});
    });
  return mesh;
}
