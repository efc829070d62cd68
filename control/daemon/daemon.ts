// meshd: one per node. Composes the rooms: the local API (unix socket), the 2377 listener (Raft +
// remote API), the manager (Raft + store) when this node is a manager, and node heartbeats.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import http from 'node:http';
import { Router, ApiError } from '../api/http.js';
import { call, type Target } from '../api/client.js';
import { ControlListener } from '../transport/listener.js';
import { splitHostPort } from '../transport/raft-peers.js';
import { Manager, ManagerError } from '../manager/manager.js';
import { forceNewCluster } from '../manager/force-new-cluster.js';
import { checkToken, clusterDigest, newId, newToken, parseToken, type TokenRole } from './tokens.js';
import type { NodeObject, ClusterObject, Stored } from '../store/objects.js';
import { registerRoutes } from './routes.js';
import { Orchestration } from './orchestration.js';
import { Agent, type AgentReport } from '../agent/agent.js';
import type { NetworkObject, TaskObject } from '../store/objects.js';
import { NodeNetworking, type ServiceInfo } from './networking.js';
import { networkView } from './network-view.js';
import { DnsFeed } from './dns-feed.js';
import type { Upstream } from '../../dns/index.js';
import { GossipAgent, gossipKeyIds, gossipSeeds, MAX_GOSSIP_KEYS, type GossipKeys } from './gossip.js';
import { generateKey, sodiumReady, hexId, keyId } from '../../mesh/index.js';

export interface DaemonOptions {
  stateDir: string;
  socketPath: string;
  hostname?: string;
  /** Prefix of task namespaces and containers (default "msh-t-"; a lab node: "PREFIX-nN-t-"). */
  taskPrefix?: string;
  /** Gossip port (default 7946). */
  gossipPort?: number;
  /** Resolvers for names outside the cluster (default: the host's /etc/resolv.conf). */
  dnsUpstreams?: Upstream[];
  /** Raft timing (ms); Swarm's are 1 s ticks, ours default to 100 ms heartbeat / 1 s election. */
  tickMs?: number;
  raftHeartbeatMs?: number;
  electionMs?: number;
  log?: (line: string) => void;
}

export interface ClusterMembership {
  clusterId: string;
  role: 'manager' | 'worker';
  advertiseAddr: string; // HOST:PORT
  listenAddr: string; // HOST:PORT
  /** Managers this node knows (id -> HOST:PORT), refreshed from heartbeat replies. */
  managers: Record<string, string>;
  /** Shared by managers; authenticates forwarded requests until mutual TLS replaces it. */
  clusterKey?: string;
  /** Shared by every node: managers use it to reach agents (task logs) until mutual TLS. */
  agentKey?: string;
}

export interface NodeIdentity {
  nodeId: string;
  hostname: string;
  cluster?: ClusterMembership;
}

export interface JoinTokens {
  worker: string;
  manager: string;
}

interface ClusterSecrets {
  tokens: JoinTokens;
  clusterKey: string;
  agentKey?: string;
}

const DEFAULT_PORT = 2377;

