// The daemon's API. Local routes serve meshctl on the root-only unix socket; remote ones also serve
// other nodes on 2377 (join, heartbeats, requests forwarded to the leader).
import { z } from 'zod';
import { ApiError } from '../api/http.js';
import { newId, newToken } from './tokens.js';
import { Daemon, stripMeta } from './daemon.js';
import { ManagerError } from '../manager/manager.js';
import { gossipKeyIds } from './gossip.js';
import { registerServiceRoutes } from './service-routes.js';
import { registerNetworkRoutes } from './network-routes.js';
import { registerAttachmentRoutes } from './attachments.js';
import { parseUpstream } from './dns-feed.js';
import { debugDataplane } from './debug-dataplane.js';
import type { NodeObject, Stored } from '../store/objects.js';
import { DEFAULT_CERT_EXPIRY_MS, MIN_CERT_EXPIRY_MS, ROOT_VALIDITY_MS } from '../ca/pki.js';
import { registerSecurityRoutes } from './security-routes.js';
import type { TransportStats } from '../transport/raft-peers.js';

const addr = z.string().min(1).max(300);

const InitBody = z.object({ advertiseAddr: addr.optional(), listenAddr: addr.optional(), forceNewCluster: z.boolean().optional(), heartbeatPeriodMs: z.number().int().min(100).max(60_000).optional() }).strict();
const JoinBody = z.object({ remoteAddr: addr, token: z.string().min(1), advertiseAddr: addr.optional(), listenAddr: addr.optional() }).strict();
const LeaveBody = z.object({ force: z.boolean().optional() }).strict();
const pem = z.string().min(1).max(16_384);
const ClusterJoinBody = z.object({ token: z.string(), nodeId: z.string().regex(/^[0-9a-z]{25}$/), hostname: z.string().min(1).max(255), addr, csr: pem }).strict();
const AddManagerBody = z.object({ nodeId: z.string(), addr }).strict();
const KeyState = z.object({ ids: z.array(z.string().max(16)).max(3), primary: z.string().max(16) }).strict();
const labelKey = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'label keys are letters, digits, . _ - (at most 128)');
const NodeUpdateBody = z
  .object({
    availability: z.enum(['active', 'pause', 'drain']).optional(),
    role: z.enum(['manager', 'worker']).optional(),
    labelAdd: z.record(labelKey, z.string().max(1024)).optional(),
    labelRm: z.array(labelKey).optional(),
  })
  .strict();
const NodeRmBody = z.object({ force: z.boolean().optional() }).strict();

/** GET /v1/info: this node as it sees itself (any node; raft only on managers). */
export interface NodeInfo {
  nodeId: string;
  hostname: string;
  locked: boolean;
  certificate: { role: string; serial: string; notBefore: string; notAfter: string } | null;
  /** heartbeatPeriodMs: the period this node beats at (a worker learns it from its session replies) */
  cluster: { id: string; role: string; advertiseAddr: string; managers: Record<string, string>; heartbeatPeriodMs: number } | null;
  raft: {
    leader: string;
    role: string;
    term: number;
    commit: number;
    applied: number;
    voters: string[];
    learners: string[];
    reachable: Record<string, boolean>;
    stats: TransportStats & { fsyncs: number };
  } | null;
}

export interface NodeView {
  id: string;
  hostname: string;
  status: string;
  availability: string;
  managerStatus: string;
  role: string;
  addr: string;
  labels: Record<string, string>;
  self: boolean;
  version: number;
}

function findNode(d: Daemon, ref: string): Stored<'node'> {
  const nodes = d.requireManager().store.list('node');
  const exact = nodes.find((n) => n.id === ref) ?? nodes.filter((n) => n.hostname === ref);
  if (!Array.isArray(exact)) return exact;
  if (exact.length === 1) return exact[0]!;
  if (exact.length > 1) throw new ApiError(409, 'ambiguous', `hostname "${ref}" matches ${exact.length} nodes: use the node ID`);
  const prefixed = nodes.filter((n) => n.id.startsWith(ref));
  if (prefixed.length === 1) return prefixed[0]!;
  throw new ApiError(404, 'not-found', `no node "${ref}" (meshctl node ls lists them)`);
}

