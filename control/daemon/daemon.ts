// meshd: one per node. Composes the rooms: the local API (unix socket), the 2377 listener (Raft +
// remote API), the manager (Raft + store) when this node is a manager, and node heartbeats.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import http from 'node:http';
import type tls from 'node:tls';
import { Router, ApiError } from '../api/http.js';
import { call, ClientError } from '../api/client.js';
import { ControlListener } from '../transport/listener.js';
import { splitHostPort } from '../transport/raft-peers.js';
import { Manager, ManagerError } from '../manager/manager.js';
import { forceNewCluster } from '../manager/force-new-cluster.js';
import { checkToken, newId, newToken, parseToken, type TokenRole } from './tokens.js';
import { NodeSecurity } from './security.js';
import { authorize, identify, type Access, type AuthzContext } from '../ca/authz.js';
import { createRootCA, DEFAULT_CERT_EXPIRY_MS, issueNodeCert, parseNodeCert, PkiError, type NodeCertInfo } from '../ca/pki.js';
import { fetchPinnedRoot, JoinError, pinnedTarget } from '../ca/join.js';
import { cipherReady } from '../ca/seal.js';
import { LockedError } from '../ca/node-keys.js';
import type { NodeObject, ClusterObject, Stored } from '../store/objects.js';
import { registerRoutes } from './routes.js';
import { Orchestration } from './orchestration.js';
import { Agent, type AgentReport } from '../agent/agent.js';
import type { NetworkObject, TaskObject } from '../store/objects.js';
import { NodeNetworking, type ServiceInfo } from './networking.js';
import { networkView } from './network-view.js';
import { DnsFeed } from './dns-feed.js';
import { RoutingMesh, type PublishedService } from './routing-mesh.js';
import type { Upstream } from '../../dns/index.js';
import { GossipAgent, gossipKeyIds, gossipSeeds, MAX_GOSSIP_KEYS, type GossipKeys } from './gossip.js';
import { generateKey, sodiumReady, hexId, keyId } from '../../mesh/index.js';
import { SilenceClock } from './liveness.js';

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
  /** Load-balancing backend: IPVS when the kernel has it (auto), or nftables. */
  lbBackend?: 'auto' | 'ipvs' | 'nftables';
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
  ca: { cert: string; key: string };
  unlockKey?: string;
}