export class Daemon {
  identity!: NodeIdentity;
  manager: Manager | undefined;
  private listener: ControlListener | undefined;
  private local: http.Server | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private monitorTimer: NodeJS.Timeout | undefined;
  /** Leader only: when each node last sent a heartbeat. */
  readonly lastSeen = new Map<string, number>();
  /** Leader only: sessions currently held open, by node. */
  private readonly openSessions = new Map<string, number>();
  private leaderSince = 0;
  readonly router = new Router();
  gossip: GossipAgent | undefined;
  agent: Agent | undefined;
  networking: NodeNetworking | undefined;
  dnsFeed: DnsFeed | undefined;
  orch: Orchestration | undefined;
  private pendingReports: AgentReport[] = [];
  private flushing = false;
  private knownVersion = '';
  /** Leader only: the gossip keys each node last reported. */
  readonly nodeKeys = new Map<string, { ids: string[]; primary: string }>();
  private rotating: Promise<GossipKeys> | undefined;
  readonly log: (line: string) => void;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(readonly o: DaemonOptions) {
    this.log = o.log ?? ((l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`));
    registerRoutes(this);
  }

  /** Prefix of our kernel objects: "msh" on a host, the node's namespace name in a lab ("PREFIX-nN"). */
  get objectPrefix(): string {
    const p = this.o.taskPrefix ?? 'msh-t-';
    return p.endsWith('-t-') ? p.slice(0, -3) : p.replace(/-+$/, '') || 'msh';
  }

  private get identityFile(): string {
    return path.join(this.o.stateDir, 'node.json');
  }

  saveIdentity(): void {
    const tmp = `${this.identityFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.identity, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.identityFile);
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.o.stateDir, { recursive: true, mode: 0o700 });
    try {
      this.identity = JSON.parse(fs.readFileSync(this.identityFile, 'utf8')) as NodeIdentity;
    } catch {
      this.identity = { nodeId: newId(), hostname: this.o.hostname ?? os.hostname() };
    }
    if (this.o.hostname) this.identity.hostname = this.o.hostname;
    this.saveIdentity();
    fs.mkdirSync(path.dirname(this.o.socketPath), { recursive: true });
    fs.rmSync(this.o.socketPath, { force: true }); // a stale socket from a crashed daemon
    this.local = this.router.server('local');
    await new Promise<void>((resolve, reject) => {
      this.local!.once('error', reject);
      this.local!.listen(this.o.socketPath, () => resolve());
    });
    fs.chmodSync(this.o.socketPath, 0o600);
    if (this.identity.cluster) await this.startClusterRuntime();
    this.log(`meshd ${this.identity.nodeId} (${this.identity.hostname}) listening on ${this.o.socketPath}${this.identity.cluster ? `, ${this.identity.cluster.role} of cluster ${this.identity.cluster.clusterId}` : ', not in a cluster'}`);
  }

  /** Serializes cluster-changing operations (init, join, leave, force-new-cluster). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.busy.then(fn, fn);
    this.busy = p.catch(() => undefined);
    return p;
  }

  private async startClusterRuntime(): Promise<void> {
    const c = this.identity.cluster!;
    if (!this.listener) {
      const [host, port] = splitHostPort(c.listenAddr);
      this.listener = new ControlListener(() => this.manager?.transport, this.router.server('remote'));
      await this.listener.listen(host, port);
    }
    if (c.role === 'manager' && !this.manager) {
      this.manager = new Manager({
        id: this.identity.nodeId,
        stateDir: this.o.stateDir,
        addr: c.advertiseAddr,
        peers: c.managers,
        tickMs: this.o.tickMs ?? 100,
        heartbeatMs: this.o.raftHeartbeatMs ?? 100,
        electionMs: this.o.electionMs ?? 1000,
        log: this.log,
      });
      this.manager.start();
    }
    if (this.manager && !this.monitorTimer) this.monitorTimer = setInterval(() => void this.monitorNodes(), 250);
    if (this.manager && !this.orch) {
      this.orch = new Orchestration(this.manager, this.log);
      this.orch.start();
    }
    this.dnsFeed ??= new DnsFeed(this.log, this.o.dnsUpstreams);
    if (!this.networking) {
      this.networking = new NodeNetworking({
        dns: this.dnsFeed,
        nodeId: this.identity.nodeId,
        hostname: this.identity.hostname,
        prefix: this.objectPrefix,
        underlay: splitHostPort(c.advertiseAddr)[0],
        stateDir: this.o.stateDir,
        log: this.log,
        tables: () => this.gossip?.tables,
        pump: () => this.gossip?.pump(),
        running: () => this.agent?.runningTasks() ?? new Map(),
      });
    }
    if (!this.agent) {
      const net = this.networking;
      this.agent = new Agent({
        nodeId: this.identity.nodeId,
        taskPrefix: this.o.taskPrefix ?? 'msh-t-',
        stateDir: this.o.stateDir,
        report: (r) => this.queueReports(r),
        log: this.log,
        prepareTask: (t, ns) => net.prepare(t, ns),
        tasksChanged: () => net.schedule(),
      });
      void this.agent.start().catch((e: Error) => this.log(`agent: ${e.message}`));
    }
    if (!this.gossip) this.gossip = new GossipAgent(this.identity.nodeId, splitHostPort(c.advertiseAddr)[0], this.log, this.o.gossipPort);
    this.startHeartbeats();
  }

  private async stopClusterRuntime(graceful = false): Promise<void> {
    await this.gossip?.stop(graceful);
    this.gossip = undefined;
    this.orch?.stop();
    this.orch = undefined;
    if (this.agent) {
      if (graceful) await this.agent.removeAll();
      await this.agent.close();
    }
    this.agent = undefined;
    if (graceful) this.networking?.teardown();
    else this.networking?.close();
    this.networking = undefined;
    await this.dnsFeed?.close();
    this.dnsFeed = undefined;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    this.heartbeatTimer = undefined;
    this.monitorTimer = undefined;
    this.manager?.stop();
    this.manager = undefined;
    await this.listener?.close();
    this.listener = undefined;
  }

  async stop(): Promise<void> {
    await this.stopClusterRuntime();
    await new Promise<void>((r) => (this.local ? this.local.close(() => r()) : r()));
    fs.rmSync(this.o.socketPath, { force: true });
  }

  // ---- cluster state helpers ------------------------------------------------------------------------

  requireManager(): Manager {
    if (!this.identity.cluster) throw new ApiError(503, 'not-in-cluster', 'this node is not part of a cluster: run `meshctl swarm init` or `meshctl swarm join`');
    if (!this.manager) throw new ApiError(503, 'not-manager', 'this node is a worker: run the command on a manager (meshctl -H tcp://MANAGER:2377 needs the security issue; use the manager\'s own socket)');
    return this.manager;
  }

  cluster(): Stored<'cluster'> {
    const c = this.requireManager().store.list('cluster')[0];
    if (!c) throw new ApiError(503, 'no-cluster', 'the cluster object is not there yet: the manager is still catching up');
    return c;
  }

  secrets(): ClusterSecrets {
    const c = this.cluster();
    if (!c.secrets) throw new ApiError(500, 'internal', 'cluster has no join tokens');
    return c.secrets;
  }

  /**
   * Runs fn on the leader: here if we are it, else forwards the same request there. While there is
   * no leader (an election, or a leader that just died) it retries until the deadline, then explains.
   */
  async onLeader<T>(method: string, apiPath: string, body: unknown, fn: () => Promise<T>, timeoutMs = 5000): Promise<T> {
    const m = this.requireManager();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (m.isLeader()) return fn();
      const st = m.status();
      const addr = st.leader && st.leader !== this.identity.nodeId ? st.members[st.leader] : undefined;
      if (addr) {
        const [host, port] = splitHostPort(addr);
        try {
          return await call<T>({ host, port, display: `tcp://${addr}` }, method, apiPath, { ...(body as object), clusterKey: this.identity.cluster?.clusterKey }, Math.max(1000, deadline - Date.now()));
        } catch (e) {
          const ce = e as { status?: number; code?: string; message: string };
          if (ce.status && ce.status >= 400) throw new ApiError(ce.status, ce.code ?? 'forward', ce.message);
          // Connection failed: the leader is gone; wait for the next one.
        }
      }
      if (Date.now() >= deadline) throw new ApiError(503, 'no-quorum', m.quorumMessage('the request', 'could not reach a leader', timeoutMs));
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  checkAgentKey(key: string | undefined): void {
    if (!this.identity.cluster?.agentKey || key !== this.identity.cluster.agentKey) throw new ApiError(403, 'forbidden', 'this call is only for managers of this cluster');
  }

  /** Manager: a task's logs, from the node that runs (or ran) it. */
  async taskLogs(nodeId: string, taskId: string, tail?: number): Promise<string> {
    if (nodeId === this.identity.nodeId) {
      if (!this.agent) throw new ApiError(503, 'no-agent', 'this node runs no agent');
      return this.agent.logs(taskId, tail);
    }
    const n = this.requireManager().store.get('node', nodeId);
    if (!n) throw new ApiError(404, 'not-found', `node ${nodeId} is gone`);
    const [host, port] = splitHostPort(n.addr);
    const key = this.secrets().agentKey;
    const r = await call<{ logs: string }>({ host, port, display: n.addr }, 'POST', `/v1/agent/tasks/${encodeURIComponent(taskId)}/logs`, { agentKey: key, ...(tail !== undefined ? { tail } : {}) }, 10_000);
    return r.logs;
  }

  checkClusterKey(body: unknown): void {
    const key = (body as { clusterKey?: string } | undefined)?.clusterKey;
    if (!this.identity.cluster?.clusterKey || key !== this.identity.cluster.clusterKey) {
      throw new ApiError(403, 'forbidden', 'this call is only for managers of this cluster');
    }
  }

  static toApiError(e: unknown): unknown {
    if (e instanceof ManagerError) {
      const status = e.code === 'no-quorum' ? 503 : e.code === 'conflict' || e.code === 'exists' ? 409 : e.code === 'not-found' ? 404 : 400;
      return new ApiError(status, e.code, e.message);
    }
    return e;
  }

  // ---- swarm init / join / leave ---------------------------------------------------------------------

  async init(opts: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean }): Promise<{ clusterId: string; nodeId: string }> {
    return this.exclusive(async () => {
      if (opts.forceNewCluster) return this.forceNew();
      if (this.identity.cluster) throw new ApiError(409, 'already-in-cluster', `this node is already part of cluster ${this.identity.cluster.clusterId} (as a ${this.identity.cluster.role}); \`meshctl swarm leave\` first`);
      const { listenAddr, advertiseAddr } = addrs(opts);
      const clusterId = newId();
      const clusterKey = newId() + newId();
      const agentKey = newId() + newId();
      this.identity.cluster = { clusterId, role: 'manager', advertiseAddr, listenAddr, managers: {}, clusterKey, agentKey };
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      // Bootstrap a one-member Raft group with ourselves.
      this.manager = new Manager({
        id: this.identity.nodeId,
        stateDir: this.o.stateDir,
        addr: advertiseAddr,
        bootstrap: { [this.identity.nodeId]: advertiseAddr },
        tickMs: this.o.tickMs ?? 100,
        heartbeatMs: this.o.raftHeartbeatMs ?? 100,
        electionMs: this.o.electionMs ?? 1000,
        log: this.log,
      });
      this.manager.start();
      this.saveIdentity();
      await this.startClusterRuntime();
      await sodiumReady();
      const cluster: ClusterObject = {
        id: clusterId,
        name: 'default',
        gossip: { keys: [Buffer.from(generateKey()).toString('base64')], primary: 0, rotatedAt: new Date().toISOString() },
        spec: { heartbeatPeriodMs: 1000, heartbeatGrace: 3, electionTickMs: this.o.electionMs ?? 1000, heartbeatTickMs: this.o.raftHeartbeatMs ?? 100, gossipKeyRotationMs: 12 * 3600_000 },
        secrets: { tokens: { worker: newToken(clusterId), manager: newToken(clusterId) }, clusterKey, agentKey },
      };
      await this.manager.propose([
        { op: 'create', kind: 'cluster', object: cluster },
        { op: 'create', kind: 'node', object: this.nodeObject('manager', advertiseAddr) },
        // The routing mesh's network, as Swarm makes it at init (10.255.0.0/16 unless configured).
        { op: 'create', kind: 'network', object: { id: newId(), spec: { name: 'ingress', driver: 'overlay', attachable: false, encrypted: false, labels: {}, ingress: true } } },
      ], 10_000);
      this.log(`swarm initialized: cluster ${clusterId}, this node (${this.identity.nodeId}) is the leader`);
      return { clusterId, nodeId: this.identity.nodeId };
    });
  }

  private nodeObject(role: 'manager' | 'worker', addr: string, hostname = this.identity.hostname, id = this.identity.nodeId): NodeObject {
    return { id, hostname, role, availability: 'active', labels: {}, addr, state: 'ready', ...(role === 'manager' ? { manager: { raftAddr: addr } } : {}) };
  }

  private async forceNew(): Promise<{ clusterId: string; nodeId: string }> {
    const c = this.identity.cluster;
    if (!c || c.role !== 'manager') throw new ApiError(400, 'not-manager', '--force-new-cluster needs a node that was a manager, with its Raft data');
    await this.stopClusterRuntime();
    const r = forceNewCluster(this.o.stateDir, this.identity.nodeId, c.advertiseAddr);
    c.managers = {};
    this.saveIdentity();
    await this.startClusterRuntime();
    this.log(`forced a new cluster from this manager's data (up to index ${r.index}); other managers are no longer members`);
    // Wait for our own election so the caller can use the cluster at once.
    const deadline = Date.now() + 10_000;
    while (!this.manager?.isLeader()) {
      if (Date.now() > deadline) throw new ApiError(503, 'no-leader', 'the forced one-member cluster did not elect this node within 10 s');
      await new Promise((res) => setTimeout(res, 50));
    }
    return { clusterId: c.clusterId, nodeId: this.identity.nodeId };
  }

  async join(opts: { remoteAddr: string; token: string; advertiseAddr?: string; listenAddr?: string }): Promise<{ clusterId: string; nodeId: string; role: TokenRole }> {
    return this.exclusive(async () => {
      if (this.identity.cluster) throw new ApiError(409, 'already-in-cluster', `this node is already part of cluster ${this.identity.cluster.clusterId}; \`meshctl swarm leave\` first`);
      try {
        parseToken(opts.token);
      } catch (e) {
        throw new ApiError(400, 'invalid-token', (e as Error).message);
      }
      const { listenAddr, advertiseAddr } = addrs(opts);
      const remote = withPort(opts.remoteAddr);
      const [host, port] = splitHostPort(remote);
      const target: Target = { host, port, display: `tcp://${remote}` };
      let reply: JoinReply;
      try {
        reply = await call<JoinReply>(target, 'POST', '/v1/cluster/join', { token: opts.token, nodeId: this.identity.nodeId, hostname: this.identity.hostname, addr: advertiseAddr });
      } catch (e) {
        const ce = e as { status?: number; code?: string; message: string };
        throw new ApiError(ce.status && ce.status >= 400 ? ce.status : 502, ce.code ?? 'join-failed', `join via ${remote} failed: ${ce.message}`);
      }
      if (clusterDigest(reply.clusterId) !== parseToken(opts.token).digest) throw new ApiError(400, 'wrong-cluster', `the manager at ${remote} belongs to another cluster than the token`);
      this.identity.cluster = { clusterId: reply.clusterId, role: reply.role, advertiseAddr, listenAddr, managers: reply.managers, ...(reply.clusterKey ? { clusterKey: reply.clusterKey } : {}), ...(reply.agentKey ? { agentKey: reply.agentKey } : {}) };
      if (reply.role === 'manager') fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      this.saveIdentity();
      await this.startClusterRuntime();
      if (reply.role === 'manager') {
        // The leader adds us as a learner and promotes us once our log has caught up.
        await call(target, 'POST', '/v1/cluster/add-manager', { nodeId: this.identity.nodeId, addr: advertiseAddr, clusterKey: reply.clusterKey }, 30_000);
      }
      this.log(`joined cluster ${reply.clusterId} as a ${reply.role}`);
      return { clusterId: reply.clusterId, nodeId: this.identity.nodeId, role: reply.role };
    });
  }

  async leave(force: boolean): Promise<{ left: string }> {
    return this.exclusive(async () => {
      const c = this.identity.cluster;
      if (!c) throw new ApiError(400, 'not-in-cluster', 'this node is not part of a cluster');
      if (c.role === 'manager' && this.manager) {
        const st = this.manager.status();
        if (!force) {
          const others = st.voters.filter((v) => v !== this.identity.nodeId);
          throw new ApiError(409, 'manager-leave', `this node is a manager; leaving ${others.length ? `leaves ${others.length} managers (quorum ${Math.floor(others.length / 2) + 1})` : 'destroys the cluster (it is the last manager)'}. Demote it first (meshctl node demote), or use --force`);
        }
        if (st.voters.length > 1) {
          await this.manager.removeManager(this.identity.nodeId, 5000).catch((e: Error) => this.log(`leave: could not remove this manager from Raft: ${e.message}`));
        }
      }
      await this.stopClusterRuntime(true);
      const id = c.clusterId;
      delete this.identity.cluster;
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      this.saveIdentity();
      this.log(`left cluster ${id}`);
      return { left: id };
    });
  }

  /** Leader side of a join: checks the token, records the node, tells it who the managers are. */
  async acceptJoin(req: { token: string; nodeId: string; hostname: string; addr: string }): Promise<JoinReply> {
    const m = this.requireManager();
    const cluster = this.cluster();
    const secrets = this.secrets();
    let role: TokenRole;
    try {
      role = checkToken(req.token, cluster.id, secrets.tokens);
    } catch (e) {
      this.log(`join refused for ${req.hostname} (${req.addr}): ${(e as Error).message}`);
      throw new ApiError(401, 'invalid-token', (e as Error).message);
    }
    const existing = m.store.get('node', req.nodeId);
    const obj = this.nodeObject(role, req.addr, req.hostname, req.nodeId);
    await m.propose([existing ? { op: 'update', kind: 'node', object: { ...obj, labels: existing.labels, availability: existing.availability } } : { op: 'create', kind: 'node', object: obj }]);
    this.lastSeen.set(req.nodeId, Date.now());
    this.log(`node ${req.nodeId} (${req.hostname}, ${req.addr}) joined as a ${role}`);
    return { clusterId: cluster.id, role, managers: this.managerAddrs(), ...(secrets.agentKey ? { agentKey: secrets.agentKey } : {}), ...(role === 'manager' ? { clusterKey: secrets.clusterKey } : {}) };
  }

  managerAddrs(): Record<string, string> {
    return this.requireManager().status().members;
  }

  // ---- node liveness ------------------------------------------------------------------------------

  // The agent's session with the dispatcher: a long poll (held by the leader until this node's
  // assignments change, or one heartbeat period) that is also the heartbeat. Reports go out at once
  // in their own short call.
  private startHeartbeats(): void {
    if (this.heartbeatTimer) return;
    const beat = async (): Promise<void> => {
      if (!this.identity.cluster) return;
      const period = this.manager?.store.list('cluster')[0]?.spec.heartbeatPeriodMs ?? 1000;
      let ok = false;
      try {
        ok = await this.session([], period);
      } catch {
        // the next call tries another manager
      }
      if (this.identity.cluster) this.heartbeatTimer = setTimeout(() => void beat(), ok ? 0 : Math.min(500, period));
    };
    this.heartbeatTimer = setTimeout(() => void beat(), 0);
  }

  private queueReports(r: AgentReport[]): void {
    this.pendingReports.push(...r);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flushReports());
  }