function view(d: Daemon, n: Stored<'node'>): NodeView {
  const st = d.requireManager().status();
  let managerStatus = '';
  if (n.role === 'manager') {
    if (st.leader === n.id) managerStatus = 'Leader';
    else if (!st.voters.includes(n.id) && !st.learners.includes(n.id)) managerStatus = 'Unreachable';
    else if (st.role === 'leader') managerStatus = st.reachable[n.id] ? 'Reachable' : 'Unreachable';
    else managerStatus = n.manager?.reachable === false ? 'Unreachable' : 'Reachable';
  }
  return {
    id: n.id,
    hostname: n.hostname,
    status: n.state === 'ready' ? 'Ready' : n.state === 'down' ? 'Down' : 'Unknown',
    availability: n.availability[0]!.toUpperCase() + n.availability.slice(1),
    managerStatus,
    role: n.role,
    addr: n.addr,
    labels: n.labels,
    self: n.id === d.identity.nodeId,
    version: n.meta.version,
  };
}

const wrap = <T>(p: Promise<T>): Promise<T> => p.catch((e: unknown) => Promise.reject(Daemon.toApiError(e)));

export function registerRoutes(d: Daemon): void {
  const r = d.router;
  registerServiceRoutes(d);
  registerNetworkRoutes(d);
  registerAttachmentRoutes(d);

  r.on('GET', '/v1/info', async (): Promise<NodeInfo> => {
    const c = d.identity.cluster;
    const st = d.manager?.status();
    return {
      nodeId: d.identity.nodeId,
      hostname: d.identity.hostname,
      locked: d.locked,
      certificate: d.sec.creds ? { role: d.sec.creds.info.role, serial: d.sec.creds.info.serial, notBefore: d.sec.creds.info.notBefore.toISOString(), notAfter: d.sec.creds.info.notAfter.toISOString() } : null,
      cluster: c ? { id: c.clusterId, role: c.role, advertiseAddr: c.advertiseAddr, managers: c.managers, heartbeatPeriodMs: d.heartbeatPeriod() } : null,
      raft: st ? { leader: st.leader, role: st.role, term: st.term, commit: st.commit, applied: st.applied, voters: st.voters, learners: st.learners, reachable: st.reachable, stats: { ...d.manager!.transport.stats, fsyncs: d.manager!.fsyncs } } : null,
    };
  });

  r.on('POST', '/v1/swarm/init', async (req) => wrap(d.init(InitBody.parse(req.body ?? {}))));
  r.on('POST', '/v1/swarm/join', async (req) => wrap(d.join(JoinBody.parse(req.body))));
  r.on('POST', '/v1/swarm/leave', async (req) => wrap(d.leave(LeaveBody.parse(req.body ?? {}).force ?? false)));

  r.on('GET', '/v1/swarm/join-token/:role', async (req) => {
    const role = z.enum(['worker', 'manager']).parse(req.params.role);
    await wrap(d.requireManager().linearizableRead());
    return { role, token: d.secrets().tokens[role], managers: Object.values(d.managerAddrs()) };
  });

  r.on('POST', '/v1/swarm/join-token/:role/rotate', async (req) => {
    const role = z.enum(['worker', 'manager']).parse(req.params.role);
    const c = d.cluster();
    const secrets = d.secrets();
    const tokens = { ...secrets.tokens, [role]: newToken(secrets.ca.cert) };
    await wrap(d.requireManager().propose([{ op: 'update', kind: 'cluster', object: { ...stripMeta(c), secrets: { ...secrets, tokens } }, version: c.meta.version }]));
    return { role, token: tokens[role] };
  });

  // ---- nodes ----
  r.on('GET', '/v1/nodes', async () => {
    await wrap(d.requireManager().linearizableRead());
    return d.requireManager().store.list('node').map((n) => view(d, n)).sort((a, b) => a.hostname.localeCompare(b.hostname) || a.id.localeCompare(b.id));
  });

  r.on('GET', '/v1/nodes/:id', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    const n = findNode(d, req.params.id!);
    return { ...view(d, n), object: n };
  });

  r.on(
    'POST',
    '/v1/nodes/:id/update',
    async (req) => {
      const change = NodeUpdateBody.parse(req.body ?? {});
      return d.onLeader('POST', req.path, change, () => wrap(updateNode(d, req.params.id!, change)));
    },
    { access: 'manager' },
  );

  r.on(
    'POST',
    '/v1/nodes/:id/rm',
    async (req) => {
      const body = NodeRmBody.parse(req.body ?? {});
      return d.onLeader('POST', req.path, { force: body.force }, () => wrap(removeNode(d, req.params.id!, body.force ?? false)));
    },
    { access: 'manager' },
  );

  r.on(
    'POST',
    '/v1/swarm/spec',
    async (req) => {
      const change = z
        .object({
          heartbeatPeriodMs: z.number().int().min(100).max(60_000).optional(),
          gossipKeyRotationMs: z.number().int().min(60_000).optional(),
          certExpiryMs: z.number().int().min(MIN_CERT_EXPIRY_MS, `the certificate expiry must be at least ${MIN_CERT_EXPIRY_MS / 1000} s`).max(ROOT_VALIDITY_MS).optional(),
        })
        .strict()
        .parse(req.body ?? {});
      return d.onLeader('POST', req.path, change, async () => {
        for (let attempt = 0; ; attempt++) {
          const c = d.cluster();
          try {
            await d.requireManager().propose([{ op: 'update', kind: 'cluster', object: { ...stripMeta(c), spec: { ...c.spec, ...change } }, version: c.meta.version }]);
            return { spec: { ...c.spec, ...change } };
          } catch (e) {
            if (!(e instanceof ManagerError && e.code === 'conflict') || attempt >= 5) throw Daemon.toApiError(e);
          }
        }
      });
    },
    { access: 'manager' },
  );

  // The settings `swarm init` and `swarm update` set (never the secrets).
  r.on(
    'GET',
    '/v1/swarm/spec',
    async () => {
      await wrap(d.requireManager().linearizableRead());
      const c = d.cluster();
      return { id: c.id, spec: c.spec, autolock: !!c.secrets?.unlockKey };
    },
    { access: 'manager' },
  );

  // ---- gossip ----
  r.on(
    'POST',
    '/v1/swarm/rotate-gossip-key',
    async (req) => {
      z.object({}).strict().parse(req.body ?? {});
      return d.onLeader('POST', req.path, {}, async () => gossipKeyIds(await d.rotateGossipKey()), 40_000);
    },
    { access: 'manager' },
  );

  r.on('GET', '/v1/mesh/status', async () => {
    const st = d.gossip?.status();
    if (!st) throw new ApiError(503, 'no-gossip', d.identity.cluster ? 'gossip has not started yet (it starts with the first heartbeat that brings the keys)' : 'this node is not part of a cluster');
    const names = new Map((d.manager?.store.list('node') ?? []).map((n) => [n.id, n.hostname]));
    return {
      ...st,
      self: d.identity.nodeId,
      members: st.members.map((m) => ({ ...m, hostname: names.get(m.name) ?? (m.name === d.identity.nodeId ? d.identity.hostname : '') })),
      overlay: d.networking?.health() ?? [],
      dataplane: d.networking?.stats,
    };
  });

  // The node's embedded DNS: what it holds and where it forwards (local socket only).
  r.on('GET', '/v1/local/dns', async () => {
    if (!d.dnsFeed) throw new ApiError(503, 'no-dns', 'the embedded DNS runs once the node is in a cluster');
    return d.dnsFeed.dns.stats();
  });
  r.on('POST', '/v1/local/dns/upstreams', async (req) => {
    const b = z.object({ upstreams: z.array(z.string().max(64)).max(8) }).strict().parse(req.body);
    if (!d.dnsFeed) throw new ApiError(503, 'no-dns', 'the embedded DNS runs once the node is in a cluster');
    let list;
    try {
      list = b.upstreams.map(parseUpstream);
    } catch (e) {
      throw new ApiError(400, 'invalid', (e as Error).message);
    }
    d.dnsFeed.dns.setUpstreams(list);
    return { upstreams: list };
  });

  r.on('GET', '/v1/local/debug/dataplane/:service', async (req) => {
    if (!d.networking || !d.mesh) throw new ApiError(503, 'no-dataplane', 'the dataplane runs once the node is in a cluster');
    return debugDataplane(d.networking, d.mesh, req.params.service!, d.identity.hostname);
  });

  // Debug access to the gossip tables (the overlay, DNS and LB will be their real writers).
  const TableBody = z.object({ network: z.string().min(1).max(64), table: z.string().min(1).max(64), key: z.string().min(1).max(256), value: z.string().max(1024).optional(), delete: z.boolean().optional() }).strict();
  r.on('POST', '/v1/mesh/tables', async (req) => {
    const b = TableBody.parse(req.body);
    const tables = d.gossip?.tables;
    if (!tables) throw new ApiError(503, 'no-gossip', 'gossip is not running on this node');
    if (!tables.networks().includes(b.network)) tables.joinNetwork(b.network);
    if (b.delete) tables.delete(b.network, b.table, b.key);
    else tables.put(b.network, b.table, b.key, Buffer.from(b.value ?? '', 'utf8'));
    d.gossip?.pump();
    return { ok: true };
  });
  r.on('POST', '/v1/mesh/networks/:network/join', async (req) => {
    const tables = d.gossip?.tables;
    if (!tables) throw new ApiError(503, 'no-gossip', 'gossip is not running on this node');
    tables.joinNetwork(req.params.network!);
    d.gossip?.pump();
    return { ok: true };
  });
  r.on('GET', '/v1/mesh/tables/:network', async (req) => {
    const tables = d.gossip?.tables;
    if (!tables) throw new ApiError(503, 'no-gossip', 'gossip is not running on this node');
    return tables.entries(req.params.network!).filter((e) => !e.deleted).map((e) => ({ table: e.table, key: e.key, value: Buffer.from(e.value).toString('utf8'), owner: e.owner, version: e.version }));
  });

  // ---- configs ----
  r.on(
    'PUT',
    '/v1/configs/:name',
    async (req) => {
      const name = ConfigName.parse(req.params.name);
      const put = ConfigBody.parse(req.body ?? {});
      return d.onLeader('PUT', req.path, put, () => wrap(putConfig(d, name, put)));
    },
    { access: 'manager' },
  );

  r.on('GET', '/v1/configs', async () => {
    await wrap(d.requireManager().linearizableRead());
    return d.requireManager().store.list('config').map((c) => ({ id: c.id, name: c.name, size: Buffer.from(c.data, 'base64').length, labels: c.labels, createdAt: c.meta.createdAt, updatedAt: c.meta.updatedAt, version: c.meta.version }));
  });

  r.on('GET', '/v1/configs/:name', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    return findConfig(d, req.params.name!);
  });

  r.on(
    'POST',
    '/v1/configs/:name/rm',
    async (req) => {
      z.object({}).strict().parse(req.body ?? {});
      return d.onLeader('POST', req.path, {}, async () => {
        const c = findConfig(d, req.params.name!);
        await wrap(d.requireManager().propose([{ op: 'delete', kind: 'config', id: c.id }]));
        return { removed: c.name };
      });
    },
    { access: 'manager' },
  );

  // ---- node to manager ----
  r.on(
    'POST',
    '/v1/cluster/join',
    async (req) => {
      const body = ClusterJoinBody.parse(req.body);
      return d.onLeader('POST', req.path, body, () => wrap(d.acceptJoin(body)));
    },
    // the one call (with the root CA) open to nodes without a certificate: the token is the credential
    { access: 'anonymous' },
  );

  r.on(
    'POST',
    '/v1/cluster/add-manager',
    async (req) => {
      const body = AddManagerBody.parse(req.body);
      return d.onLeader('POST', req.path, body, async () => {
        await wrap(d.requireManager().addManager(body.nodeId, body.addr, 20_000));
        return { ok: true };
      });
    },
    { access: 'manager' },
  );

  const Report = z.object({ taskId: z.string().max(64), state: z.enum(['accepted', 'preparing', 'starting', 'running', 'complete', 'failed', 'shutdown', 'rejected']), message: z.string().max(2000).optional(), exitCode: z.number().int().optional(), err: z.string().max(4000).optional() }).strict();
  const SessionBody = z.object({ nodeId: z.string().max(64), reports: z.array(Report).max(10_000), waitMs: z.number().int().min(0).max(30_000), knownVersion: z.string().max(64), gossip: KeyState.optional() }).strict();
  r.on(
    'POST',
    '/v1/dispatcher/session',
    async (req) => {
      const body = SessionBody.parse(req.body);
      // a worker speaks for itself only; managers forward their agents' sessions to the leader
      if (req.peer && req.peer.role === 'worker' && req.peer.nodeId !== body.nodeId) throw new ApiError(403, 'forbidden', `node ${req.peer.nodeId} cannot hold a session for node ${body.nodeId}`);
      const m = d.requireManager();
      if (!m.store.get('node', body.nodeId)) throw new ApiError(404, 'unknown-node', `node ${body.nodeId} is not part of this cluster (was it removed?)`);
      return d.onLeader('POST', req.path, body, () => d.handleSession(body), body.waitMs + 5000);
    },
    { access: 'node' },
  );

  registerSecurityRoutes(d);

}

