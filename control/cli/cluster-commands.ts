// `meshctl swarm ...` and `meshctl node ...`: thin clients of the daemon API.
import { Command, Option } from 'commander';
import { call, parseHost, type Target } from '../api/client.js';
import type { NodeInfo, NodeView } from '../daemon/routes.js';
import type { ClusterSpec } from '../store/objects.js';
import { formatOption, printJson, table, type Format } from './output.js';
import { formatDuration, parseDuration } from './service-flags.js';

export type TargetFn = () => Target;


export function swarmCommand(target: TargetFn): Command {
  const swarm = new Command('swarm').description('create, join and leave a cluster');

  swarm
    .command('init')
    .description('make this node the first manager of a new cluster')
    .option('--advertise-addr <addr>', 'address other nodes reach this one at (HOST[:PORT], default port 2377)')
    .option('--listen-addr <addr>', 'address to listen on for 2377 (default 0.0.0.0:PORT)')
    .option('--force-new-cluster', 'restart this surviving manager as a one-member cluster, keeping its data')
    .option('--dispatcher-heartbeat <d>', 'how often nodes report to the managers, e.g. 5s (default 1s; a node is down after 3 missed)')
    .addOption(formatOption())
    .action(async (o: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; dispatcherHeartbeat?: string; format: Format }) => {
      const t = target();
      const heartbeatPeriodMs = o.dispatcherHeartbeat ? parseDuration(o.dispatcherHeartbeat, '--dispatcher-heartbeat') : undefined;
      if (heartbeatPeriodMs !== undefined && o.forceNewCluster) throw new Error('--dispatcher-heartbeat is for a new cluster; change a running one with `meshctl swarm update --dispatcher-heartbeat`');
      const r = await call<{ clusterId: string; nodeId: string }>(t, 'POST', '/v1/swarm/init', { advertiseAddr: o.advertiseAddr, listenAddr: o.listenAddr, forceNewCluster: o.forceNewCluster, heartbeatPeriodMs });
      if (o.format === 'json') return printJson(r);
      if (o.forceNewCluster) {
        console.log(`Cluster ${r.clusterId} restarted as a one-member cluster on node ${r.nodeId}, with its data. Add managers again with \`meshctl swarm join-token manager\`.`);
        return;
      }
      const tok = await call<{ token: string; managers: string[] }>(t, 'GET', '/v1/swarm/join-token/worker');
      console.log(`Swarm initialized: current node (${r.nodeId}) is now a manager.\n`);
      console.log(`To add a worker to this swarm, run the following command:\n\n    meshctl swarm join --token ${tok.token} ${tok.managers[0] ?? ''}\n`);
      console.log("To add a manager to this swarm, run 'meshctl swarm join-token manager' and follow the instructions.");
    });

  swarm
    .command('join')
    .description('join a cluster as a worker or manager (the token decides)')
    .requiredOption('--token <token>', 'join token from `meshctl swarm join-token`')
    .option('--advertise-addr <addr>', 'address other nodes reach this one at')
    .option('--listen-addr <addr>', 'address to listen on for 2377')
    .argument('<host:port>', 'a manager of the cluster')
    .addOption(formatOption())
    .action(async (remote: string, o: { token: string; advertiseAddr?: string; listenAddr?: string; format: Format }) => {
      const r = await call<{ clusterId: string; nodeId: string; role: string }>(target(), 'POST', '/v1/swarm/join', { remoteAddr: remote, token: o.token, advertiseAddr: o.advertiseAddr, listenAddr: o.listenAddr }, 60_000);
      if (o.format === 'json') return printJson(r);
      console.log(`This node joined a swarm as a ${r.role}.`);
    });

  swarm
    .command('leave')
    .description('leave the cluster')
    .option('-f, --force', 'leave even as a manager (may cost the cluster its quorum)')
    .addOption(formatOption())
    .action(async (o: { force?: boolean; format: Format }) => {
      const r = await call<{ left: string }>(target(), 'POST', '/v1/swarm/leave', { force: o.force === true });
      if (o.format === 'json') return printJson(r);
      console.log('Node left the swarm.');
    });

  swarm
    .command('update')
    .description('change cluster settings')
    .option('--rotate-gossip-key', 'rotate the gossip encryption key now (add everywhere, then switch, then drop the oldest)')
    .option('--dispatcher-heartbeat <d>', 'how often nodes report to the managers, e.g. 1s (a node is down after 3 missed)')
    .option('--gossip-key-rotation <d>', 'how often the leader rotates the gossip key, e.g. 12h')
    .option('--cert-expiry <d>', 'lifetime of node certificates, e.g. 2160h (nodes renew at 50-80% of it)')
    .option('--autolock <bool>', 'true: managers keep their keys sealed with an unlock key that is never stored on disk; false: off')
    .addOption(formatOption())
    .action(async (o: { rotateGossipKey?: boolean; dispatcherHeartbeat?: string; gossipKeyRotation?: string; certExpiry?: string; autolock?: string; format: Format }) => {
      const spec: Record<string, number> = {};
      if (o.dispatcherHeartbeat) spec.heartbeatPeriodMs = parseDuration(o.dispatcherHeartbeat, '--dispatcher-heartbeat');
      if (o.gossipKeyRotation) spec.gossipKeyRotationMs = parseDuration(o.gossipKeyRotation, '--gossip-key-rotation');
      if (o.certExpiry) spec.certExpiryMs = parseDuration(o.certExpiry, '--cert-expiry');
      if (Object.keys(spec).length) {
        await call(target(), 'POST', '/v1/swarm/spec', spec);
        if (o.format !== 'json') console.log('Cluster settings updated.');
      }
      if (o.autolock !== undefined) {
        if (o.autolock !== 'true' && o.autolock !== 'false') throw new Error(`--autolock wants true or false, not "${o.autolock}"`);
        const r = await call<{ autolock: boolean; unlockKey?: string }>(target(), 'POST', '/v1/swarm/autolock', { enable: o.autolock === 'true' });
        if (o.format === 'json') printJson(r);
        else if (r.unlockKey) console.log(`Autolock is on. To unlock a restarted manager, run \`meshctl swarm unlock\` and give it this key:\n\n    ${r.unlockKey}\n\nKeep it safe (a password manager): without it a locked manager cannot restart.`);
        else console.log('Autolock is off.');
      }
      if (!o.rotateGossipKey) {
        if (!Object.keys(spec).length && o.autolock === undefined) throw new Error('nothing to update: pass --rotate-gossip-key, --dispatcher-heartbeat, --gossip-key-rotation, --cert-expiry or --autolock');
        return;
      }
      const r = await call<{ ids: string[]; primary: string }>(target(), 'POST', '/v1/swarm/rotate-gossip-key', {}, 60_000);
      if (o.format === 'json') return printJson(r);
      console.log(`Gossip key rotated: primary ${r.primary}, ring ${r.ids.join(', ')}.`);
    });

  swarm
    .command('inspect')
    .description('the cluster settings that `swarm init` and `swarm update` set')
    .addOption(formatOption())
    .action(async (o: { format: Format }) => {
      const r = await call<{ id: string; spec: ClusterSpec; autolock: boolean }>(target(), 'GET', '/v1/swarm/spec');
      if (o.format === 'json') return printJson(r);
      const s = r.spec;
      const d = (ms: number | undefined): string => (ms === undefined ? '-' : formatDuration(ms));
      console.log(
        table(
          ['SETTING', 'VALUE'],
          [
            ['cluster', r.id],
            ['dispatcher heartbeat', `${d(s.heartbeatPeriodMs)} (a node is down after ${s.heartbeatGrace} missed: ${d(s.heartbeatPeriodMs * s.heartbeatGrace)})`],
            ['raft election tick', d(s.electionTickMs)],
            ['raft heartbeat tick', d(s.heartbeatTickMs)],
            ['gossip key rotation', d(s.gossipKeyRotationMs)],
            ['certificate expiry', d(s.certExpiryMs)],
            ['autolock', String(r.autolock)],
          ],
        ),
      );
    });

  swarm
    .command('unlock')
    .description('unlock a manager that restarted with autolock on (reads the key from --key or stdin)')
    .option('--key <key>', 'the unlock key (SWMKEY-1-...); by default one line from stdin')
    .action(async (o: { key?: string }) => {
      const key = o.key ?? (await readLine());
      await call(target(), 'POST', '/v1/swarm/unlock', { key: key.trim() }, 60_000);
      console.log('Manager unlocked.');
    });

  swarm
    .command('unlock-key')
    .description('show (or --rotate) the key that unlocks restarted managers when autolock is on')
    .option('--rotate', 'replace the unlock key; managers re-seal their keys with the new one')
    .option('-q, --quiet', 'print the key only')
    .addOption(formatOption())
    .action(async (o: { rotate?: boolean; quiet?: boolean; format: Format }) => {
      const t = target();
      const r = o.rotate ? await call<{ unlockKey: string }>(t, 'POST', '/v1/swarm/unlock-key/rotate') : await call<{ unlockKey: string }>(t, 'GET', '/v1/swarm/unlock-key');
      if (o.format === 'json') return printJson(r);
      if (o.quiet) return console.log(r.unlockKey);
      if (o.rotate) console.log('Successfully rotated the unlock key.\n');
      console.log(`To unlock a restarted manager, run \`meshctl swarm unlock\` and give it this key:\n\n    ${r.unlockKey}\n`);
    });

  swarm
    .command('join-token')
    .description('show (or --rotate) the token to join as a worker or manager')
    .argument('<role>', 'worker or manager')
    .option('--rotate', 'replace the token; the old one stops working, joined nodes are not affected')
    .option('-q, --quiet', 'print the token only')
    .addOption(formatOption())
    .action(async (role: string, o: { rotate?: boolean; quiet?: boolean; format: Format }) => {
      if (role !== 'worker' && role !== 'manager') throw new Error(`role must be "worker" or "manager", not "${role}"`);
      const t = target();
      if (o.rotate) await call(t, 'POST', `/v1/swarm/join-token/${role}/rotate`);
      const r = await call<{ token: string; managers: string[] }>(t, 'GET', `/v1/swarm/join-token/${role}`);
      if (o.format === 'json') return printJson(r);
      if (o.quiet) return console.log(r.token);
      if (o.rotate) console.log(`Successfully rotated ${role} join token.\n`);
      console.log(`To add a ${role} to this swarm, run the following command:\n\n    meshctl swarm join --token ${r.token} ${r.managers[0] ?? ''}\n`);
    });

  return swarm;
}

