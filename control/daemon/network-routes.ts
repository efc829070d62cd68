// `network create|ls|inspect|rm` on the API. The spec is checked here (syntax, clashes with the
// networks that exist) so the user gets the error at once; the leader's allocation pass then gives
// the network its VNI and, when none was asked for, a subnet from the default pool.
import { z } from 'zod';
import { ApiError } from '../api/http.js';
import { validateNetworkSpec, DEFAULT_CONFIG } from '../allocator/index.js';
import { newId } from './tokens.js';
import { remoteWriter, wrap } from './service-routes.js';
import type { Daemon } from './daemon.js';
import type { NetworkObject, NetworkSpec, Stored } from '../store/objects.js';

export interface NetworkSummary {
  id: string;
  name: string;
  driver: string;
  scope: 'swarm';
  subnet: string;
  gateway: string;
  vni: number | null;
  attachable: boolean;
  encrypted: boolean;
  ingress: boolean;
  services: number;
  error?: string;
}

const NetworkName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'network names are 1-63 letters, digits, . _ -, starting with a letter or digit');
const labelKey = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'label keys are letters, digits, . _ - (at most 128)');
const CreateBody = z
  .object({
    name: NetworkName,
    driver: z.literal('overlay', { message: 'driver: only "overlay" is supported' }).optional(),
    subnet: z.string().max(64).optional(),
    gateway: z.string().max(64).optional(),
    ipRange: z.string().max(64).optional(),
    attachable: z.boolean().optional(),
    encrypted: z.boolean().optional(),
    ingress: z.boolean().optional(),
    mtu: z.number().int().min(576, 'mtu: at least 576').max(65_535).optional(),
    labels: z.record(labelKey, z.string().max(1024)).optional(),
  })
  .strict();

export function findNetwork(d: Daemon, ref: string): Stored<'network'> {
  const all = d.requireManager().store.list('network');
  const n = all.find((x) => x.id === ref) ?? all.find((x) => x.spec.name === ref) ?? all.filter((x) => x.id.startsWith(ref))[0];
  if (!n) throw new ApiError(404, 'not-found', `no network "${ref}" (meshctl network ls lists them)`);
  return n;
}

function usersOf(d: Daemon, n: NetworkObject): { services: string[]; tasks: number } {
  const m = d.requireManager();
  const services = m.store
    .list('service')
    .filter((s) => s.spec.networks.some((x) => x.target === n.id) || (n.spec.ingress && (s.endpointPorts ?? []).length > 0))
    .map((s) => s.spec.name);
  const tasks = m.store.list('task').filter((t) => t.status.state !== 'complete' && t.status.state !== 'failed' && t.status.state !== 'shutdown' && t.status.state !== 'rejected' && t.networks.some((e) => e.network === n.id)).length;
  return { services, tasks };
}

export function summarizeNetwork(d: Daemon, n: Stored<'network'>): NetworkSummary {
  const s: NetworkSummary = {
    id: n.id,
    name: n.spec.name,
    driver: n.spec.driver,
    scope: 'swarm',
    subnet: n.allocated?.subnet ?? n.spec.subnet ?? '',
    gateway: n.allocated?.gateway ?? n.spec.gateway ?? '',
    vni: n.allocated?.vni ?? null,
    attachable: n.spec.attachable,
    encrypted: n.spec.encrypted,
    ingress: n.spec.ingress === true,
    services: usersOf(d, n).services.length,
  };
  if (n.error) s.error = n.error;
  return s;
}

