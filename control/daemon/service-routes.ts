// `service create|ls|ps|inspect|scale|update|rollback|rm` on the API. Writes run on the leader
// (forwarded); reads are linearizable (ReadIndex) on any manager.
import { z, ZodError } from 'zod';
import { ApiError } from '../api/http.js';
import { normalizeServiceSpec, describeSpecError } from '../api/service-spec.js';
import { parseConstraints, ConstraintError } from '../scheduler/index.js';
import { updateServiceSpec, rollbackService, sameTaskSpec } from '../orchestrator/index.js';
import { ManagerError } from '../manager/manager.js';
import { newId } from './tokens.js';
import { checkPorts, DEFAULT_CONFIG } from '../allocator/index.js';
import type { Daemon } from './daemon.js';
import type { ServiceObject, ServiceSpec, Stored } from '../store/objects.js';

export interface ServiceSummary {
  id: string;
  name: string;
  mode: string;
  desired: number;
  running: number;
  /** running tasks made from the current task spec (an update is done when this reaches desired) */
  upToDate: number;
  runtime: string;
  command: string;
  ports: string[];
  updateStatus?: ServiceObject['updateStatus'];
  specVersion: number;
}

export interface TaskRow {
  id: string;
  name: string;
  slot: number;
  node: string;
  nodeId?: string;
  desiredState: string;
  state: string;
  since: string;
  message: string;
  error: string;
  exitCode?: number;
  specVersion: number;
}

function validate(input: unknown): ServiceSpec {
  let spec: ServiceSpec;
  try {
    spec = normalizeServiceSpec(input);
    parseConstraints(spec.task.placement.constraints);
  } catch (e) {
    if (e instanceof ZodError) throw new ApiError(400, 'invalid-spec', describeSpecError(e));
    if (e instanceof ConstraintError) throw new ApiError(400, 'invalid-spec', `task.placement.constraints: ${e.message}`);
    throw e;
  }
  return spec;
}

/** A published port another service owns (or an ingress/host clash) is refused, naming the owner. */
function checkPublished(d: Daemon, candidate: ServiceObject): void {
  if (!candidate.spec.endpoint.ports.length) return;
  const errs = checkPorts(candidate, d.requireManager().store.list('service'), DEFAULT_CONFIG);
  if (errs.length) throw new ApiError(409, 'port-taken', errs.map((e) => e.message).join('; '));
}

/** Network targets become network ids (names are for people; ids survive a rename or re-creation). */
function resolveNetworks(d: Daemon, spec: ServiceSpec): ServiceSpec {
  const nets = d.requireManager().store.list('network');
  const seen = new Set<string>();
  const networks = spec.networks.map((n) => {
    const found = nets.find((x) => x.id === n.target) ?? nets.find((x) => x.spec.name === n.target) ?? nets.filter((x) => x.id.startsWith(n.target))[0];
    if (!found) throw new ApiError(404, 'not-found', `networks: network "${n.target}" not found (meshctl network ls lists them; meshctl network create ${n.target} makes one)`);
    if (found.spec.ingress) throw new ApiError(400, 'invalid-spec', `networks: "${found.spec.name}" is the ingress network; a service joins it by publishing a port in ingress mode, not with --network`);
    if (seen.has(found.id)) throw new ApiError(400, 'invalid-spec', `networks: "${found.spec.name}" is listed twice`);
    seen.add(found.id);
    return { ...n, target: found.id };
  });
  return { ...spec, networks };
}

function findService(d: Daemon, ref: string): Stored<'service'> {
  const all = d.requireManager().store.list('service');
  const s = all.find((x) => x.id === ref) ?? all.find((x) => x.spec.name === ref) ?? all.filter((x) => x.id.startsWith(ref))[0];
  if (!s) throw new ApiError(404, 'not-found', `no service "${ref}" (meshctl service ls lists them)`);
  return s;
}