export function nodeCommand(target: TargetFn): Command {
  const node = new Command('node').description('manage the nodes of the cluster (on a manager)');

  node
    .command('ls')
    .description('list nodes')
    .option('-q, --quiet', 'IDs only')
    .addOption(formatOption())
    .action(async (o: { quiet?: boolean; format: Format }) => {
      const nodes = await call<NodeView[]>(target(), 'GET', '/v1/nodes');
      if (o.format === 'json') return printJson(nodes);
      if (o.quiet) return nodes.forEach((n) => console.log(n.id));
      console.log(table(['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS'], nodes.map((n) => [`${n.id}${n.self ? ' *' : ''}`, n.hostname, n.status, n.availability, n.managerStatus])));
    });

  node
    .command('inspect')
    .description('details of one node (ID, ID prefix or hostname)')
    .argument('<node>')
    .option('--pretty', 'human-readable')
    .action(async (ref: string, o: { pretty?: boolean }) => {
      const n = await call<NodeView & { object: unknown }>(target(), 'GET', `/v1/nodes/${encodeURIComponent(ref)}`);
      if (!o.pretty) return printJson(n.object);
      console.log(`ID:\t\t${n.id}\nHostname:\t${n.hostname}\nRole:\t\t${n.role}\nStatus:\t\t${n.status}\nAvailability:\t${n.availability}\nAddress:\t${n.addr}`);
      if (n.managerStatus) console.log(`Manager Status:\t${n.managerStatus}`);
      for (const [k, v] of Object.entries(n.labels)) console.log(`Label:\t\t${k}=${v}`);
    });

  const update = (ref: string, body: object): Promise<unknown> => call(target(), 'POST', `/v1/nodes/${encodeURIComponent(ref)}/update`, body, 60_000);

  node
    .command('update')
    .description('change availability or labels')
    .argument('<node>')
    .addOption(new Option('--availability <a>', 'active, pause or drain').choices(['active', 'pause', 'drain']))
    .option('--label-add <key=value>', 'add or change a label (repeatable)', collect, [] as string[])
    .option('--label-rm <key>', 'remove a label (repeatable)', collect, [] as string[])
    .action(async (ref: string, o: { availability?: string; labelAdd?: string[]; labelRm?: string[] }) => {
      const labelAdd: Record<string, string> = {};
      for (const kv of o.labelAdd ?? []) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new Error(`--label-add wants KEY=VALUE, not "${kv}"`);
        labelAdd[kv.slice(0, i)] = kv.slice(i + 1);
      }
      await update(ref, { availability: o.availability, labelAdd: o.labelAdd?.length ? labelAdd : undefined, labelRm: o.labelRm?.length ? o.labelRm : undefined });
      console.log(ref);
    });

  for (const [verb, role] of [['promote', 'manager'], ['demote', 'worker']] as const) {
    node
      .command(verb)
      .description(`make nodes ${role}s`)
      .argument('<node...>')
      .action(async (refs: string[]) => {
        for (const ref of refs) {
          await update(ref, { role });
          console.log(`Node ${ref} ${verb}d to a ${role} in the swarm.`);
        }
      });
  }

  node
    .command('rm')
    .description('remove nodes from the cluster')
    .argument('<node...>')
    .option('-f, --force', 'remove a node that is still up, or a manager')
    .action(async (refs: string[], o: { force?: boolean }) => {
      for (const ref of refs) {
        await call(target(), 'POST', `/v1/nodes/${encodeURIComponent(ref)}/rm`, { force: o.force === true }, 60_000);
        console.log(ref);
      }
    });

  return node;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function readLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c: string) => {
      buf += c;
      if (buf.includes('\n')) {
        process.stdin.pause();
        resolve(buf.split('\n')[0]!);
      }
    });
    process.stdin.on('end', () => resolve(buf));
    process.stdin.on('error', reject);
  });
}