const ConfigName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'config names are 1-64 letters, digits, . _ -, starting with a letter or digit');
const ConfigBody = z
  .object({
    data: z.string().max(1 << 20, 'config data is limited to 1 MiB (base64)'),
    labels: z.record(labelKey, z.string().max(1024)).optional(),
    /** create: fail if it exists; update: fail if it does not; default: either */
    mode: z.enum(['create', 'update', 'upsert']).optional(),
  })
  .strict();

function findConfig(d: Daemon, ref: string): Stored<'config'> {
  const store = d.requireManager().store;
  const c = store.byName('config', ref) ?? store.get('config', ref);
  if (!c) throw new ApiError(404, 'not-found', `no config "${ref}" (meshctl config ls lists them)`);
  return c;
}

async function putConfig(d: Daemon, name: string, put: { data: string; labels?: Record<string, string>; mode?: 'create' | 'update' | 'upsert' }): Promise<{ id: string; name: string; version: number }> {
  const m = d.requireManager();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(put.data)) throw new ApiError(400, 'invalid', 'config data must be base64');
  const existing = m.store.byName('config', name);
  const mode = put.mode ?? 'upsert';
  if (existing && mode === 'create') throw new ApiError(409, 'exists', `config "${name}" already exists (use \`meshctl config update\`)`);
  if (!existing && mode === 'update') throw new ApiError(404, 'not-found', `no config "${name}" (use \`meshctl config create\`)`);
  const id = existing?.id ?? newId();
  const object = { id, name, data: put.data, labels: put.labels ?? existing?.labels ?? {} };
  const r = await m.propose([existing ? { op: 'update', kind: 'config', object } : { op: 'create', kind: 'config', object }]);
  return { id, name, version: r.version };
}