  private async flushReports(): Promise<void> {
    while (this.pendingReports.length && this.identity.cluster) {
      const batch = this.pendingReports.splice(0);
      try {
        await this.session(batch, 0);
      } catch (e) {
        this.log(`agent: reporting ${batch.length} task states failed (${(e as Error).message}); retrying`);
        this.pendingReports.unshift(...batch);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    this.flushing = false;
  }

  /** One session call; returns whether it reached a leader. */
  private async session(reports: AgentReport[], waitMs: number): Promise<boolean> {
    const c = this.identity.cluster;
    if (!c) return false;
    const reply = await this.sendSession({ nodeId: this.identity.nodeId, reports, waitMs, knownVersion: this.knownVersion, ...(this.gossip?.keyState() ? { gossip: this.gossip.keyState()! } : {}) });
    if (!reply) return false;
    if (Object.keys(reply.managers).length) c.managers = reply.managers;
    if (reply.role && reply.role !== c.role) await this.exclusive(() => this.changeRole(reply));
    if (reply.gossip && this.gossip) await this.gossip.ensure(reply.gossip, gossipSeeds(c.managers, this.o.gossipPort));
    for (const e of reply.errors ?? []) this.log(`dispatcher: ${e}`);
    if (reply.tasks && this.agent) {
      this.knownVersion = reply.version ?? '';
      await this.agent.start(); // adoption first: the networking pass needs to know what runs here
      this.networking?.update({ tasks: reply.tasks, networks: reply.networks ?? [], services: reply.services ?? {}, ...(reply.ingressAddr ? { ingressAddr: reply.ingressAddr } : {}) });
      await this.agent.apply(reply.tasks);
    }
    return true;
  }

  private hbIndex = 0;

  private async sendSession(body: SessionRequest): Promise<SessionReply | undefined> {
    const c = this.identity.cluster!;
    const timeout = body.waitMs + 5000;
    if (this.manager) {
      if (this.manager.isLeader()) return this.handleSession(body);
      const st = this.manager.status();
      const addr = st.leader ? st.members[st.leader] : undefined;
      if (!addr) return undefined;
      const [host, port] = splitHostPort(addr);
      return call({ host, port, display: addr }, 'POST', '/v1/dispatcher/session', body, timeout);
    }
    const list = Object.values(c.managers);
    if (!list.length) return undefined;
    const addr = list[this.hbIndex % list.length]!;
    const [host, port] = splitHostPort(addr);
    try {
      return await call({ host, port, display: addr }, 'POST', '/v1/dispatcher/session', body, timeout);
    } catch (e) {
      this.hbIndex++; // fail over to the next manager
      throw e;
    }
  }

  /** Leader: a session call from an agent (or from this node's own agent). */
  async handleSession(body: SessionRequest): Promise<SessionReply> {
    const reply = this.recordHeartbeat(body.nodeId, body.gossip) as SessionReply;
    const orch = this.orch;
    if (!orch) return reply;
    if (body.reports.length) reply.errors = await orch.applyReports(body.nodeId, body.reports);
    else {
      // Hold no longer than the heartbeat period. While held, the node is connected, so it counts as
      // alive (openSessions), and the end of the hold is a heartbeat too: changing the period can
      // then never make a healthy node look silent.
      const period = this.manager?.store.list('cluster')[0]?.spec.heartbeatPeriodMs ?? 1000;
      this.openSessions.set(body.nodeId, (this.openSessions.get(body.nodeId) ?? 0) + 1);
      try {
        await orch.waitForChange(body.nodeId, body.knownVersion, Math.min(body.waitMs, period));
      } finally {
        const n = (this.openSessions.get(body.nodeId) ?? 1) - 1;
        if (n > 0) this.openSessions.set(body.nodeId, n);
        else this.openSessions.delete(body.nodeId);
        this.lastSeen.set(body.nodeId, Date.now());
      }
    }
    if (!this.manager?.isLeader()) return reply;
    const a = orch.assignments(body.nodeId);
    const names = new Map(this.manager.store.list('service').map((sv) => [sv.id, sv.spec.name]));
    reply.tasks = a.tasks.map(({ meta: _m, ...t }) => t);
    reply.version = a.version;
    reply.serviceNames = Object.fromEntries(a.tasks.map((t) => [t.serviceId, names.get(t.serviceId) ?? t.serviceId]));
    Object.assign(reply, networkView(this.manager.store, body.nodeId, a.tasks));
    return reply;
  }

  /** Promote or demote this node after a manager recorded the change in the store. */
  private async changeRole(reply: HeartbeatReply): Promise<void> {
    const c = this.identity.cluster;
    if (!c || !reply.role || reply.role === c.role) return;
    if (reply.role === 'manager') {
      if (!reply.clusterKey) return;
      this.log('promoted: becoming a manager');
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      c.role = 'manager';
      c.clusterKey = reply.clusterKey;
      this.saveIdentity();
      await this.startClusterRuntime();
      const leader = Object.values(reply.managers)[0];
      const target = leader ? splitHostPort(leader) : undefined;
      if (target) await call({ host: target[0], port: target[1], display: leader! }, 'POST', '/v1/cluster/add-manager', { nodeId: this.identity.nodeId, addr: c.advertiseAddr, clusterKey: reply.clusterKey }, 30_000);
    } else {
      this.log('demoted: becoming a worker');
      this.orch?.stop();
      this.orch = undefined;
      this.manager?.stop();
      this.manager = undefined;
      if (this.monitorTimer) clearInterval(this.monitorTimer);
      this.monitorTimer = undefined;
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      c.role = 'worker';
      delete c.clusterKey;
      this.saveIdentity();
    }
  }

  /** Leader: note a heartbeat; tells the node the managers to fail over to and its current role. */
  recordHeartbeat(nodeId: string, keys?: { ids: string[]; primary: string }): HeartbeatReply {
    this.lastSeen.set(nodeId, Date.now());
    if (keys) this.nodeKeys.set(nodeId, keys);
    const n = this.requireManager().store.get('node', nodeId);
    const g = this.requireManager().store.list('cluster')[0]?.gossip;
    const reply: HeartbeatReply = { managers: this.managerAddrs(), ...(g ? { gossip: g } : {}) };
    if (n) reply.role = n.role;
    if (n?.role === 'manager') reply.clusterKey = this.secrets().clusterKey;
    return reply;
  }

  /**
   * Leader: rotate the gossip key without losing a packet. 1) add the new key to the ring (dropping
   * one two rotations old, which nobody sends with) and wait until every live node holds it; 2) make
   * it primary and wait until every live node sends with it.
   */
  rotateGossipKey(timeoutMs = 30_000): Promise<GossipKeys> {
    this.rotating ??= this.doRotate(timeoutMs).finally(() => (this.rotating = undefined));
    return this.rotating;
  }

  private async doRotate(timeoutMs: number): Promise<GossipKeys> {
    await sodiumReady();
    const c = this.cluster();
    const g = c.gossip;
    if (!g) throw new ApiError(500, 'internal', 'cluster has no gossip keys');
    const primaryKey = g.keys[g.primary]!;
    let keys = [...g.keys];
    while (keys.length >= MAX_GOSSIP_KEYS) {
      const drop = keys.findIndex((k) => k !== primaryKey);
      keys.splice(drop, 1);
    }
    const fresh = Buffer.from(generateKey()).toString('base64');
    keys = [...keys, fresh];
    const freshId = hexId(keyId(Buffer.from(fresh, 'base64')));
    const phase1: GossipKeys = { keys, primary: keys.indexOf(primaryKey), rotatedAt: g.rotatedAt };
    await this.updateCluster((cl) => ({ ...cl, gossip: phase1 }));
    this.log(`gossip: rotation: added key ${freshId}; waiting for every live node to hold it`);
    await this.waitForKeys((k) => k.ids.includes(freshId), `hold key ${freshId}`, timeoutMs);
    const phase2: GossipKeys = { keys, primary: keys.length - 1, rotatedAt: new Date().toISOString() };
    await this.updateCluster((cl) => ({ ...cl, gossip: phase2 }));
    await this.waitForKeys((k) => k.primary === freshId, `send with key ${freshId}`, timeoutMs);
    this.log(`gossip: rotation done: primary ${freshId}, ring ${gossipKeyIds(phase2).ids.join(',')}`);
    return phase2;
  }

  private async updateCluster(fn: (c: ClusterObject) => ClusterObject): Promise<void> {
    const m = this.requireManager();
    for (let attempt = 0; ; attempt++) {
      const c = this.cluster();
      try {
        await m.propose([{ op: 'update', kind: 'cluster', object: fn(stripMeta(c)), version: c.meta.version }]);
        return;
      } catch (e) {
        if (!(e instanceof ManagerError && e.code === 'conflict') || attempt >= 5) throw Daemon.toApiError(e);
      }
    }
  }

  private async waitForKeys(ok: (k: { ids: string[]; primary: string }) => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.requireManager();
      const spec = m.store.list('cluster')[0]?.spec;
      const fresh = (spec?.heartbeatPeriodMs ?? 1000) * 2;
      const live = m.store.list('node').filter((n) => n.state === 'ready' && Date.now() - (this.lastSeen.get(n.id) ?? 0) < fresh);
      const behind = live.filter((n) => !ok(this.nodeKeys.get(n.id) ?? { ids: [], primary: '' }));
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new ApiError(503, 'rotation-stalled', `gossip key rotation stopped: ${behind.length} live nodes did not ${what} within ${timeoutMs} ms (${behind.map((n) => n.hostname).join(', ')}); the ring is consistent, run the rotation again once they are back`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private monitoring = false;

  /** Leader: marks nodes down after missed heartbeats, and ready again when they return. */
  private async monitorNodes(): Promise<void> {
    const m = this.manager;
    if (!m || this.monitoring) return;
    if (!m.isLeader()) {
      this.leaderSince = 0;
      return;
    }
    const now = Date.now();
    if (!this.leaderSince) {
      // A new leader has no heartbeat history: give every node one grace period from now.
      this.leaderSince = now;
      for (const n of m.store.list('node')) if (!this.lastSeen.has(n.id)) this.lastSeen.set(n.id, now);
    }
    const spec = m.store.list('cluster')[0]?.spec;
    if (!spec) return;
    const g = m.store.list('cluster')[0]?.gossip;
    if (g && spec.gossipKeyRotationMs && now - Date.parse(g.rotatedAt) > spec.gossipKeyRotationMs && !this.rotating) {
      void this.rotateGossipKey().catch((e: Error) => this.log(`gossip: periodic rotation: ${e.message}`));
    }
    const deadline = spec.heartbeatPeriodMs * spec.heartbeatGrace;
    this.monitoring = true;
    try {
      // Manager reachability as the leader sees it, so every manager's `node ls` agrees.
      const st = m.status();
      for (const n of m.store.list('node')) {
        if (n.role !== 'manager' || !n.manager) continue;
        const reachable = st.reachable[n.id] ?? false;
        if (n.manager.reachable !== reachable) {
          await m.propose([{ op: 'update', kind: 'node', object: { ...stripMeta(n), manager: { ...n.manager, reachable } }, version: n.meta.version }]).catch(() => undefined);
        }
      }
      for (const n of m.store.list('node')) {
        const seen = this.lastSeen.get(n.id) ?? this.leaderSince;
        const alive = now - seen <= deadline || (this.openSessions.get(n.id) ?? 0) > 0;
        if (alive && n.state !== 'ready') {
          await m.propose([{ op: 'update', kind: 'node', object: { ...stripMeta(n), state: 'ready' }, version: n.meta.version }]).catch(() => undefined);
        } else if (!alive && n.state === 'ready') {
          this.log(`node ${n.id} (${n.hostname}) missed heartbeats for ${now - seen} ms: marking it down`);
          await m.propose([{ op: 'update', kind: 'node', object: { ...stripMeta(n), state: 'down' }, version: n.meta.version }]).catch(() => undefined);
        }
      }
    } finally {
      this.monitoring = false;
    }
  }
}

export interface HeartbeatReply {
  managers: Record<string, string>;
  gossip?: GossipKeys;
  role?: 'manager' | 'worker';
  clusterKey?: string;
}

export interface SessionRequest {
  nodeId: string;
  reports: AgentReport[];
  /** how long the leader may hold the call when nothing changed (the heartbeat period) */
  waitMs: number;
  knownVersion: string;
  gossip?: { ids: string[]; primary: string };
}

export interface SessionReply extends HeartbeatReply {
  tasks?: TaskObject[];
  /** the networks this node's tasks use, and the ingress network */
  networks?: NetworkObject[];
  services?: Record<string, ServiceInfo>;
  ingressAddr?: string;
  version?: string;
  serviceNames?: Record<string, string>;
  errors?: string[];
}

export interface JoinReply {
  clusterId: string;
  role: TokenRole;
  managers: Record<string, string>;
  clusterKey?: string;
  agentKey?: string;
}

export function stripMeta<T extends { meta?: unknown }>(o: T): Omit<T, 'meta'> {
  const { meta: _meta, ...rest } = o;
  return rest;
}

function withPort(a: string): string {
  return /:\d+$/.test(a) && !/^[^[]*:[^:]*:/.test(a) ? a : `${a}:${DEFAULT_PORT}`;
}

function firstAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new ApiError(400, 'no-address', 'could not choose an address to advertise: pass --advertise-addr');
}

function addrs(o: { advertiseAddr?: string; listenAddr?: string }): { advertiseAddr: string; listenAddr: string } {
  const advertiseAddr = withPort(o.advertiseAddr ?? firstAddress());
  const listenAddr = withPort(o.listenAddr ?? `0.0.0.0:${splitHostPort(advertiseAddr)[1]}`);
  return { advertiseAddr, listenAddr };
}