const DEFAULT_PORT = 2377;
/** how often the leader checks node liveness */
const MONITOR_MS = 250;

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
  /** node silence as the monitor counts it (its own stalls excluded): what marks nodes down */
  private readonly silence = new SilenceClock(MONITOR_MS * 4);
  private leaderSince = 0;
  readonly router = new Router();
  gossip: GossipAgent | undefined;
  agent: Agent | undefined;
  networking: NodeNetworking | undefined;
  dnsFeed: DnsFeed | undefined;
  mesh: RoutingMesh | undefined;
  orch: Orchestration | undefined;
  private pendingReports: AgentReport[] = [];
  private flushing = false;
  private knownVersion = '';
  /** Leader only: the gossip keys each node last reported. */
  readonly nodeKeys = new Map<string, { ids: string[]; primary: string }>();
  private rotating: Promise<GossipKeys> | undefined;
  readonly log: (line: string) => void;
  private busy: Promise<unknown> = Promise.resolve();
  /** Certificates, keys, the data key and the lock (control/daemon/security.ts). */
  readonly sec: NodeSecurity;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private unwatchCluster: (() => void) | undefined;
  /** Workers: the removed nodes as the last session reply listed them. */
  private removedCache: Record<string, { at: string; until: string }> = {};
  private refusalsLogged = new Map<string, number>();
  /** Workers: the cluster's certificate lifetime as the last session reply said. */
  private certExpiryMs: number | undefined;
  /** a worker's copy of the cluster's heartbeat period, from its session replies */
  private heartbeatPeriodMs: number | undefined;

  constructor(readonly o: DaemonOptions) {
    this.log = o.log ?? ((l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`));
    this.sec = new NodeSecurity(o.stateDir);
    this.sec.onChange = () => this.listener?.setCredentials(this.sec.serverOptions());
    this.router.authorizeRemote = (raw, access, p) => this.authorizeRemote(raw, access, p);
    registerRoutes(this);
  }

  get locked(): boolean {
    return this.sec.lockedKekId !== undefined;
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
    await cipherReady();
    if (this.identity.cluster) {
      const st = this.sec.load();
      if (st === 'none') {
        // a state directory from before the PKI, or certificates removed by hand: the node cannot
        // prove who it is, so it is not part of the cluster any more
        this.log(`this node was in cluster ${this.identity.cluster.clusterId} but has no certificate and key under ${this.sec.certDir}: it must join again with a token`);
        delete this.identity.cluster;
        this.saveIdentity();
      } else if (st === 'locked') {
        this.log(`this manager is locked (autolock is on): its keys and Raft data stay sealed until \`meshctl swarm unlock\` is given the unlock key`);
      }
    }
    fs.mkdirSync(path.dirname(this.o.socketPath), { recursive: true });
    fs.rmSync(this.o.socketPath, { force: true }); // a stale socket from a crashed daemon
    this.local = this.router.server('local');
    await new Promise<void>((resolve, reject) => {
      this.local!.once('error', reject);
      this.local!.listen(this.o.socketPath, () => resolve());
    });
    fs.chmodSync(this.o.socketPath, 0o600);
    if (this.identity.cluster && !this.locked) await this.startClusterRuntime();
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
      this.listener = new ControlListener(this.sec.serverOptions(), {
        raft: () => this.manager?.transport,
        admitRaft: (sock) => {
          // Raft is judged by the certificate alone (manager, this cluster, not removed), not by
          // this manager's store: a manager that is catching up (or just joined, with an empty
          // store) must accept the leader's stream to learn who the members are. Raft membership
          // itself keeps demoted managers out.
          const ctx = this.authzContext(false);
          const peer = identify(sock, ctx);
          const ok = authorize(peer, 'manager', ctx);
          return ok.ok && peer.kind === 'node' ? { ok: true, nodeId: peer.info.nodeId } : { ok: false, reason: ok.ok ? 'no certificate' : ok.reason };
        },
        peerId: (sock) => (sock.getPeerCertificate()?.subject as unknown as { CN?: string } | undefined)?.CN,
        refused: (remote, reason) => this.logRefusal(remote, reason),
      }, this.router.server('remote'));
      await this.listener.listen(host, port);
    }
    if (c.role === 'manager' && !this.manager) this.startManager();
    this.watchCluster();
    this.scheduleRenewal();
    if (this.manager && !this.monitorTimer) this.monitorTimer = setInterval(() => void this.monitorNodes(), MONITOR_MS);
    if (this.manager && !this.orch) {
      this.orch = new Orchestration(this.manager, this.log);
      this.orch.start();
    }
    this.dnsFeed ??= new DnsFeed(this.log, this.o.dnsUpstreams);
    this.mesh ??= new RoutingMesh(this.o.lbBackend ?? 'auto', this.log);
    if (!this.networking) {
      this.networking = new NodeNetworking({
        dns: this.dnsFeed,
        mesh: this.mesh,
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
        drainTask: (t) => net.drain(t),
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
    // Stopping without leaving: the networking stops first, so that the agent closing its runtimes
    // (no tasks visible any more) cannot trigger a pass that would tear the dataplane down.
    if (!graceful) this.networking?.close();
    if (this.agent) {
      if (graceful) await this.agent.removeAll();
      await this.agent.close();
    }
    this.agent = undefined;
    if (graceful) this.networking?.teardown();
    this.networking = undefined;
    await this.dnsFeed?.close();
    this.dnsFeed = undefined;
    this.mesh = undefined;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    this.heartbeatTimer = undefined;
    this.monitorTimer = undefined;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.unwatchCluster?.();
    this.unwatchCluster = undefined;
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
    if (this.locked) throw new ApiError(503, 'locked', 'this manager is locked (autolock is on and it restarted): run `meshctl swarm unlock` and give it the unlock key');
    if (!this.manager) throw new ApiError(503, 'not-manager', 'this node is a worker: run the command on a manager (use the manager\'s own socket)');
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
          return await call<T>(this.sec.managerTarget(host, port, `tcp://${addr}`), method, apiPath, body, Math.max(1000, deadline - Date.now()));
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

  /** Manager: a task's logs, from the node that runs (or ran) it. */
  async taskLogs(nodeId: string, taskId: string, tail?: number): Promise<string> {
    if (nodeId === this.identity.nodeId) {
      if (!this.agent) throw new ApiError(503, 'no-agent', 'this node runs no agent');
      return this.agent.logs(taskId, tail);
    }
    const n = this.requireManager().store.get('node', nodeId);
    if (!n) throw new ApiError(404, 'not-found', `node ${nodeId} is gone`);
    const [host, port] = splitHostPort(n.addr);
    const r = await call<{ logs: string }>(this.sec.nodeTarget(host, port, n.addr, n.id), 'POST', `/v1/agent/tasks/${encodeURIComponent(taskId)}/logs`, tail !== undefined ? { tail } : {}, 10_000);
    return r.logs;
  }

  static toApiError(e: unknown): unknown {
    if (e instanceof ManagerError) {
      const status = e.code === 'no-quorum' ? 503 : e.code === 'conflict' || e.code === 'exists' ? 409 : e.code === 'not-found' ? 404 : 400;
      return new ApiError(status, e.code, e.message);
    }
    return e;
  }

  // ---- identity, authorization, renewal, autolock ---------------------------------------------------

  /** What the authorization of a remote peer needs to know about this cluster now. */
  authzContext(useStoreRoles = true): AuthzContext {
    const m = this.manager;
    const removed = m ? (m.store.list('cluster')[0]?.removedNodes ?? {}) : this.removedCache;
    return {
      clusterId: this.identity.cluster?.clusterId ?? '',
      removed: (id) => removed[id],
      // a node the store does not know (yet) is judged by its certificate; removal is the list's job
      ...(m && useStoreRoles ? { storeRole: (id: string) => m.store.get('node', id)?.role } : {}),
    };
  }

  /** Router hook: judges the caller's certificate for this request (every request, not per connection). */
  private authorizeRemote(raw: http.IncomingMessage, access: Access, apiPath: string): NodeCertInfo | undefined {
    const sock = raw.socket as tls.TLSSocket;
    if (!this.identity.cluster || typeof sock.getPeerCertificate !== 'function') throw new ApiError(503, 'not-in-cluster', 'this node is not part of a cluster');
    const ctx = this.authzContext();
    const peer = identify(sock, ctx);
    const ok = authorize(peer, access, ctx);
    if (!ok.ok) {
      this.logRefusal(`${sock.remoteAddress ?? '?'}`, `${raw.method ?? ''} ${apiPath} refused: ${ok.reason}`);
      throw new ApiError(ok.status, ok.status === 401 ? 'unauthenticated' : 'forbidden', ok.reason);
    }
    return peer.kind === 'node' ? peer.info : undefined;
  }

  /** Logs a refused peer, at most once per 10 s for the same address and reason. */
  logRefusal(remote: string, reason: string): void {
    const key = `${remote.replace(/:\d+$/, '')} ${reason}`;
    const now = Date.now();
    if ((this.refusalsLogged.get(key) ?? 0) > now - 10_000) return;
    if (this.refusalsLogged.size > 1000) this.refusalsLogged.clear();
    this.refusalsLogged.set(key, now);
    this.log(`security: refused ${remote}: ${reason}`);
  }

  /** The unlock key when autolock is on (managers; workers never seal their keys). */
  private currentUnlockKey(): string | undefined {
    if (this.identity.cluster?.role !== 'manager') return undefined;
    return this.manager?.store.list('cluster')[0]?.secrets?.unlockKey;
  }

  /**
   * Managers follow the cluster object: the key file is re-sealed when autolock is turned on or off
   * or the unlock key rotates, and open connections of nodes that were just removed are cut.
   */
  private watchCluster(): void {
    const m = this.manager;
    if (!m || this.unwatchCluster) return;
    const sync = (): void => {
      const c = m.store.list('cluster')[0];
      if (!c) return;
      try {
        if (this.sec.reseal(c.secrets?.unlockKey)) this.log(c.secrets?.unlockKey ? 'autolock: this manager\'s keys are now sealed with the unlock key' : 'autolock is off: this manager\'s keys are no longer sealed');
      } catch (e) {
        this.log(`autolock: could not re-seal the key file: ${(e as Error).message}`);
      }
      for (const id of Object.keys(c.removedNodes ?? {})) {
        const n = this.listener?.revoke(id) ?? 0;
        if (n) this.log(`security: closed ${n} connections of removed node ${id}`);
      }
    };
    this.unwatchCluster = m.store.watch(sync, ['cluster']);
    sync();
  }

  /** Arms the renewal timer for this node's certificate (see renewAt in control/ca/pki.ts). */
  private scheduleRenewal(delayMs?: number): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const wait = delayMs ?? Math.max(200, Math.min(this.sec.renewAtMs - Date.now(), 5000));
    this.renewTimer = setTimeout(() => void this.renewalCheck(), wait);
    this.renewTimer.unref();
  }

  private async renewalCheck(): Promise<void> {
    this.renewTimer = undefined;
    const c = this.identity.cluster;
    const creds = this.sec.creds;
    if (!c || !creds) return;
    const now = Date.now();
    if (now > creds.info.notAfter.getTime()) {
      this.logRefusal('self', `this node's certificate expired at ${creds.info.notAfter.toISOString()}: managers refuse it, so it cannot renew it; run \`meshctl swarm leave\` and join again with a token`);
      this.scheduleRenewal(10_000);
      return;
    }
    // a shorter --cert-expiry applies at once: a certificate that outlives the new lifetime is renewed
    const expiry = this.manager?.store.list('cluster')[0]?.spec.certExpiryMs ?? this.certExpiryMs;
    const outlives = expiry !== undefined && creds.info.notAfter.getTime() - now > expiry + 5000;
    const due = now >= this.sec.renewAtMs ? 'expiry' : creds.info.role !== c.role ? `role change to ${c.role}` : outlives ? 'the cluster\'s certificate expiry was shortened' : undefined;
    if (!due) return this.scheduleRenewal();
    try {
      await this.renewCertificate(due);
    } catch (e) {
      this.log(`certificate renewal (${due}) failed: ${(e as Error).message}; retrying`);
      this.scheduleRenewal(1000 + Math.random() * 2000);
    }
  }

  /** Gets a new certificate (new key, CSR) from the leader and switches every TLS use to it. */
  renewCertificate(reason: string): Promise<void> {
    this.renewing ??= this.doRenew(reason).finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async doRenew(reason: string): Promise<void> {
    const c = this.identity.cluster;
    const creds = this.sec.creds;
    if (!c || !creds) return;
    const req = await this.sec.newRequest(this.identity.nodeId);
    let r: { cert: string; caCert: string } | undefined;
    if (this.manager) {
      r = await this.onLeader('POST', '/v1/ca/renew', { csr: req.csr, nodeId: this.identity.nodeId }, () => this.renewFor(this.identity.nodeId, req.csr), 10_000);
    } else {
      let last: unknown;
      for (const addr of Object.values(c.managers)) {
        const [host, port] = splitHostPort(addr);
        try {
          r = await call<{ cert: string; caCert: string }>(this.sec.managerTarget(host, port, addr), 'POST', '/v1/ca/renew', { csr: req.csr }, 10_000);
          break;
        } catch (e) {
          last = e;
        }
      }
      if (!r) throw last instanceof Error ? last : new Error('no manager to renew with');
    }
    const info = await this.sec.install(r.caCert, r.cert, req.key, this.currentUnlockKey());
    this.log(`certificate renewed (${reason}): ${info.role}, serial ${info.serial}, valid until ${info.notAfter.toISOString()}`);
    this.scheduleRenewal();
  }

  /** `swarm unlock`: opens the sealed keys with the unlock key and starts the manager. */
  async unlock(unlockKey: string): Promise<{ unlocked: boolean }> {
    return this.exclusive(async () => {
      if (!this.locked) throw new ApiError(409, 'not-locked', 'this node is not locked');
      try {
        this.sec.unlock(unlockKey);
      } catch (e) {
        if (e instanceof LockedError) {
          this.log(`unlock refused: ${e.message}`);
          throw new ApiError(400, 'invalid-unlock-key', e.message);
        }
        throw e;
      }
      this.log('unlocked: starting the manager');
      await this.startClusterRuntime();
      return { unlocked: true };
    });
  }

  // ---- swarm init / join / leave ---------------------------------------------------------------------

  async init(opts: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; heartbeatPeriodMs?: number }): Promise<{ clusterId: string; nodeId: string }> {
    return this.exclusive(async () => {
      if (opts.forceNewCluster) return this.forceNew();
      if (this.identity.cluster) throw new ApiError(409, 'already-in-cluster', `this node is already part of cluster ${this.identity.cluster.clusterId} (as a ${this.identity.cluster.role}); \`meshctl swarm leave\` first`);
      const { listenAddr, advertiseAddr } = addrs(opts);
      const clusterId = newId();
      // The root CA, then this node's own certificate from it (a CSR like any other node's).
      const ca = await createRootCA(clusterId);
      const req = await this.sec.newRequest(this.identity.nodeId);
      const cert = await issueNodeCert(ca, req.csr, { nodeId: this.identity.nodeId, role: 'manager', clusterId }, DEFAULT_CERT_EXPIRY_MS);
      this.sec.clear();
      await this.sec.install(ca.cert, cert, req.key);
      this.identity.cluster = { clusterId, role: 'manager', advertiseAddr, listenAddr, managers: {} };
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      // Bootstrap a one-member Raft group with ourselves.
      this.startManager({ [this.identity.nodeId]: advertiseAddr });
      this.saveIdentity();
      await this.startClusterRuntime();
      await sodiumReady();
      const cluster: ClusterObject = {
        id: clusterId,
        name: 'default',
        gossip: { keys: [Buffer.from(generateKey()).toString('base64')], primary: 0, rotatedAt: new Date().toISOString() },
        spec: { heartbeatPeriodMs: opts.heartbeatPeriodMs ?? 1000, heartbeatGrace: 3, electionTickMs: this.o.electionMs ?? 1000, heartbeatTickMs: this.o.raftHeartbeatMs ?? 100, gossipKeyRotationMs: 12 * 3600_000, certExpiryMs: DEFAULT_CERT_EXPIRY_MS },
        secrets: { tokens: { worker: newToken(ca.cert), manager: newToken(ca.cert) }, ca },
        removedNodes: {},
      };
      await this.requireManager().propose([
        { op: 'create', kind: 'cluster', object: cluster },
        { op: 'create', kind: 'node', object: this.nodeObject('manager', advertiseAddr) },
        // The routing mesh's network, as Swarm makes it at init (10.255.0.0/16 unless configured).
        { op: 'create', kind: 'network', object: { id: newId(), spec: { name: 'ingress', driver: 'overlay', attachable: false, encrypted: false, labels: {}, ingress: true } } },
      ], 10_000);
      this.log(`swarm initialized: cluster ${clusterId}, this node (${this.identity.nodeId}) is the leader`);
      return { clusterId, nodeId: this.identity.nodeId };
    });
  }

  /** Starts this node's manager (Raft + store), its WAL sealed with the node's data key. */
  private startManager(bootstrap?: Record<string, string>): void {
    const c = this.identity.cluster!;
    this.manager = new Manager({
      id: this.identity.nodeId,
      stateDir: this.o.stateDir,
      addr: c.advertiseAddr,
      ...(bootstrap ? { bootstrap } : { peers: c.managers }),
      tickMs: this.o.tickMs ?? 100,
      heartbeatMs: this.o.raftHeartbeatMs ?? 100,
      electionMs: this.o.electionMs ?? 1000,
      log: this.log,
      cipher: this.sec.cipher(),
      dial: this.sec.dialRaft,
    });
    this.manager.start();
  }

  private nodeObject(role: 'manager' | 'worker', addr: string, hostname = this.identity.hostname, id = this.identity.nodeId): NodeObject {
    return { id, hostname, role, availability: 'active', labels: {}, addr, state: 'ready', ...(role === 'manager' ? { manager: { raftAddr: addr } } : {}) };
  }

  private async forceNew(): Promise<{ clusterId: string; nodeId: string }> {
    const c = this.identity.cluster;
    if (!c || c.role !== 'manager') throw new ApiError(400, 'not-manager', '--force-new-cluster needs a node that was a manager, with its Raft data');
    await this.stopClusterRuntime();
    const r = forceNewCluster(this.o.stateDir, this.identity.nodeId, c.advertiseAddr, this.sec.cipher());
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
      const display = `tcp://${remote}`;
      let reply: JoinReply;
      const req = await this.sec.newRequest(this.identity.nodeId);
      try {
        // pin the root CA by the token's digest, then talk only to managers it certified
        const { caCert, clusterId } = await fetchPinnedRoot(host, port, display, parseToken(opts.token).digest);
        reply = await call<JoinReply>(pinnedTarget(host, port, display, caCert, clusterId), 'POST', '/v1/cluster/join', { token: opts.token, nodeId: this.identity.nodeId, hostname: this.identity.hostname, addr: advertiseAddr, csr: req.csr });
        if (reply.caCert !== caCert) throw new JoinError(`the manager at ${display} answered with another root CA than the one the token pins`, 'wrong-ca');
      } catch (e) {
        const ce = e as { status?: number; code?: string; message: string };
        this.log(`join via ${remote} failed: ${ce.message}`);
        throw new ApiError(ce.status && ce.status >= 400 ? ce.status : e instanceof JoinError ? 400 : 502, ce.code ?? 'join-failed', `join via ${remote} failed: ${ce.message}`);
      }
      this.sec.clear();
      const info = await this.sec.install(reply.caCert, reply.cert, req.key);
      if (info.role !== reply.role || info.nodeId !== this.identity.nodeId || info.clusterId !== reply.clusterId) throw new ApiError(502, 'bad-certificate', `the manager at ${remote} issued a certificate for ${info.nodeId} as a ${info.role} of ${info.clusterId}, not what was asked`);
      // the token is not kept: from now on the certificate is this node's credential
      this.identity.cluster = { clusterId: reply.clusterId, role: reply.role, advertiseAddr, listenAddr, managers: reply.managers };
      if (reply.role === 'manager') fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      this.saveIdentity();
      await this.startClusterRuntime();
      if (reply.role === 'manager') {
        // The leader adds us as a learner and promotes us once our log has caught up.
        await call(this.sec.managerTarget(host, port, display), 'POST', '/v1/cluster/add-manager', { nodeId: this.identity.nodeId, addr: advertiseAddr }, 30_000);
      }
      this.log(`joined cluster ${reply.clusterId} as a ${reply.role} (certificate serial ${info.serial}, valid until ${info.notAfter.toISOString()})`);
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
      this.sec.clear();
      this.saveIdentity();
      this.log(`left cluster ${id}`);
      return { left: id };
    });
  }

  /** Leader side of a join: checks the token, records the node, tells it who the managers are. */
  async acceptJoin(req: { token: string; nodeId: string; hostname: string; addr: string; csr: string }): Promise<JoinReply> {
    const m = this.requireManager();
    const cluster = this.cluster();
    const secrets = this.secrets();
    let role: TokenRole;
    try {
      role = checkToken(req.token, secrets.ca.cert, secrets.tokens);
    } catch (e) {
      this.log(`join refused for ${req.hostname} (${req.addr}): ${(e as Error).message}`);
      throw new ApiError(401, 'invalid-token', (e as Error).message);
    }
    // sign before recording the node: a bad CSR must not leave a node object behind
    const cert = await this.issue(req.nodeId, role, req.csr);
    const existing = m.store.get('node', req.nodeId);
    const obj = this.nodeObject(role, req.addr, req.hostname, req.nodeId);
    await m.propose([existing ? { op: 'update', kind: 'node', object: { ...obj, labels: existing.labels, availability: existing.availability } } : { op: 'create', kind: 'node', object: obj }]);
    this.heard(req.nodeId);
    this.log(`node ${req.nodeId} (${req.hostname}, ${req.addr}) joined as a ${role}`);
    return { clusterId: cluster.id, role, managers: this.managerAddrs(), cert, caCert: secrets.ca.cert };
  }

  /** Leader: signs a node certificate for a CSR with the cluster's current expiry. */
  async issue(nodeId: string, role: TokenRole, csr: string): Promise<string> {
    const c = this.cluster();
    const secrets = this.secrets();
    try {
      return await issueNodeCert(secrets.ca, csr, { nodeId, role, clusterId: c.id }, c.spec.certExpiryMs ?? DEFAULT_CERT_EXPIRY_MS);
    } catch (e) {
      if (e instanceof PkiError) throw new ApiError(400, 'bad-csr', e.message);
      throw e;
    }
  }

  /** Leader: a node renews its certificate (or asks for one matching its new role). */
  async renewFor(nodeId: string, csr: string): Promise<{ cert: string; caCert: string }> {
    const n = this.requireManager().store.get('node', nodeId);
    if (!n) throw new ApiError(403, 'unknown-node', `node ${nodeId} is not a member of this cluster: it cannot renew its certificate`);
    // the role is the store's, not the old certificate's: this is how promotion and demotion reach
    // the certificate
    const cert = await this.issue(nodeId, n.role, csr);
    this.log(`issued a renewed ${n.role} certificate to ${n.hostname} (${n.id})`);
    return { cert, caCert: this.secrets().ca.cert };
  }

  managerAddrs(): Record<string, string> {
    return this.requireManager().status().members;
  }

  // ---- node liveness ------------------------------------------------------------------------------

  /** The cluster's period: from the store on a manager, from the last session reply on a worker. */
  heartbeatPeriod(): number {
    return this.manager?.store.list('cluster')[0]?.spec.heartbeatPeriodMs ?? this.heartbeatPeriodMs ?? 1000;
  }

  // The agent's session with the dispatcher: a long poll (held by the leader until this node's
  // assignments change, or one heartbeat period) that is also the heartbeat. Reports go out at once
  // in their own short call.
  private startHeartbeats(): void {
    if (this.heartbeatTimer) return;
    const beat = async (): Promise<void> => {
      if (!this.identity.cluster) return;
      const period = this.heartbeatPeriod();
      let ok = false;
      try {
        ok = await this.session([], period);
      } catch (e) {
        // the next call tries another manager; a refused certificate is worth saying (once in a while)
        const ce = e as { status?: number; message: string };
        if (ce.status === 401 || ce.status === 403) this.logRefusal('by the managers', `this node's session was refused: ${ce.message}`);
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
    if (reply.removed) this.removedCache = reply.removed;
    if (reply.certExpiryMs) this.certExpiryMs = reply.certExpiryMs;
    if (reply.heartbeatPeriodMs) this.heartbeatPeriodMs = reply.heartbeatPeriodMs;
    if (reply.role && reply.role !== c.role) await this.exclusive(() => this.changeRole(reply));
    if (reply.gossip && this.gossip) await this.gossip.ensure(reply.gossip, gossipSeeds(c.managers, this.o.gossipPort));
    for (const e of reply.errors ?? []) this.log(`dispatcher: ${e}`);
    if (reply.tasks && this.agent) {
      this.knownVersion = reply.version ?? '';
      await this.agent.start(); // adoption first: the networking pass needs to know what runs here
      this.networking?.update({ tasks: reply.tasks, networks: reply.networks ?? [], services: reply.services ?? {}, published: reply.published ?? [], downNodes: reply.downNodes ?? [], ...(reply.ingressAddr ? { ingressAddr: reply.ingressAddr } : {}) });
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
      return call(this.sec.managerTarget(host, port, addr), 'POST', '/v1/dispatcher/session', body, timeout);
    }
    const list = Object.values(c.managers);
    if (!list.length) return undefined;
    const addr = list[this.hbIndex % list.length]!;
    const [host, port] = splitHostPort(addr);
    try {
      return await call(this.sec.managerTarget(host, port, addr), 'POST', '/v1/dispatcher/session', body, timeout);
    } catch (e) {
      this.hbIndex++; // fail over to the next manager
      throw e;
    }
  }

  /** A call to the managers from this node (any manager; it forwards to the leader), over mutual TLS. */
  async callManagers<T>(method: string, apiPath: string, body: unknown, timeoutMs = 10_000): Promise<T> {
    const c = this.identity.cluster;
    if (!c) throw new ApiError(400, 'not-in-cluster', 'this node is not part of a cluster (meshctl swarm join first)');
    const list = Object.values(c.managers);
    let last: unknown;
    for (let i = 0; i < list.length; i++) {
      const addr = list[(this.hbIndex + i) % list.length]!;
      const [host, port] = splitHostPort(addr);
      try {
        return await call<T>(this.sec.managerTarget(host, port, addr), method, apiPath, body, timeoutMs);
      } catch (e) {
        last = e;
        // the manager answered (with an error): pass its status and words on
        if (e instanceof ClientError && e.status > 0) throw new ApiError(e.status, e.code, e.message);
      }
    }
    throw last ?? new ApiError(503, 'no-manager', 'no manager is known to this node');
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
        this.heard(body.nodeId);
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
      this.log('promoted: becoming a manager');
      // a manager certificate first: without it other managers refuse our Raft streams
      await this.renewCertificate('promotion');
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      c.role = 'manager';
      this.saveIdentity();
      await this.startClusterRuntime();
      const leader = Object.values(reply.managers)[0];
      const target = leader ? splitHostPort(leader) : undefined;
      if (target) await call(this.sec.managerTarget(target[0], target[1], leader!), 'POST', '/v1/cluster/add-manager', { nodeId: this.identity.nodeId, addr: c.advertiseAddr }, 30_000);
    } else {
      this.log('demoted: becoming a worker');
      this.orch?.stop();
      this.orch = undefined;
      this.manager?.stop();
      this.manager = undefined;
      if (this.monitorTimer) clearInterval(this.monitorTimer);
      this.monitorTimer = undefined;
      this.unwatchCluster?.();
      this.unwatchCluster = undefined;
      fs.rmSync(path.join(this.o.stateDir, 'raft'), { recursive: true, force: true });
      c.role = 'worker';
      this.saveIdentity();
      // a worker keeps no sealed Raft data: its key file is plain again (autolock is for managers)
      this.sec.reseal(undefined);
      await this.renewCertificate('demotion').catch((e: Error) => this.log(`demotion: could not get a worker certificate yet (${e.message}); retrying with the renewal timer`));
    }
  }

  /** Leader: note a heartbeat; tells the node the managers to fail over to and its current role. */
  recordHeartbeat(nodeId: string, keys?: { ids: string[]; primary: string }): HeartbeatReply {
    this.heard(nodeId);
    if (keys) this.nodeKeys.set(nodeId, keys);
    const n = this.requireManager().store.get('node', nodeId);
    const g = this.requireManager().store.list('cluster')[0]?.gossip;
    const reply: HeartbeatReply = { managers: this.managerAddrs(), ...(g ? { gossip: g } : {}) };
    if (n) reply.role = n.role;
    const cl = this.requireManager().store.list('cluster')[0];
    if (cl?.removedNodes) reply.removed = cl.removedNodes;
    if (cl?.spec.certExpiryMs) reply.certExpiryMs = cl.spec.certExpiryMs;
    if (cl?.spec.heartbeatPeriodMs) reply.heartbeatPeriodMs = cl.spec.heartbeatPeriodMs;
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

  async updateCluster(fn: (c: ClusterObject) => ClusterObject): Promise<void> {
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

  private heard(nodeId: string): void {
    this.lastSeen.set(nodeId, Date.now());
    this.silence.heard(nodeId);
  }

  /** Leader: marks nodes down after missed heartbeats, and ready again when they return. */
  private async monitorNodes(): Promise<void> {
    const m = this.manager;
    if (!m) return;
    if (!m.isLeader()) {
      this.leaderSince = 0;
      return;
    }
    const now = Date.now();
    if (!this.leaderSince) {
      // A new leader has no heartbeat history: give every node one grace period from now.
      this.leaderSince = now;
      this.silence.reset();
      for (const n of m.store.list('node')) if (!this.lastSeen.has(n.id)) this.lastSeen.set(n.id, now);
    }
    // Every tick counts, also while a previous round still waits for its proposals.
    this.silence.tick(now, m.store.list('node').map((n) => n.id));
    for (const id of this.openSessions.keys()) this.silence.heard(id); // held: connected, so alive
    if (this.monitoring) return;
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
        const silent = this.silence.silentFor(n.id);
        const alive = silent <= deadline;
        if (alive && n.state !== 'ready') {
          await m.propose([{ op: 'update', kind: 'node', object: { ...stripMeta(n), state: 'ready' }, version: n.meta.version }]).catch(() => undefined);
        } else if (!alive && n.state === 'ready') {
          this.log(`node ${n.id} (${n.hostname}) missed heartbeats for ${silent} ms: marking it down`);
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
  /** removed nodes, so that workers too refuse their certificates (manager-to-agent calls) */
  removed?: Record<string, { at: string; until: string }>;
  /** the cluster's certificate lifetime: a node whose certificate outlives it renews early */
  certExpiryMs?: number;
  /** the cluster's dispatcher heartbeat period: how long an agent's session asks to be held */
  heartbeatPeriodMs?: number;
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
  published?: PublishedService[];
  /** nodes the managers marked down: their endpoints take no traffic */
  downNodes?: string[];
  version?: string;
  serviceNames?: Record<string, string>;
  errors?: string[];
}

export interface JoinReply {
  clusterId: string;
  role: TokenRole;
  managers: Record<string, string>;
  /** PEM: the node's certificate, signed from its CSR, and the root CA */
  cert: string;
  caCert: string;
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