/** `meshctl info`: this node's view of itself and its cluster (docker info's Swarm section). */
export function infoCommand(target: TargetFn): Command {
  return new Command('info')
    .description("this node: its ID, role, cluster, managers and heartbeat period (on any node)")
    .addOption(formatOption())
    .action(async (o: { format: Format }) => {
      const i = await call<NodeInfo>(target(), 'GET', '/v1/info');
      if (o.format === 'json') return printJson(i);
      const c = i.cluster;
      const rows: string[][] = [
        ['node ID', i.nodeId],
        ['hostname', i.hostname],
        ['swarm', c ? `active (${c.role})${i.locked ? ', locked' : ''}` : 'inactive'],
      ];
      if (c) {
        rows.push(['cluster ID', c.id], ['advertise address', c.advertiseAddr]);
        rows.push(['managers', Object.values(c.managers).sort().join(', ') || '-']);
        rows.push(['dispatcher heartbeat', formatDuration(c.heartbeatPeriodMs)]);
      }
      if (i.raft) rows.push(['raft', `${i.raft.role}, term ${i.raft.term}, commit ${i.raft.commit}, leader ${i.raft.leader || 'none'}`]);
      if (i.certificate) rows.push(['certificate', `${i.certificate.role}, valid until ${i.certificate.notAfter}`]);
      console.log(table(['FIELD', 'VALUE'], rows));
    });
}

export function targetFrom(program: Command): TargetFn {
  return () => parseHost((program.opts() as { host?: string }).host ?? process.env.MESH_HOST);
}
