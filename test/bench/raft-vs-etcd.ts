// meshd's Raft (3 managers) against etcd 3.4 from Debian (3 members), same run, same machine, same
// timeouts (heartbeat 100 ms, election 1000 ms), state on the same disk. Both run as a real
// deployment would: each member in its own network namespace of a namespace lab (one node each,
// on a bridge underlay in 198.18.77.0/24), so a meshd manages its own node's dataplane and no two
// daemons share (or fight over) one kernel namespace; Raft traffic is mutually authenticated TLS for
// both (meshd always; etcd with peer certificates from a throw-away CA, as an operator runs it).
// Clients: Node HTTP/1.1 with a keep-alive agent, N workers looping for a fixed time; meshd's API
// on its local socket, etcd's client URL (plain HTTP) through the lab's host link.
//
//   failover      kill -9 the leader; time until a write through a surviving member succeeds. A new
//                 attempt starts every HEDGE_MS (each may wait up to 5 s), so the figure is when the
//                 system first accepts a write, not how a client's retry timer happens to line up.
//                 The killed member is restarted and the cluster is healthy again before the next kill.
//   writes/s      1 KiB values over 1,000 keys, with 1, 16 and 64 concurrent clients, to the leader
//                 (meshd: PUT /v1/configs/NAME on the leader's socket; etcd: /v3/kv/put on its URL).
//   latency       per-write commit latency (request to reply) p50/p99 in the same runs.
//
// Environment: RAFT_BENCH_KILLS (default 20), RAFT_BENCH_SECONDS (per concurrency, default 5),
// RAFT_BENCH_ONLY=meshd|etcd (one side only, for profiling), RAFT_BENCH_SKIP=failover|throughput,
// RAFT_BENCH_NODE_ARGS (extra node flags for the meshd members, e.g. --cpu-prof --cpu-prof-dir=DIR),
// RAFT_BENCH_KEEP=1 (keep the state dirs and logs), RAFT_BENCH_ETCD_TLS=0 (etcd peers in plain HTTP).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, msSince, percentile, type Figure } from './figures.js';
import { labDown, labUp } from '../../control/lab/lab.js';
import type { LabPlan } from '../../control/lab/plan.js';

const MESHD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/meshd.js');
const ETCD = '/usr/bin/etcd';
const HEARTBEAT_MS = 100;
const ELECTION_MS = 1000;
const KEYS = 1000;
const VALUE_BYTES = 1024;
const HEDGE_MS = 20;
/** The bench's namespace lab: mt-prefixed, so the test runner's leak check sees a leftover. */
const LAB = { prefix: 'mtrb', nodes: 3, subnet: '198.18.77.0/24', mtu: 1500 };

const env = process.env;
const KILLS = Math.max(1, Number(env.RAFT_BENCH_KILLS ?? 20));
const SECONDS = Math.max(1, Number(env.RAFT_BENCH_SECONDS ?? 5));
const WARMUP_S = 1;
/** Concurrent clients per throughput run; RAFT_BENCH_CLIENTS=64 (comma-separated) runs only those. */
const CONCURRENCY: readonly number[] = env.RAFT_BENCH_CLIENTS ? env.RAFT_BENCH_CLIENTS.split(',').map(Number).filter((n) => n > 0) : [1, 16, 64];

// ---- HTTP client (identical for both systems) -------------------------------------------------------