async function updateNode(d: Daemon, ref: string, change: { availability?: 'active' | 'pause' | 'drain'; role?: 'manager' | 'worker'; labelAdd?: Record<string, string>; labelRm?: string[] }): Promise<{ id: string; version: number }> {
  const m = d.requireManager();
  const before = findNode(d, ref);
  for (const k of change.labelRm ?? []) {
    if (!(k in before.labels)) throw new ApiError(400, 'invalid', `node ${before.hostname} has no label "${k}"`);
  }
  // Raft membership first (it takes a while); the object is then read fresh, below.
  if (change.role === 'worker' && before.role === 'manager') {
    const voters = m.status().voters.filter((v) => v !== before.id);
    if (voters.length === 0) throw new ApiError(409, 'last-manager', `node ${before.hostname} is the last manager: promote another node first`);
    await m.removeManager(before.id);
  }
  // Read-modify-write with compare-and-set; other writers (the leader's node monitor) may race us.
  for (let attempt = 0; ; attempt++) {
    const n = findNode(d, before.id);
    const next: NodeObject = { ...stripMeta(n), labels: { ...n.labels, ...(change.labelAdd ?? {}) } };
    for (const k of change.labelRm ?? []) delete next.labels[k];
    if (change.availability) next.availability = change.availability;
    if (change.role && change.role !== n.role) {
      next.role = change.role;
      if (change.role === 'worker') delete next.manager;
      else next.manager = { raftAddr: n.addr };
    }
    try {
      const r = await m.propose([{ op: 'update', kind: 'node', object: next, version: n.meta.version }]);
      return { id: n.id, version: r.version };
    } catch (e) {
      if (!(e instanceof ManagerError && e.code === 'conflict') || attempt >= 5) throw e;
    }
  }
}