export function summarize(d: Daemon, s: Stored<'service'>): ServiceSummary {
  const tasks = d.requireManager().store.list('task').filter((t) => t.serviceId === s.id);
  const eligible = d.requireManager().store.list('node').filter((n) => n.state === 'ready' && n.availability !== 'drain').length;
  const sum: ServiceSummary = {
    id: s.id,
    name: s.spec.name,
    mode: s.spec.mode,
    desired: s.spec.mode === 'global' ? tasks.filter((t) => t.desiredState === 'running').length || eligible : s.spec.replicas,
    running: tasks.filter((t) => t.desiredState === 'running' && t.status.state === 'running').length,
    upToDate: tasks.filter((t) => t.desiredState === 'running' && t.status.state === 'running' && sameTaskSpec(t.spec, s.spec.task)).length,
    runtime: s.spec.task.runtime,
    command: s.spec.task.image ?? (s.spec.task.command ?? []).join(' '),
    ports: s.spec.endpoint.ports.map((p) => `*:${p.published}->${p.target}/${p.protocol}${p.mode === 'host' ? ' (host)' : ''}`),
    specVersion: s.specVersion,
  };
  if (s.updateStatus) sum.updateStatus = s.updateStatus;
  return sum;
}

export function taskRows(d: Daemon, s: Stored<'service'>): TaskRow[] {
  const m = d.requireManager();
  const nodes = new Map(m.store.list('node').map((n) => [n.id, n.hostname]));
  return m.store
    .list('task')
    .filter((t) => t.serviceId === s.id)
    .sort((a, b) => a.slot - b.slot || (a.nodeId ?? '').localeCompare(b.nodeId ?? '') || b.createdAt.localeCompare(a.createdAt))
    .map((t) => {
      const row: TaskRow = {
        id: t.id,
        name: `${s.spec.name}.${t.slot || (t.nodeId ?? '').slice(0, 12)}`,
        slot: t.slot,
        node: t.nodeId ? (nodes.get(t.nodeId) ?? t.nodeId) : '',
        desiredState: t.desiredState,
        state: t.status.state,
        since: t.status.timestamp,
        message: t.pendingReason ?? t.status.message,
        error: t.status.err ?? '',
        specVersion: t.specVersion,
      };
      if (t.nodeId) row.nodeId = t.nodeId;
      if (t.status.exitCode !== undefined) row.exitCode = t.status.exitCode;
      return row;
    });
}

export const wrap = <T>(p: Promise<T>): Promise<T> =>
  p.catch((e: unknown) => {
    if (e instanceof ManagerError) {
      throw new ApiError(e.code === 'no-quorum' ? 503 : e.code === 'conflict' || e.code === 'exists' ? 409 : 400, e.code, e.message);
    }
    throw e;
  });

async function casService(d: Daemon, ref: string, change: (s: Stored<'service'>, at: string) => ServiceObject): Promise<{ id: string; version: number }> {
  const m = d.requireManager();
  for (let attempt = 0; ; attempt++) {
    const s = findService(d, ref);
    const at = new Date().toISOString();
    const { meta: _meta, ...next } = { ...change(s, at), meta: undefined };
    try {
      const r = await m.propose([{ op: 'update', kind: 'service', object: next as ServiceObject, version: s.meta.version }]);
      return { id: s.id, version: r.version };
    } catch (e) {
      if (!(e instanceof ManagerError && e.code === 'conflict') || attempt >= 5) throw e;
    }
  }
}

const anyBody = z.object({}).passthrough();

export type RemoteWrite = (method: string, path: string, fn: (req: { params: Record<string, string>; body: Record<string, unknown> }) => Promise<unknown>) => void;

/** A write route: callable remotely (with the cluster key until mutual TLS), run on the leader. */
export function remoteWriter(d: Daemon): RemoteWrite {
  const r = d.router;
  return (method, path, fn) =>
    r.on(
      method,
      path,
      async (req) => {
        const rest = anyBody.parse(req.body ?? {});
        return d.onLeader(method, req.path, rest, () => wrap(fn({ params: req.params, body: rest })), 10_000);
      },
      { access: 'manager' },
    );
}