interface Endpoint {
  socketPath?: string;
  host?: string;
  port?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

function request(agent: http.Agent | undefined, ep: Endpoint, method: string, p: string, body: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method,
        path: p,
        ...(ep.socketPath ? { socketPath: ep.socketPath } : { host: ep.host, port: ep.port }),
        ...(agent ? { agent } : { agent: false }),
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 300) reject(new HttpError(res.statusCode ?? 0, text));
          else resolve(text);
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

// ---- processes ---------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();

function killAllSync(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Starts a member inside a lab node's namespace (nsenter execs it: the pid is the member's). */
function startProc(netns: string, cmd: string, args: string[], logFile: string, extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  const log = fs.openSync(logFile, 'a');
  const c = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', cmd, ...args], { stdio: ['ignore', log, log], env: { ...process.env, ...extraEnv } });
  fs.closeSync(log);
  live.add(c);
  c.on('exit', () => live.delete(c));
  return c;
}

async function kill(c: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill(signal);
  await Promise.race([gone, sleep(10_000)]);
  if (c.exitCode === null && c.signalCode === null) {
    c.kill('SIGKILL');
    await gone;
  }
}

function etcdPids(): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'etcd') out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Installs etcd-server from Debian if needed; kills any etcd the package's scripts started. */
function ensureEtcd(): void {
  if (fs.existsSync(ETCD)) return;
  if (process.getuid?.() !== 0) throw new Error('etcd is not installed and installing it needs root (apt-get install etcd-server)');
  const before = new Set(etcdPids());
  console.error('raft bench: installing etcd-server from Debian');
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', 'etcd-server'], { stdio: ['ignore', 'ignore', 'inherit'], env: aptEnv });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env: aptEnv });
    r = spawnSync('apt-get', ['install', '-y', 'etcd-server'], { stdio: ['ignore', 'ignore', 'inherit'], env: aptEnv });
  }
  // The package may start its own service (there is no systemd here, but an init script might run).
  for (const pid of etcdPids()) {
    if (before.has(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (r.status !== 0 || !fs.existsSync(ETCD)) throw new Error('apt-get install etcd-server failed');
}

// ---- the two systems behind one interface ------------------------------------------------------------

interface Cluster {
  readonly name: string;
  start(): Promise<void>;
  /** Index (0..2) of the member that is leader, as all live members agree. */
  leader(): Promise<number>;
  /** Where clients send writes for member i, and the body/path for a write of key k. */
  endpoint(i: number): Endpoint;
  write(agent: http.Agent | undefined, i: number, key: string, value64: string, timeoutMs: number): Promise<void>;
  kill(i: number): Promise<void>;
  restart(i: number): Promise<void>;
  /** Waits until member i is back, follows the leader and has caught up. */
  waitHealthy(i: number): Promise<void>;
  stop(): Promise<void>;
  /** The members' process ids (for CPU accounting). */
  pids(): number[];
}

/** CPU seconds (user + system) the processes have used so far. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the command name's closing parenthesis: utime and stime are the 12th and 13th
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLK_TCK;
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export class MeshdCluster implements Cluster {
  readonly name = 'meshd';
  private procs: (ChildProcess | undefined)[] = [undefined, undefined, undefined];

  constructor(
    private readonly dir: string,
    private readonly lab: LabPlan,
  ) {}

  private sock(i: number): string {
    return path.join(this.dir, `m${i + 1}.sock`);
  }

  endpoint(i: number): Endpoint {
    return { socketPath: this.sock(i) };
  }

  private info(i: number): Promise<{ raft: { leader: string; role: string; term: number; commit: number; applied: number; voters: string[]; reachable: Record<string, boolean> } | null; nodeId: string }> {
    return request(undefined, this.endpoint(i), 'GET', '/v1/info', undefined, 1000).then((t) => JSON.parse(t));
  }

  private async spawnMember(i: number): Promise<void> {
    const nodeArgs = (env.RAFT_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const node = this.lab.nodes[i]!;
    const args = [...nodeArgs, MESHD, '--state-dir', path.join(this.dir, `m${i + 1}`), '--socket', this.sock(i), '--hostname', `m${i + 1}`,
      '--task-prefix', `${node.netns}-t-`,
      '--tick-ms', String(HEARTBEAT_MS), '--raft-heartbeat-ms', String(HEARTBEAT_MS), '--election-ms', String(ELECTION_MS)];
    this.procs[i] = startProc(node.netns, process.execPath, args, path.join(this.dir, `m${i + 1}.log`));
    const p = this.procs[i]!;
    await until(`meshd m${i + 1} socket`, 15_000, async () => {
      if (p.exitCode !== null) throw new Error(`meshd m${i + 1} exited with ${p.exitCode}`);
      return (await this.info(i)) ? true : undefined;
    });
  }

  async start(): Promise<void> {
    await Promise.all([0, 1, 2].map((i) => this.spawnMember(i)));
    const addr = (i: number): string => `${this.lab.nodes[i]!.address}:2377`;
    await request(undefined, this.endpoint(0), 'POST', '/v1/swarm/init', JSON.stringify({ advertiseAddr: addr(0), listenAddr: addr(0) }), 15_000);
    const { token } = JSON.parse(await request(undefined, this.endpoint(0), 'GET', '/v1/swarm/join-token/manager', undefined, 5000)) as { token: string };
    for (const i of [1, 2]) {
      await request(undefined, this.endpoint(i), 'POST', '/v1/swarm/join', JSON.stringify({ remoteAddr: addr(0), token, advertiseAddr: addr(i), listenAddr: addr(i) }), 40_000);
    }
    await until('meshd: 3 voters and one leader', 20_000, async () => {
      const infos = await Promise.all([0, 1, 2].map((i) => this.info(i)));
      const l = infos[0]!.raft?.leader;
      return l && infos.every((x) => x.raft?.leader === l && x.raft.voters.length === 3) ? true : undefined;
    });
  }

  async leader(): Promise<number> {
    return until('meshd leader', 10_000, async () => {
      const infos = await Promise.all([0, 1, 2].map((i) => (this.procs[i] ? this.info(i).catch(() => undefined) : undefined)));
      const lead = infos.find((x) => x?.raft?.role === 'leader');
      if (!lead) return undefined;
      const idx = infos.findIndex((x) => x?.nodeId === lead.nodeId);
      return infos.every((x) => !x || x.raft?.leader === lead.nodeId) ? idx : undefined;
    });
  }

  async write(agent: http.Agent | undefined, i: number, key: string, value64: string, timeoutMs: number): Promise<void> {
    await request(agent, this.endpoint(i), 'PUT', `/v1/configs/${key}`, `{"data":"${value64}"}`, timeoutMs);
  }

  async kill(i: number): Promise<void> {
    await kill(this.procs[i]);
    this.procs[i] = undefined;
  }

  async restart(i: number): Promise<void> {
    await this.spawnMember(i);
  }

  async waitHealthy(i: number): Promise<void> {
    await until(`meshd m${i + 1} healthy`, 30_000, async () => {
      const infos = await Promise.all([0, 1, 2].map((j) => this.info(j)));
      const me = infos[i]!;
      const lead = infos.find((x) => x.raft?.role === 'leader');
      if (!lead || !me.raft || me.raft.leader !== lead.nodeId) return undefined;
      if (!lead.raft!.reachable[me.nodeId]) return undefined;
      return me.raft.applied >= lead.raft!.commit && infos.every((x) => x.raft?.leader === lead.nodeId) ? true : undefined;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => kill(p, 'SIGTERM')));
    this.procs = [undefined, undefined, undefined];
  }

  pids(): number[] {
    return this.procs.flatMap((p) => (p?.pid ? [p.pid] : []));
  }
}

interface EtcdStatus {
  header: { member_id: string };
  leader: string;
  raftIndex: string;
  raftAppliedIndex?: string;
}

export class EtcdCluster implements Cluster {
  readonly name = 'etcd';
  private procs: (ChildProcess | undefined)[] = [undefined, undefined, undefined];

  private readonly tls: boolean;

  constructor(
    private readonly dir: string,
    private readonly lab: LabPlan,
  ) {
    this.tls = env.RAFT_BENCH_ETCD_TLS !== '0';
    if (this.tls) makePeerCerts(dir, lab.nodes.map((n) => n.address));
  }

  endpoint(i: number): Endpoint {
    return { host: this.lab.nodes[i]!.address, port: 2379 };
  }

  private status(i: number): Promise<EtcdStatus> {
    return request(undefined, this.endpoint(i), 'POST', '/v3/maintenance/status', '{}', 1000).then((t) => JSON.parse(t) as EtcdStatus);
  }

  private spawnMember(i: number, fresh: boolean): void {
    const peer = (j: number): string => `${this.tls ? 'https' : 'http'}://${this.lab.nodes[j]!.address}:2380`;
    const client = `http://${this.lab.nodes[i]!.address}:2379`;
    const args = [
      '--name', `e${i + 1}`, '--data-dir', path.join(this.dir, `e${i + 1}`),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer(i), '--initial-advertise-peer-urls', peer(i),
      '--initial-cluster', [0, 1, 2].map((j) => `e${j + 1}=${peer(j)}`).join(','),
      '--initial-cluster-state', fresh ? 'new' : 'existing', '--initial-cluster-token', `bench-${process.pid}`,
      '--heartbeat-interval', String(HEARTBEAT_MS), '--election-timeout', String(ELECTION_MS),
      '--logger', 'zap', '--log-level', 'warn',
      ...(this.tls
        ? ['--peer-client-cert-auth', '--peer-trusted-ca-file', path.join(this.dir, 'ca.crt'),
            '--peer-cert-file', path.join(this.dir, `e${i + 1}.crt`), '--peer-key-file', path.join(this.dir, `e${i + 1}.key`)]
        : []),
    ];
    this.procs[i] = startProc(this.lab.nodes[i]!.netns, ETCD, args, path.join(this.dir, `e${i + 1}.log`), { ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch });
  }

  async start(): Promise<void> {
    for (const i of [0, 1, 2]) this.spawnMember(i, true);
    await until('etcd: 3 members and one leader', 30_000, async () => {
      const st = await Promise.all([0, 1, 2].map((i) => this.status(i)));
      const l = st[0]!.leader;
      return l !== '0' && st.every((s) => s.leader === l) ? true : undefined;
    });
  }

  async leader(): Promise<number> {
    return until('etcd leader', 10_000, async () => {
      const st = await Promise.all([0, 1, 2].map((i) => (this.procs[i] ? this.status(i).catch(() => undefined) : undefined)));
      const idx = st.findIndex((s) => s && s.leader !== '0' && s.leader === s.header.member_id);
      if (idx < 0) return undefined;
      const l = st[idx]!.leader;
      return st.every((s) => !s || s.leader === l) ? idx : undefined;
    });
  }

  async write(agent: http.Agent | undefined, i: number, key: string, value64: string, timeoutMs: number): Promise<void> {
    const k = Buffer.from(key).toString('base64');
    await request(agent, this.endpoint(i), 'POST', '/v3/kv/put', `{"key":"${k}","value":"${value64}"}`, timeoutMs);
  }

  async kill(i: number): Promise<void> {
    await kill(this.procs[i]);
    this.procs[i] = undefined;
  }

  async restart(i: number): Promise<void> {
    this.spawnMember(i, false);
  }

  async waitHealthy(i: number): Promise<void> {
    await until(`etcd e${i + 1} healthy`, 30_000, async () => {
      const h = JSON.parse(await request(undefined, this.endpoint(i), 'GET', '/health', undefined, 1000)) as { health: string };
      if (h.health !== 'true') return undefined;
      const st = await Promise.all([0, 1, 2].map((j) => this.status(j)));
      const lead = st.find((s) => s.leader === s.header.member_id);
      if (!lead || !st.every((s) => s.leader === lead.leader)) return undefined;
      const applied = Number(st[i]!.raftAppliedIndex ?? st[i]!.raftIndex);
      return applied >= Number(lead.raftIndex) ? true : undefined;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => kill(p, 'SIGTERM')));
    this.procs = [undefined, undefined, undefined];
  }

  pids(): number[] {
    return this.procs.flatMap((p) => (p?.pid ? [p.pid] : []));
  }
}

// ---- measurements ------------------------------------------------------------------------------------

const values = Array.from({ length: 16 }, () => crypto.randomBytes(VALUE_BYTES).toString('base64'));
const keyName = (n: number): string => `k${String(n % KEYS).padStart(4, '0')}`;

interface LoadResult {
  perSec: number;
  latencies: number[];
  errors: number;
  /** CPU time of all members per committed write (µs): what a write costs, whatever else runs. */
  cpuUsPerWrite: number;
}

/** `clients` workers write to member i in a loop for `seconds`; returns writes/s and latencies. */
export async function load(c: Cluster, i: number, clients: number, seconds: number, firstKey = 0): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });
  const latencies: number[] = [];
  let errors = 0;
  let next = firstKey;
  let firstError: unknown;
  const cpu0 = cpuSeconds(c.pids());
  const t0 = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const n = next++;
      const s = process.hrtime.bigint();
      try {
        await c.write(agent, i, keyName(n), values[n % values.length]!, 10_000);
        latencies.push(msSince(s));
      } catch (e) {
        errors++;
        firstError ??= e;
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsed = msSince(t0) / 1000;
  const cpuUsPerWrite = ((cpuSeconds(c.pids()) - cpu0) * 1e6) / Math.max(1, latencies.length);
  agent.destroy();
  if (errors > latencies.length / 100) throw new Error(`${c.name}: ${errors} of ${errors + latencies.length} writes failed: ${(firstError as Error).message}`);
  return { perSec: latencies.length / elapsed, latencies, errors, cpuUsPerWrite };
}

