// One meshd per lab node, started inside the node's namespace. Processes are found again by the
// namespace they run in (not only by pid files), so `lab down` stops them even after a crash.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { call } from '../api/client.js';
import { netnsPath } from '../../dataplane/netlink/index.js';

export function nodeRunDir(netns: string): string {
  return `/run/meshd/${netns}`;
}

export function nodeSocketPath(netns: string): string {
  return path.join(nodeRunDir(netns), 'meshd.sock');
}

const MESHD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/meshd.js');

export interface DaemonFlags {
  electionMs?: number;
  tickMs?: number;
  raftHeartbeatMs?: number;
}

export async function startNodeDaemon(netns: string, hostname: string, flags: DaemonFlags = {}): Promise<number> {
  const dir = nodeRunDir(netns);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const log = fs.openSync(path.join(dir, 'meshd.log'), 'a');
  // nsenter, not `ip netns exec`: the latter gives the daemon a private mount namespace, so the
  // namespaces meshd creates (sandboxes, tasks) would not be visible under /run/netns outside it.
  const args = [`--net=/run/netns/${netns}`, '--', process.execPath, MESHD, '--state-dir', path.join(dir, 'state'), '--socket', nodeSocketPath(netns), '--hostname', hostname, '--task-prefix', `${netns}-t-`];
  if (flags.electionMs) args.push('--election-ms', String(flags.electionMs));
  if (flags.tickMs) args.push('--tick-ms', String(flags.tickMs));
  if (flags.raftHeartbeatMs) args.push('--raft-heartbeat-ms', String(flags.raftHeartbeatMs));
  const child = spawn('nsenter', args, { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  child.unref();
  fs.writeFileSync(path.join(dir, 'meshd.pid'), String(child.pid));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await call({ socketPath: nodeSocketPath(netns), display: nodeSocketPath(netns) }, 'GET', '/v1/info', undefined, 1000);
      return child.pid!;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`meshd in ${netns} did not come up within 15 s: ${(e as Error).message}; see ${path.join(dir, 'meshd.log')}`);
      if (child.exitCode !== null) throw new Error(`meshd in ${netns} exited with ${child.exitCode}; see ${path.join(dir, 'meshd.log')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Every process whose network namespace is this named one (like `ip netns pids`). */
export function pidsInNetns(netns: string): number[] {
  let ino: number;
  try {
    ino = fs.statSync(netnsPath(netns)).ino;
  } catch {
    return [];
  }
  const want = `net:[${ino}]`;
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readlinkSync(`/proc/${e}/ns/net`) === want) out.push(Number(e));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/** SIGKILLs everything in the namespace and waits until it is gone. */
export async function killNetnsProcesses(netns: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
  const pids = pidsInNetns(netns);
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  while (pidsInNetns(netns).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return pids.length;
}

export function removeNodeRunDir(netns: string): void {
  fs.rmSync(nodeRunDir(netns), { recursive: true, force: true });
}