async function removeNode(d: Daemon, ref: string, force: boolean): Promise<{ removed: string }> {
  const m = d.requireManager();
  const n = findNode(d, ref);
  if (n.id === d.identity.nodeId) throw new ApiError(409, 'self', 'a node cannot remove itself: run `meshctl swarm leave` on it');
  if (n.role === 'manager' && !force) throw new ApiError(409, 'manager', `node ${n.hostname} is a manager: demote it first (meshctl node demote ${n.hostname}), or use --force`);
  if (n.state === 'ready' && !force) throw new ApiError(409, 'live', `node ${n.hostname} is up (status Ready): stop it or make it leave first, or use --force`);
  if (n.role === 'manager') await m.removeManager(n.id);
  // The node object goes and, in the same transaction, the node joins the removed list: from the
  // moment this commits every manager refuses its certificates (control/ca/authz.ts).
  for (let attempt = 0; ; attempt++) {
    const c = d.cluster();
    const now = Date.now();
    const removedNodes = Object.fromEntries(Object.entries(c.removedNodes ?? {}).filter(([, r]) => Date.parse(r.until) > now));
    removedNodes[n.id] = { at: new Date(now).toISOString(), until: new Date(now + (c.spec.certExpiryMs ?? DEFAULT_CERT_EXPIRY_MS)).toISOString() };
    try {
      await m.propose([
        { op: 'delete', kind: 'node', id: n.id },
        { op: 'update', kind: 'cluster', object: { ...stripMeta(c), removedNodes }, version: c.meta.version },
      ]);
      break;
    } catch (e) {
      if (!(e instanceof ManagerError && e.code === 'conflict') || attempt >= 5) throw e;
    }
  }
  d.lastSeen.delete(n.id);
  d.log(`node ${n.hostname} (${n.id}) removed: its certificate is refused from now on`);
  return { removed: n.id };
}