/** Every key written once (one writer per key), so the runs after it only overwrite. */
async function prefill(c: Cluster, i: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let n = next++; n < KEYS; n = next++) await c.write(agent, i, keyName(n), values[n % values.length]!, 10_000);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  agent.destroy();
}

/** Kills the leader, times the first write through a survivor that succeeds, restarts it. */
async function failoverOnce(c: Cluster, round: number): Promise<number> {
  const lead = await c.leader();
  const via = (lead + 1) % 3;
  // Make sure the survivor serves writes right now (nothing left over from the last round).
  await c.write(undefined, via, keyName(round), values[0]!, 10_000);
  const t0 = process.hrtime.bigint();
  await c.kill(lead);
  const took = await new Promise<number>((resolve, reject) => {
    let settled = false;
    let inflight = 0;
    let attempt = 0;
    const fire = (): void => {
      if (settled) return;
      if (msSince(t0) > 30_000) {
        settled = true;
        clearInterval(timer);
        reject(new Error(`${c.name}: no write succeeded within 30 s of killing the leader`));
        return;
      }
      if (inflight >= 200) return;
      inflight++;
      c.write(undefined, via, keyName(KEYS + attempt++), values[1]!, 5000).then(
        () => {
          inflight--;
          if (settled) return;
          settled = true;
          clearInterval(timer);
          resolve(msSince(t0));
        },
        () => {
          inflight--;
        },
      );
    };
    const timer = setInterval(fire, HEDGE_MS);
    fire();
  });
  await c.restart(lead);
  await c.waitHealthy(lead);
  await sleep(200);
  return took;
}

