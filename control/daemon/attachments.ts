// Standalone tasks on attachable networks: `meshctl run --network NET CMD` on a node, like `docker run`
// on an attachable overlay in Swarm. The node asks the managers for the task (so the allocator gives it
// its addresses and every node learns its endpoint like any task's), pinned to itself; its own agent
// then runs it. It has no service: no restarts, no scheduling elsewhere; `meshctl rm` removes it.
import { z, ZodError } from 'zod';
import { ApiError } from '../api/http.js';
import { normalizeServiceSpec, describeSpecError } from '../api/service-spec.js';
import { newId } from './tokens.js';
import { wrap } from './service-routes.js';
import type { Daemon } from './daemon.js';
import type { TaskObject } from '../store/objects.js';

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'names are 1-63 letters, digits, . _ -');
const RunBody = z
  .object({
    nodeId: z.string().max(64),
    name: Name.optional(),
    networks: z.array(z.string().min(1).max(64)).min(1, 'at least one --network').max(8),
    runtime: z.enum(['netns', 'docker']).optional(),
    command: z.array(z.string()).max(256).optional(),
    image: z.string().max(512).optional(),
    env: z.record(z.string(), z.string()).optional(),
  })
  .strict();
type RunBody = z.infer<typeof RunBody>;

export interface AttachmentView {
  id: string;
  name: string;
  node: string;
  state: string;
  message: string;
  networks: { network: string; name: string; addresses: string[] }[];
}

function view(d: Daemon, t: TaskObject): AttachmentView {
  const nets = d.requireManager().store.list('network');
  return {
    id: t.id,
    name: t.attachment?.name ?? t.id,
    node: t.nodeId ?? '',
    state: t.status.state,
    message: t.pendingReason ?? t.status.err ?? t.status.message,
    networks: t.networks.map((e) => ({ network: e.network, name: nets.find((n) => n.id === e.network)?.spec.name ?? e.network, addresses: e.addresses })),
  };
}

/** Leader: makes the task, or says why not. */
async function create(d: Daemon, b: RunBody): Promise<AttachmentView> {
  const m = d.requireManager();
  if (!m.store.get('node', b.nodeId)) throw new ApiError(404, 'unknown-node', `node ${b.nodeId} is not part of this cluster`);
  const nets = m.store.list('network');
  const networks = b.networks.map((ref) => {
    const n = nets.find((x) => x.id === ref) ?? nets.find((x) => x.spec.name === ref);
    if (!n) throw new ApiError(404, 'not-found', `network "${ref}" not found (meshctl network ls)`);
    if (!n.spec.attachable) throw new ApiError(400, 'not-attachable', `network "${n.spec.name}" is not attachable: only services may use it (create it with --attachable to run standalone tasks on it)`);
    return { network: n.id, addresses: [] as string[] };
  });
  let spec;
  try {
    spec = normalizeServiceSpec({ name: 'standalone', task: { ...(b.runtime ? { runtime: b.runtime } : {}), ...(b.command ? { command: b.command } : {}), ...(b.image ? { image: b.image } : {}), ...(b.env ? { env: b.env } : {}) } }).task;
  } catch (e) {
    if (e instanceof ZodError) throw new ApiError(400, 'invalid-spec', describeSpecError(e));
    throw e;
  }
  if (spec.runtime === 'netns' && !spec.command?.length) throw new ApiError(400, 'invalid-spec', 'a command to run is needed (meshctl run --network NET -- CMD ARGS)');
  const id = newId();
  const name = b.name ?? `run-${id.slice(0, 8)}`;
  if (m.store.list('task').some((t) => t.attachment?.name === name && t.desiredState === 'running')) throw new ApiError(409, 'exists', `a standalone task named "${name}" already runs`);
  const at = new Date().toISOString();
  const task: TaskObject = {
    id, serviceId: '', slot: 0, nodeId: b.nodeId, specVersion: 1,
    spec: { ...spec, restart: { condition: 'none', delayMs: 0, maxAttempts: 0, windowMs: 0 } },
    desiredState: 'running', status: { state: 'new', message: 'created', timestamp: at },
    networks, createdAt: at, attachment: { name },
  };
  await wrap(m.propose([{ op: 'create', kind: 'task', object: task }]));
  return view(d, task);
}

export function registerAttachmentRoutes(d: Daemon): void {
  const r = d.router;
  const self = (peer: { role: string; nodeId: string } | undefined, nodeId: string): void => {
    if (peer && peer.role === 'worker' && peer.nodeId !== nodeId) throw new ApiError(403, 'forbidden', `node ${peer.nodeId} cannot manage standalone tasks of node ${nodeId}`);
  };
  const find = (id: string): TaskObject => {
    const t = d.requireManager().store.list('task').find((x) => x.attachment && (x.id === id || x.id.startsWith(id) || x.attachment.name === id));
    if (!t) throw new ApiError(404, 'not-found', `no standalone task "${id}"`);
    return t;
  };

  // managers (any node may call, for itself)
  r.on('POST', '/v1/attachments', async (req) => {
    const b = RunBody.parse(req.body);
    self(req.peer, b.nodeId);
    return d.onLeader('POST', req.path, b, () => create(d, b), 10_000);
  }, { access: 'node' });
  r.on('GET', '/v1/attachments/:id', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    return view(d, find(req.params.id!));
  }, { access: 'node' });
  const remove = async (id: string): Promise<{ removed: string }> => {
    const { meta, ...obj } = find(id) as TaskObject & { meta: { version: number } };
    await wrap(d.requireManager().propose([{ op: 'update', kind: 'task', object: { ...obj, desiredState: 'remove' }, version: meta.version }]));
    return { removed: obj.attachment?.name ?? obj.id };
  };
  r.on('POST', '/v1/attachments/:id/rm', async (req) => {
    self(req.peer, find(req.params.id!).nodeId ?? '');
    return d.onLeader('POST', req.path, {}, () => remove(req.params.id!));
  }, { access: 'node' });

  // this node's CLI: the node speaks for itself
  r.on('POST', '/v1/local/run', async (req) => {
    const b = RunBody.omit({ nodeId: true }).parse(req.body);
    const body = { ...b, nodeId: d.identity.nodeId };
    let v: AttachmentView = d.manager
      ? await d.onLeader('POST', '/v1/attachments', body, () => create(d, body), 10_000)
      : await d.callManagers<AttachmentView>('POST', '/v1/attachments', body);
    // wait for it to run (or fail), as `docker run -d` returns once the container started
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !['running', 'failed', 'rejected', 'complete', 'shutdown'].includes(v.state)) {
      await new Promise((res) => setTimeout(res, 100));
      v = d.manager ? await d.onLeader('GET', `/v1/attachments/${v.id}`, undefined, async () => view(d, find(v.id))) : await d.callManagers<AttachmentView>('GET', `/v1/attachments/${v.id}`, undefined);
    }
    return v;
  });
  r.on('POST', '/v1/local/rm/:id', async (req) => {
    const p = `/v1/attachments/${encodeURIComponent(req.params.id!)}/rm`;
    return d.manager ? d.onLeader('POST', p, {}, () => remove(req.params.id!)) : d.callManagers('POST', p, {});
  });
}
