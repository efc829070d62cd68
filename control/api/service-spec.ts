// What a user may send to create or update a service, validated, with Swarm's defaults filled in.
// Errors name the field and say what is allowed.
import { z } from 'zod';
import type { ServiceSpec, UpdateConfig } from '../store/objects.js';

export const SERVICE_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$/;

const duration = z.number().int().min(0).max(24 * 3600 * 1000);

const updateConfig = z
  .object({
    parallelism: z.number().int().min(0).max(10_000).default(1),
    delayMs: duration.default(0),
    failureAction: z.enum(['pause', 'continue', 'rollback']).default('pause'),
    monitorMs: duration.default(5000),
    maxFailureRatio: z.number().min(0).max(1).default(0),
    order: z.enum(['stop-first', 'start-first']).default('stop-first'),
  })
  .strict();

const CONSTRAINT_RE = /^\s*node\.(id|hostname|role|labels\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*\S.*$/;

const port = z
  .object({
    published: z.number().int().min(1).max(65535),
    target: z.number().int().min(1).max(65535),
    protocol: z.enum(['tcp', 'udp']).default('tcp'),
    mode: z.enum(['ingress', 'host']).default('ingress'),
  })
  .strict();

export const ServiceSpecInput = z
  .object({
    name: z.string().regex(SERVICE_NAME_RE, 'service names are 1-63 letters, digits and dashes, starting with a letter or digit (they become DNS names)'),
    mode: z.enum(['replicated', 'global']).default('replicated'),
    replicas: z.number().int().min(0).max(100_000).optional(),
    task: z
      .object({
        runtime: z.enum(['netns', 'docker']).optional(),
        command: z.array(z.string()).optional(),
        image: z.string().min(1).optional(),
        forceUpdate: z.number().int().min(0).optional(),
        env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are letters, digits and _'), z.string()).default({}),
        resources: z.object({ nanoCpus: z.number().int().min(0).optional(), memoryBytes: z.number().int().min(0).optional() }).strict().prefault({}),
        restart: z
          .object({
            condition: z.enum(['none', 'on-failure', 'any']).default('any'),
            delayMs: duration.default(5000),
            maxAttempts: z.number().int().min(0).default(0),
            windowMs: duration.default(0),
          })
          .strict()
          .prefault({}),
        placement: z
          .object({
            constraints: z.array(z.string().regex(CONSTRAINT_RE, 'constraints look like node.labels.zone==a, node.role!=manager, node.hostname==n1 or node.id==ID')).default([]),
            preferences: z.array(z.object({ spread: z.string().regex(/^node\.labels\.[A-Za-z0-9_.-]+$/, 'spread preferences look like node.labels.zone') }).strict()).default([]),
          })
          .strict()
          .prefault({}),
      })
      .strict(),
    networks: z.array(z.object({ target: z.string().min(1), aliases: z.array(z.string().regex(SERVICE_NAME_RE, 'aliases are DNS labels')).default([]) }).strict()).default([]),
    endpoint: z.object({ mode: z.enum(['vip', 'dnsrr']).default('vip'), ports: z.array(port).default([]) }).strict().prefault({}),
    update: updateConfig.prefault({}),
    rollback: updateConfig.prefault({}),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.mode === 'global' && s.replicas !== undefined) ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'replicas cannot be used with global mode (a global service runs one task on every eligible node)' });
    const t = s.task;
    const runtime = t.runtime ?? (t.image ? 'docker' : 'netns');
    if (runtime === 'docker' && !t.image) ctx.addIssue({ code: 'custom', path: ['task', 'image'], message: 'the docker runtime needs an image' });
    if (runtime === 'netns' && !t.command?.length) ctx.addIssue({ code: 'custom', path: ['task', 'command'], message: 'the netns runtime needs a command (--command "...")' });
    if (runtime === 'netns' && t.image) ctx.addIssue({ code: 'custom', path: ['task', 'image'], message: 'an image needs the docker runtime (--runtime docker)' });
    const seen = new Set<string>();
    s.endpoint.ports.forEach((p, i) => {
      const k = `${p.published}/${p.protocol}`;
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: ['endpoint', 'ports', i], message: `port ${k} is published twice` });
      seen.add(k);
    });
    if (s.endpoint.mode === 'dnsrr' && s.endpoint.ports.some((p) => p.mode === 'ingress')) {
      ctx.addIssue({ code: 'custom', path: ['endpoint', 'mode'], message: 'dnsrr services cannot publish ingress ports (the routing mesh needs a VIP): use mode=host' });
    }
    const nets = new Set<string>();
    s.networks.forEach((n, i) => {
      if (nets.has(n.target)) ctx.addIssue({ code: 'custom', path: ['networks', i], message: `network ${n.target} is attached twice` });
      nets.add(n.target);
    });
  });

export type ServiceSpecInputT = z.input<typeof ServiceSpecInput>;

/** Validates and fills defaults; throws a ZodError naming each bad field. */
export function normalizeServiceSpec(input: unknown): ServiceSpec {
  const s = ServiceSpecInput.parse(input);
  const runtime = s.task.runtime ?? (s.task.image ? 'docker' : 'netns');
  const task: ServiceSpec['task'] = {
    runtime,
    env: s.task.env,
    resources: s.task.resources,
    restart: s.task.restart,
    placement: s.task.placement,
  };
  if (s.task.command) task.command = s.task.command;
  if (s.task.image) task.image = s.task.image;
  if (s.task.forceUpdate) task.forceUpdate = s.task.forceUpdate;
  const update: UpdateConfig = s.update;
  return {
    name: s.name,
    mode: s.mode,
    replicas: s.mode === 'global' ? 0 : (s.replicas ?? 1),
    task,
    networks: s.networks,
    endpoint: s.endpoint,
    update,
    rollback: s.rollback,
  };
}

/** Human text for a ZodError from normalizeServiceSpec: one line per field. */
export function describeSpecError(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('\n');
}