interface SystemResult {
  failover: number[];
  load: Map<number, LoadResult>;
}

/**
 * Both clusters are up side by side; the measurements alternate between them (and which goes first),
 * so that whatever else the machine is doing meanwhile weighs on both alike.
 */
async function runBoth(clusters: Cluster[], what: { failover: boolean; throughput: boolean }): Promise<Map<string, SystemResult>> {
  const out = new Map<string, SystemResult>(clusters.map((c) => [c.name, { failover: [], load: new Map() }]));
  const order = (k: number): Cluster[] => (k % 2 ? [...clusters].reverse() : clusters);
  for (const c of clusters) {
    const t0 = Date.now();
    await c.start();
    console.error(`raft bench: ${c.name} cluster up in ${Date.now() - t0} ms`);
  }
  if (what.throughput) {
    for (const c of clusters) await prefill(c, await c.leader());
    let k = 0;
    for (const n of CONCURRENCY) {
      for (const c of order(k++)) {
        const lead = await c.leader();
        await load(c, lead, n, WARMUP_S, 0);
        const res = await load(c, lead, n, SECONDS, n * 7);
        out.get(c.name)!.load.set(n, res);
        console.error(`raft bench: ${c.name.padEnd(5)} ${String(n).padStart(2)} clients: ${res.perSec.toFixed(0)} writes/s, p50 ${median(res.latencies).toFixed(2)} ms, p99 ${percentile(res.latencies, 99).toFixed(2)} ms, CPU ${res.cpuUsPerWrite.toFixed(0)} µs/write${res.errors ? `, ${res.errors} errors` : ''}`);
      }
    }
  }
  if (what.failover) {
    for (let k = 0; k < KILLS; k++) {
      for (const c of order(k)) out.get(c.name)!.failover.push(await failoverOnce(c, k));
    }
    for (const c of clusters) console.error(`raft bench: ${c.name.padEnd(5)} failover ms: ${out.get(c.name)!.failover.map((x) => x.toFixed(0)).join(' ')}`);
  }
  for (const c of clusters) await c.stop();
  return out;
}

