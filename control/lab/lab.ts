// The namespace lab: N node namespaces on an underlay bridge (its own namespace), plus a host-side
// link so the root namespace is a client outside the cluster. Everything is named from the plan, so
// `down` removes it all by name after a crash or a half-finished `up`.
import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { Rtnl, createNetns, deleteNetns, listNetns, netnsExists } from '../../dataplane/netlink/index.js';
import { pingAll } from '../../dataplane/probe/icmp.js';
import { isLabNetns, planLab, type LabOptions, type LabPlan } from './plan.js';
import { killNetnsProcesses, nodeRunDir, nodeSocketPath, removeNodeRunDir, startNodeDaemon, type DaemonFlags } from './daemons.js';
import { call } from '../api/client.js';

export const LAB_STATE_DIR = '/run/meshd/lab';

export interface LabState {
  plan: LabPlan;
  createdAt: string;
}

export type Progress = (line: string) => void;

function statePath(prefix: string): string {
  return path.join(LAB_STATE_DIR, `${prefix}.json`);
}

export function readLabState(prefix: string): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(statePath(prefix), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** What exists in the kernel for this prefix, found by name only. */
export function findLabObjects(prefix: string): { netns: string[]; hostLink: boolean } {
  const netns = listNetns().filter((n) => isLabNetns(prefix, n));
  const host = Rtnl.open();
  try {
    return { netns, hostLink: host.link(`${prefix}-h`) !== undefined };
  } finally {
    host.close();
  }
}

export { LabError } from './plan.js';
import { LabError } from './plan.js';

// Tests inject a crash after step N to prove `down` cleans up a half-made lab.
function crashPoint(step: number): void {
  const at = process.env.MESH_LAB_CRASH_AT;
  if (at !== undefined && Number(at) === step) process.kill(process.pid, 'SIGKILL');
}

export interface LabUpExtras {
  /** Start one meshd per node (default true). */
  daemons?: boolean;
  /** Form a cluster: swarm init on n1, then join n2..nM as managers and the rest as workers. */
  managers?: number;
  daemonFlags?: DaemonFlags;
}

export async function labUp(opts: LabOptions, progress: Progress = () => undefined, extras: LabUpExtras = {}): Promise<LabState> {
  const plan = planLab(opts);
  const existing = readLabState(plan.prefix);
  const found = findLabObjects(plan.prefix);
  if (existing && found.netns.length > 0) {
    throw new LabError(`lab "${plan.prefix}" is already up with ${existing.plan.nodes.length} nodes; run \`meshctl lab down --prefix ${plan.prefix}\` first`);
  }
  if (found.netns.length > 0 || found.hostLink) {
    progress(`removing leftovers of an earlier lab "${plan.prefix}": ${[...found.netns, ...(found.hostLink ? [`${plan.prefix}-h`] : [])].join(', ')}`);
    await labDown(plan.prefix);
  }
  const t0 = Date.now();
  let step = 0;
  createNetns(plan.underlayNetns);
  crashPoint(++step);
  const ul = Rtnl.open(plan.underlayNetns);
  const host = Rtnl.open();
  try {
    ul.setLink(ul.mustLink('lo').index, { up: true });
    ul.createBridge(plan.bridge, { mtu: plan.mtu });
    const br = ul.mustLink(plan.bridge);
    ul.setLink(br.index, { up: true });
    progress(`underlay ${plan.subnet} on bridge ${plan.bridge} in netns ${plan.underlayNetns}`);

    host.createVeth({ name: plan.hostLink, peerName: plan.hostPeer, peerNetns: plan.underlayNetns, mtu: plan.mtu });
    crashPoint(++step);
    const hl = host.mustLink(plan.hostLink);
    host.addAddress(hl.index, plan.hostCidr);
    host.setLink(hl.index, { up: true });
    ul.setLink(ul.mustLink(plan.hostPeer).index, { master: br.index, up: true });
    progress(`host side ${plan.hostAddress} on ${plan.hostLink}`);

    for (const n of plan.nodes) {
      createNetns(n.netns);
      crashPoint(++step);
      const node = Rtnl.open(n.netns);
      try {
        node.setLink(node.mustLink('lo').index, { up: true });
        ul.createVeth({ name: n.underlayPort, peerName: n.ifname, peerNetns: n.netns, mtu: plan.mtu });
        ul.setLink(ul.mustLink(n.underlayPort).index, { master: br.index, up: true });
        const eth = node.mustLink(n.ifname);
        node.addAddress(eth.index, n.cidr);
        node.setLink(eth.index, { up: true });
        // Traffic to the rest of the world leaves through the host side (NAT comes with egress).
        node.addRoute({ dst: 'default', gateway: plan.hostAddress });
      } finally {
        node.close();
      }
      progress(`node ${n.name}: netns ${n.netns}, ${n.ifname} ${n.cidr}`);
    }
  } finally {
    ul.close();
    host.close();
  }
  const state: LabState = { plan, createdAt: new Date().toISOString() };
  fs.mkdirSync(LAB_STATE_DIR, { recursive: true });
  fs.writeFileSync(statePath(plan.prefix), JSON.stringify(state, null, 2));
  progress(`lab "${plan.prefix}" up: ${plan.nodes.length} nodes in ${Date.now() - t0} ms`);
  const managers = extras.managers ?? 0;
  if (managers > plan.nodes.length) throw new LabError(`--managers ${managers} is more than --nodes ${plan.nodes.length}`);
  if (extras.daemons !== false || managers > 0) {
    const t1 = Date.now();
    await Promise.all(plan.nodes.map((n) => startNodeDaemon(n.netns, n.name, extras.daemonFlags)));
    progress(`meshd running on ${plan.nodes.length} nodes (${Date.now() - t1} ms); sockets ${nodeSocketPath(`${plan.prefix}-nN`)}`);
  }
  if (managers > 0) await formCluster(plan, managers, progress);
  return state;
}

export interface DownReport {
  removedNetns: string[];
  removedHostLink: boolean;
}

/** Removes every object of this prefix, whatever state it was left in. Idempotent. */
export async function labDown(prefix: string, progress: Progress = () => undefined): Promise<DownReport> {
  planLab({ prefix, nodes: 1, subnet: '198.18.0.0/24', mtu: 1500 }); // validates the prefix
  const found = findLabObjects(prefix);
  // Delete the host link first: namespace teardown is asynchronous in the kernel, and a lingering
  // root-namespace link would make an immediate `lab up` fail with EEXIST.
  let removedHostLink = false;
  if (found.hostLink) {
    const host = Rtnl.open();
    try {
      removedHostLink = host.deleteLink(`${prefix}-h`);
    } finally {
      host.close();
    }
  }
  // Stop every process in the lab's namespaces first (daemons, tasks, anything `lab exec` left).
  let killed = 0;
  for (const ns of found.netns) killed += await killNetnsProcesses(ns);
  if (killed) progress(`stopped ${killed} processes`);
  // A daemon stopped mid-pass may have made a sandbox after the first listing: list again.
  const again = findLabObjects(prefix).netns.filter((ns) => !found.netns.includes(ns));
  for (const ns of again) await killNetnsProcesses(ns);
  found.netns.push(...again);
  const removedNetns: string[] = [];
  for (const ns of found.netns) if (deleteNetns(ns)) removedNetns.push(ns);
  for (const ns of found.netns) removeNodeRunDir(ns);
  const containers = await removeLabContainers(prefix);
  if (containers) progress(`removed ${containers} containers`);
  fs.rmSync(statePath(prefix), { force: true });
  progress(removedNetns.length || removedHostLink ? `removed ${[...removedNetns, ...(removedHostLink ? [`${prefix}-h`] : [])].join(', ')}` : `nothing to remove for lab "${prefix}"`);
  return { removedNetns, removedHostLink };
}

export interface NodeStatus {
  name: string;
  netns: string;
  address: string;
  present: boolean;
  linkUp: boolean;
  reachable: boolean;
  rttMs?: number;
  /** What the node's meshd says about itself, if it answers. */
  daemon?: { nodeId: string; role: string; raft?: string };
  problem?: string;
}

export interface LabStatus {
  prefix: string;
  up: boolean;
  subnet?: string;
  hostAddress?: string;
  nodes: NodeStatus[];
  leftovers: string[];
}

export async function labStatus(prefix: string): Promise<LabStatus> {
  const state = readLabState(prefix);
  const found = findLabObjects(prefix);
  if (!state) {
    return { prefix, up: false, nodes: [], leftovers: [...found.netns, ...(found.hostLink ? [`${prefix}-h`] : [])] };
  }
  const { plan } = state;
  const pings = await pingAll(plan.nodes.map((n) => n.address), 1000);
  const nodes = plan.nodes.map((n, i): NodeStatus => {
    const s: NodeStatus = { name: n.name, netns: n.netns, address: n.address, present: netnsExists(n.netns), linkUp: false, reachable: pings[i]!.ok };
    if (pings[i]!.rttMs !== undefined) s.rttMs = Math.round(pings[i]!.rttMs! * 1000) / 1000;
    if (!s.present) {
      s.problem = 'namespace missing';
      return s;
    }
    const r = Rtnl.open(n.netns);
    try {
      const eth = r.link(n.ifname);
      s.linkUp = eth?.up === true;
      if (!eth) s.problem = `${n.ifname} missing`;
      else if (!s.linkUp) s.problem = `${n.ifname} down`;
      else if (!r.addresses(eth.index).some((a) => a.address === n.address)) s.problem = `${n.address} not on ${n.ifname}`;
      else if (!s.reachable) s.problem = `no ICMP reply from the host side: ${pings[i]!.error ?? 'unknown'}`;
    } finally {
      r.close();
    }
    return s;
  });
  await Promise.all(
    nodes.map(async (s) => {
      try {
        const info = await call<{ nodeId: string; cluster: { role: string } | null; raft: { role: string; leader: string } | null }>({ socketPath: nodeSocketPath(s.netns), display: s.netns }, 'GET', '/v1/info', undefined, 1000);
        s.daemon = { nodeId: info.nodeId, role: info.cluster?.role ?? 'not in a cluster', ...(info.raft ? { raft: info.raft.role } : {}) };
      } catch {
        // no daemon on this node
      }
    }),
  );
  const expected = new Set([plan.underlayNetns, ...plan.nodes.map((n) => n.netns)]);
  // Task namespaces (PREFIX-nN-t-ID) belong to running tasks, not to the past.
  return { prefix, up: true, subnet: plan.subnet, hostAddress: plan.hostAddress, nodes, leftovers: found.netns.filter((n) => !expected.has(n) && !n.includes('-t-')) };
}

/** Runs a command in a node's namespace with the caller's stdio; resolves to its exit code. */
export function labExec(netns: string, argv: string[]): Promise<number> {
  if (!netnsExists(netns)) return Promise.reject(new LabError(`netns ${netns} does not exist: is the lab up? (meshctl lab status)`));
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Runs a command in a node's namespace and captures its output. */
export function labRun(netns: string, argv: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', netns, ...argv], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export { nodeSocketPath };

/** `swarm init` on n1, then join the others with tokens, as a user would. */
async function formCluster(plan: LabPlan, managers: number, progress: Progress): Promise<void> {
  const t0 = Date.now();
  const sock = (ns: string) => ({ socketPath: nodeSocketPath(ns), display: `unix://${nodeSocketPath(ns)}` });
  const first = plan.nodes[0]!;
  await call(sock(first.netns), 'POST', '/v1/swarm/init', { advertiseAddr: first.address });
  const tokens = {
    manager: (await call<{ token: string }>(sock(first.netns), 'GET', '/v1/swarm/join-token/manager')).token,
    worker: (await call<{ token: string }>(sock(first.netns), 'GET', '/v1/swarm/join-token/worker')).token,
  };
  progress(`swarm init on ${first.name} (${first.address})`);
  // Managers one at a time (one membership change at a time), then workers in parallel.
  for (const n of plan.nodes.slice(1, managers)) {
    await call(sock(n.netns), 'POST', '/v1/swarm/join', { remoteAddr: `${first.address}:2377`, token: tokens.manager, advertiseAddr: n.address }, 60_000);
    progress(`${n.name} joined as a manager`);
  }
  await Promise.all(
    plan.nodes.slice(managers).map(async (n) => {
      await call(sock(n.netns), 'POST', '/v1/swarm/join', { remoteAddr: `${first.address}:2377`, token: tokens.worker, advertiseAddr: n.address }, 60_000);
      progress(`${n.name} joined as a worker`);
    }),
  );
  progress(`cluster formed: ${managers} managers, ${plan.nodes.length - managers} workers in ${Date.now() - t0} ms`);
}

export { nodeRunDir };

/** Containers the lab's daemons ran with the docker runtime (named PREFIX-nN-t-...). */
async function removeLabContainers(prefix: string): Promise<number> {
  if (!fs.existsSync('/var/run/docker.sock')) return 0;
  const { default: Docker } = await import('dockerode');
  const docker = new Docker();
  try {
    const list = await docker.listContainers({ all: true });
    const mine = list.filter((c) => c.Names.some((n) => new RegExp(`^/${prefix}-n\\d+-t-`).test(n)));
    for (const c of mine) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    return mine.length;
  } catch {
    return 0; // no dockerd running: nothing of ours can be there
  }
}