export function registerServiceRoutes(d: Daemon): void {
  const r = d.router;
  const remoteWrite = remoteWriter(d);

  remoteWrite('POST', '/v1/services', async ({ body }) => {
    const spec = resolveNetworks(d, validate(body.spec));
    const m = d.requireManager();
    if (m.store.list('service').some((s) => s.spec.name === spec.name)) throw new ApiError(409, 'exists', `a service named "${spec.name}" already exists (meshctl service update ${spec.name})`);
    const svc: ServiceObject = { id: newId(), spec, specVersion: 1 };
    checkPublished(d, svc);
    await m.propose([{ op: 'create', kind: 'service', object: svc }]);
    return { id: svc.id, name: spec.name };
  });

  remoteWrite('POST', '/v1/services/:ref/update', async ({ params, body }) => {
    const spec = resolveNetworks(d, validate(body.spec));
    return casService(d, params.ref!, (s, at) => {
      if (spec.name !== s.spec.name) throw new ApiError(400, 'invalid-spec', `name: a service cannot be renamed (${s.spec.name} -> ${spec.name})`);
      checkPublished(d, { ...s, spec });
      // Tasks join the ingress network only when they start: a change in whether the service
      // publishes ingress ports replaces its tasks (as Swarm redeploys on a publish).
      const ingress = (x: ServiceSpec): boolean => x.endpoint.ports.some((p) => p.mode === 'ingress');
      if (ingress(spec) !== ingress(s.spec) && (spec.task.forceUpdate ?? 0) === (s.spec.task.forceUpdate ?? 0)) spec.task = { ...spec.task, forceUpdate: (s.spec.task.forceUpdate ?? 0) + 1 };
      return updateServiceSpec(s, spec, at);
    });
  });

  remoteWrite('POST', '/v1/services/:ref/scale', async ({ params, body }) => {
    const replicas = z.number().int().min(0).max(100_000).parse(body.replicas);
    return casService(d, params.ref!, (s, at) => {
      if (s.spec.mode === 'global') throw new ApiError(400, 'invalid', `service ${s.spec.name} is global: it runs one task per eligible node and cannot be scaled`);
      return updateServiceSpec(s, { ...s.spec, replicas }, at);
    });
  });

  remoteWrite('POST', '/v1/services/:ref/rollback', async ({ params }) =>
    casService(d, params.ref!, (s, at) => {
      if (!s.previousSpec) throw new ApiError(400, 'invalid', `service ${s.spec.name} has no previous spec to roll back to`);
      return rollbackService(s, at);
    }),
  );

  remoteWrite('POST', '/v1/services/:ref/rm', async ({ params }) => {
    const s = findService(d, params.ref!);
    await d.requireManager().propose([{ op: 'delete', kind: 'service', id: s.id }]);
    return { removed: s.spec.name };
  });

  r.on('GET', '/v1/services', async () => {
    await wrap(d.requireManager().linearizableRead());
    return d.requireManager().store.list('service').map((s) => summarize(d, s)).sort((a, b) => a.name.localeCompare(b.name));
  });

  r.on('GET', '/v1/services/:ref', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    const s = findService(d, req.params.ref!);
    return { ...s, summary: summarize(d, s) };
  });

  // Logs live on the nodes: the manager collects them from each task's node (tail per task).
  r.on('GET', '/v1/services/:ref/logs', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    const s = findService(d, req.params.ref!);
    const tail = req.query.get('tail') ? z.coerce.number().int().min(0).max(100_000).parse(req.query.get('tail')) : undefined;
    const rows = taskRows(d, s).filter((t) => t.nodeId && (req.query.get('all') === '1' || t.desiredState === 'running'));
    return Promise.all(
      rows.map(async (t) => {
        try {
          return { task: t.name, id: t.id, node: t.node, logs: await d.taskLogs(t.nodeId!, t.id, tail) };
        } catch (e) {
          return { task: t.name, id: t.id, node: t.node, logs: '', error: (e as Error).message };
        }
      }),
    );
  });

  r.on(
    'POST',
    '/v1/agent/tasks/:id/logs',
    async (req) => {
      const body = z.object({ tail: z.number().int().min(0).optional() }).strict().parse(req.body ?? {});
      if (!d.agent) throw new ApiError(503, 'no-agent', 'this node runs no agent');
      return { logs: await d.agent.logs(req.params.id!, body.tail) };
    },
    // managers only: a worker has no business reading other nodes' task logs
    { access: 'manager' },
  );

  r.on('GET', '/v1/services/:ref/tasks', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    const s = findService(d, req.params.ref!);
    return { service: summarize(d, s), tasks: taskRows(d, s) };
  });
}