export async function raftVsEtcdBench(): Promise<Figure[]> {
  const only = env.RAFT_BENCH_ONLY;
  const what = { failover: env.RAFT_BENCH_SKIP !== 'failover', throughput: env.RAFT_BENCH_SKIP !== 'throughput' };
  if (only !== 'meshd') ensureEtcd();
  const dir = fs.mkdtempSync(path.join('/var/tmp', 'raft-bench-'));
  const onSignal = (): void => {
    killAllSync();
    if (!env.RAFT_BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAllSync);
  const load0 = os.loadavg()[0]!;
  let results = new Map<string, SystemResult>();
  const clusters: Cluster[] = [];
  try {
    const lab = (await labUp(LAB, () => undefined, { daemons: false })).plan;
    if (only !== 'meshd') {
      fs.mkdirSync(path.join(dir, 'etcd'));
      clusters.push(new EtcdCluster(path.join(dir, 'etcd'), lab));
    }
    if (only !== 'etcd') {
      fs.mkdirSync(path.join(dir, 'meshd'));
      clusters.push(new MeshdCluster(path.join(dir, 'meshd'), lab));
    }
    results = await runBoth(clusters, what);
  } catch (e) {
    for (const sub of ['meshd', 'etcd']) {
      const d = path.join(dir, sub);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d).filter((x) => x.endsWith('.log'))) {
        const text = fs.readFileSync(path.join(d, f), 'utf8').split('\n').slice(-15).join('\n');
        console.error(`---- ${sub}/${f} (last lines)\n${text}`);
      }
    }
    throw e;
  } finally {
    await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
    killAllSync();
    await labDown(LAB.prefix);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAllSync);
    if (env.RAFT_BENCH_KEEP) console.error(`raft bench: state kept in ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  return figures(results, `${os.cpus().length} CPUs, load avg ${load0.toFixed(1)} before the run; one namespace per member, Raft over mutual TLS for both${env.RAFT_BENCH_ETCD_TLS === '0' ? ' (etcd: plain, RAFT_BENCH_ETCD_TLS=0)' : ''}`);
}

/** A throw-away CA and one certificate per etcd member (P-256, as meshd's), for mutual peer TLS. */
function makePeerCerts(dir: string, addrs: string[]): void {
  const ossl = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  ossl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=raft-bench-ca', '-days', '2', '-out', 'ca.crt']);
  addrs.forEach((a, i) => {
    const n = `e${i + 1}`;
    fs.writeFileSync(path.join(dir, `${n}.ext`), `subjectAltName=IP:${a}
extendedKeyUsage=serverAuth,clientAuth
`);
    ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${n}.key`]);
    ossl(['req', '-new', '-key', `${n}.key`, '-subj', `/CN=${n}`, '-out', `${n}.csr`]);
    ossl(['x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${n}.ext`, '-out', `${n}.crt`]);
  });
}