export function registerNetworkRoutes(d: Daemon): void {
  const r = d.router;
  const remoteWrite = remoteWriter(d);

  remoteWrite('POST', '/v1/networks', async ({ body }) => {
    const b = CreateBody.safeParse(body);
    if (!b.success) throw new ApiError(400, 'invalid-spec', b.error.issues.map((i) => `${i.path.join('.') || 'network'}: ${i.message}`).join('; '));
    const spec: NetworkSpec = {
      name: b.data.name,
      driver: 'overlay',
      attachable: b.data.attachable ?? false,
      encrypted: b.data.encrypted ?? false,
      labels: b.data.labels ?? {},
      ...(b.data.subnet !== undefined ? { subnet: b.data.subnet } : {}),
      ...(b.data.gateway !== undefined ? { gateway: b.data.gateway } : {}),
      ...(b.data.ipRange !== undefined ? { ipRange: b.data.ipRange } : {}),
      ...(b.data.mtu !== undefined ? { mtu: b.data.mtu } : {}),
      ...(b.data.ingress ? { ingress: true } : {}),
    };
    // Refused rather than accepted and silently not done: traffic would cross the underlay in clear.
    if (spec.encrypted) throw new ApiError(400, 'not-implemented', 'encrypted overlay networks (ESP between the nodes) are not implemented yet: the network would carry traffic in clear; create it without --opt encrypted');
    const m = d.requireManager();
    if (m.store.list('network').some((n) => n.spec.name === spec.name)) throw new ApiError(409, 'exists', `a network named "${spec.name}" already exists`);
    const errors = validateNetworkSpec(spec, m.store.list('network'), DEFAULT_CONFIG);
    if (errors.length) throw new ApiError(400, 'invalid-spec', errors.map((e) => `${e.field ? `${e.field}: ` : ''}${e.message}`).join('; '));
    const net: NetworkObject = { id: newId(), spec };
    await m.propose([{ op: 'create', kind: 'network', object: net }]);
    // Wait briefly for the allocation so that `network create` prints a usable network (or its error).
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      const cur = m.store.get('network', net.id);
      if (!cur || cur.allocated || cur.error) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    const cur = m.store.get('network', net.id);
    if (cur?.error) throw new ApiError(400, 'allocation-failed', `network "${spec.name}" was created but has no addresses: ${cur.error} (meshctl network rm ${spec.name}, then create it with another --subnet)`);
    return { id: net.id, name: spec.name, ...(cur?.allocated ?? {}) };
  });

  remoteWrite('POST', '/v1/networks/:ref/rm', async ({ params }) => {
    const n = findNetwork(d, params.ref!);
    const users = usersOf(d, n);
    if (n.spec.ingress && users.services.length === 0 && users.tasks === 0) {
      // allowed: an ingress network with nothing published (as Docker allows)
    } else if (users.services.length || users.tasks) {
      throw new ApiError(409, 'in-use', `network "${n.spec.name}" is in use by ${users.services.length ? `services ${users.services.join(', ')}` : `${users.tasks} tasks`}; remove them or their --network first`);
    }
    await d.requireManager().propose([{ op: 'delete', kind: 'network', id: n.id }]);
    return { removed: n.spec.name };
  });

  r.on('GET', '/v1/networks', async () => {
    await wrap(d.requireManager().linearizableRead());
    return d.requireManager().store.list('network').map((n) => summarizeNetwork(d, n)).sort((a, b) => a.name.localeCompare(b.name));
  });

  r.on('GET', '/v1/networks/:ref', async (req) => {
    await wrap(d.requireManager().linearizableRead());
    const n = findNetwork(d, req.params.ref!);
    const m = d.requireManager();
    const svcs = m.store.list('service');
    const containers = m.store
      .list('task')
      .filter((t) => t.desiredState === 'running' && t.networks.some((e) => e.network === n.id))
      .map((t) => ({ task: t.id, service: svcs.find((s) => s.id === t.serviceId)?.spec.name ?? t.serviceId, node: t.nodeId ?? '', state: t.status.state, addresses: t.networks.find((e) => e.network === n.id)!.addresses }));
    const vips = svcs.flatMap((s) => (s.endpointVips ?? []).filter((v) => v.network === n.id).map((v) => ({ service: s.spec.name, vip: v.addr })));
    const peers = n.spec.ingress ? m.store.list('node').filter((x) => x.ingressAddr).map((x) => ({ node: x.hostname, address: x.ingressAddr! })) : [];
    return { ...n, summary: summarizeNetwork(d, n), vips, tasks: containers, ...(n.spec.ingress ? { nodes: peers } : {}) };
  });
}
