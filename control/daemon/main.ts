// meshd entry point: meshd [--state-dir DIR] [--socket PATH] [--hostname NAME] [--election-ms N] ...
import { Command } from 'commander';
import { Daemon } from './daemon.js';
import { DEFAULT_SOCKET } from '../api/client.js';
import { parseUpstream } from './dns-feed.js';

export async function main(argv: string[]): Promise<void> {
  // `meshd workload http|udp --port N`: the built-in test workload, so demos need no image registry.
  if (argv[2] === 'workload') {
    const { workloadMain } = await import('../../dataplane/runtime/workload.js');
    return workloadMain(argv.slice(3));
  }
  const p = new Command('meshd')
    .description('the meshd node daemon: one per node, as root')
    .option('--state-dir <dir>', 'where this node keeps its identity and Raft data', '/var/lib/meshd')
    .option('--socket <path>', 'local API socket for meshctl (root only)', DEFAULT_SOCKET)
    .option('--hostname <name>', 'node name shown in `node ls` (default: the host name)')
    .option('--tick-ms <n>', 'Raft tick', (v) => Number(v), 100)
    .option('--raft-heartbeat-ms <n>', 'Raft leader heartbeat', (v) => Number(v), 100)
    .option('--election-ms <n>', 'Raft election timeout (randomized up to twice this)', (v) => Number(v), 1000)
    .option('--gossip-port <n>', 'gossip port, UDP and TCP', (v) => Number(v), 7946)
    .option('--task-prefix <p>', 'prefix of task namespaces and containers', 'msh-t-')
    .option('--lb-backend <kind>', 'load balancing: auto (IPVS when the kernel has it), ipvs or nftables', 'auto')
    .option('--dns-upstream <ip[:port]>', 'resolver for names outside the cluster (repeatable; default: /etc/resolv.conf)', (v: string, acc: string[]) => [...acc, v], [] as string[]);
  p.parse(argv);
  const o = p.opts<{ stateDir: string; socket: string; hostname?: string; tickMs: number; raftHeartbeatMs: number; electionMs: number; gossipPort: number; taskPrefix: string; dnsUpstream: string[]; lbBackend: string }>();
  if (!['auto', 'ipvs', 'nftables'].includes(o.lbBackend)) throw new Error(`--lb-backend ${o.lbBackend}: use auto, ipvs or nftables`);
  const upstreams = o.dnsUpstream.map(parseUpstream);
  const d = new Daemon({ stateDir: o.stateDir, socketPath: o.socket, tickMs: o.tickMs, raftHeartbeatMs: o.raftHeartbeatMs, electionMs: o.electionMs, gossipPort: o.gossipPort, taskPrefix: o.taskPrefix, ...(o.hostname ? { hostname: o.hostname } : {}), ...(upstreams.length ? { dnsUpstreams: upstreams } : {}), lbBackend: o.lbBackend as 'auto' | 'ipvs' | 'nftables' });
  await d.start();
  const stop = (sig: string): void => {
    d.log(`${sig}: stopping`);
    void d.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