function figures(results: Map<string, SystemResult>, machine: string): Figure[] {
  const ours = results.get('meshd');
  const peer = results.get('etcd');
  const out: Figure[] = [];
  const add = (name: string, unit: string, higherIsBetter: boolean, pick: (r: SystemResult) => number | undefined, note?: string): void => {
    const a = ours ? pick(ours) : undefined;
    const b = peer ? pick(peer) : undefined;
    if (a === undefined && b === undefined) return;
    const f: Figure = { name, value: a ?? NaN, unit, higherIsBetter, ...(note ? { note } : {}) };
    if (b !== undefined) f.peer = { name: 'etcd', value: b };
    if (a === undefined) f.note = `${note ? `${note}; ` : ''}meshd not run`;
    out.push(f);
  };
  const fo = (r: SystemResult): number[] | undefined => (r.failover.length ? r.failover : undefined);
  add('raft: leader failover p50', 'ms', false, (r) => (fo(r) ? median(fo(r)!) : undefined), `${KILLS} kill -9 of the leader, write via a survivor; ${machine}`);
  add('raft: leader failover p99', 'ms', false, (r) => (fo(r) ? percentile(fo(r)!, 99) : undefined));
  for (const n of CONCURRENCY) {
    add(`raft: 1 KiB writes/s, ${n} client${n > 1 ? 's' : ''}`, 'writes/s', true, (r) => r.load.get(n)?.perSec, n === 1 ? `${SECONDS} s each, to the leader, ${KEYS} keys` : undefined);
  }
  for (const n of CONCURRENCY) {
    add(`raft: CPU per write, ${n} client${n > 1 ? 's' : ''}`, 'µs', false, (r) => r.load.get(n)?.cpuUsPerWrite, n === 1 ? 'user+system time of all 3 members per committed write' : undefined);
  }
  for (const n of CONCURRENCY) {
    add(`raft: commit latency p50, ${n} client${n > 1 ? 's' : ''}`, 'ms', false, (r) => { const l = r.load.get(n); return l ? median(l.latencies) : undefined; });
    add(`raft: commit latency p99, ${n} client${n > 1 ? 's' : ''}`, 'ms', false, (r) => { const l = r.load.get(n); return l ? percentile(l.latencies, 99) : undefined; });
  }
  return out;
}
