// `meshctl service create|ls|ps|inspect|scale|update|rollback|rm`. create, update, scale and rollback
// wait and show convergence like `docker service create` (--detach to return at once).
import { Command, Option } from 'commander';
import { call, type Target } from '../api/client.js';
import { formatOption, printJson, table, type Format } from './output.js';
import type { TargetFn } from './cluster-commands.js';
import { parseBytes, parseCpus, parseDuration, parseEnv, parseNetwork, parsePublish } from './service-flags.js';
import type { ServiceSummary, TaskRow } from '../daemon/service-routes.js';
import type { ServiceSpec } from '../store/objects.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Splits a command line like a shell would for simple quoting ('...' and "..."). */
export function splitCommand(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:\\.|[^"\\])*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]!));
  return out;
}

interface SpecFlags {
  replicas?: string;
  mode?: string;
  runtime?: string;
  command?: string;
  env: string[];
  constraint: string[];
  constraintRm: string[];
  placementPref: string[];
  network: string[];
  publish: string[];
  publishRm: string[];
  endpointMode?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  restartWindow?: string;
  updateParallelism?: string;
  updateDelay?: string;
  updateFailureAction?: string;
  updateMonitor?: string;
  updateMaxFailureRatio?: string;
  updateOrder?: string;
  rollbackParallelism?: string;
  rollbackDelay?: string;
  reserveCpu?: string;
  reserveMemory?: string;
  image?: string;
}

function specOptions(c: Command, create: boolean): Command {
  c.option('--replicas <n>', 'number of tasks (replicated mode)')
    .option('--runtime <r>', 'netns (a command in its own network namespace) or docker (an image)')
    .option('--command <cmd>', 'the command the netns runtime runs, e.g. "node bin/workload.js http --port 80"')
    .option('--image <ref>', 'docker runtime: the image (an ID like sha256:..., never pulled when given by ID)')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('--constraint <expr>', 'placement constraint, e.g. node.labels.zone==a (repeatable)', collect, [])
    .option('--placement-pref <spread=node.labels.KEY>', 'spread over a label (repeatable)', collect, [])
    .option('--network <name|name=,alias=>', 'attach to a network (repeatable)', collect, [])
    .option('-p, --publish <PUBLISHED:TARGET[/udp]|published=,target=,mode=>', 'publish a port (repeatable)', collect, [])
    .option('--endpoint-mode <m>', 'vip or dnsrr')
    .option('--restart-condition <c>', 'none, on-failure or any')
    .option('--restart-delay <d>', 'delay between restarts, e.g. 5s')
    .option('--restart-max-attempts <n>', 'give up after N restarts (0: never)')
    .option('--restart-window <d>', 'window in which restarts count')
    .option('--update-parallelism <n>', 'tasks updated at once (0: all)')
    .option('--update-delay <d>', 'delay between update batches')
    .option('--update-failure-action <a>', 'pause, continue or rollback')
    .option('--update-monitor <d>', 'how long a new task must run to count as a success')
    .option('--update-max-failure-ratio <r>', 'failures tolerated during an update, 0..1')
    .option('--update-order <o>', 'stop-first or start-first')
    .option('--rollback-parallelism <n>', 'tasks rolled back at once')
    .option('--rollback-delay <d>', 'delay between rollback batches')
    .option('--reserve-cpu <cpus>', 'CPUs reserved per task, e.g. 0.5')
    .option('--reserve-memory <size>', 'memory reserved per task, e.g. 256M');
  if (create) c.option('--mode <m>', 'replicated or global', 'replicated');
  else c.option('--constraint-rm <expr>', 'remove a constraint (repeatable)', collect, []).option('--publish-rm <PUBLISHED[/udp]>', 'unpublish a port (repeatable)', collect, []);
  return c;
}

const int = (v: string, flag: string): number => {
  if (!/^\d+$/.test(v)) throw new Error(`${flag} must be a whole number, not "${v}"`);
  return Number(v);
};

/** Applies flags to a spec (a fresh one for create, the current one for update). */
export function applyFlags(base: Record<string, unknown>, f: SpecFlags, args: string[]): Record<string, unknown> {
  const s = structuredClone(base) as Record<string, unknown> & { task: Record<string, unknown>; endpoint: { mode?: string; ports: unknown[] }; update: Record<string, unknown>; rollback: Record<string, unknown>; networks: unknown[] };
  s.task ??= {};
  s.endpoint ??= { ports: [] };
  s.endpoint.ports ??= [];
  s.update ??= {};
  s.rollback ??= {};
  s.networks ??= [];
  const task = s.task as Record<string, unknown> & { restart?: Record<string, unknown>; placement?: { constraints?: string[]; preferences?: unknown[] }; env?: Record<string, string>; resources?: Record<string, number> };
  if (f.replicas !== undefined) s.replicas = int(f.replicas, '--replicas');
  if (f.mode !== undefined) s.mode = f.mode;
  if (f.runtime) task.runtime = f.runtime;
  if (f.image) task.image = f.image;
  if (f.command) task.command = splitCommand(f.command);
  if (args.length) {
    // IMAGE [ARGS...] (docker), or ARGS... as the command (netns)
    if ((f.runtime ?? task.runtime) === 'docker' || (!f.command && !task.command && /[:/]|^sha256:/.test(args[0]!) && f.runtime !== 'netns')) {
      task.image = args[0];
      task.runtime = 'docker';
      if (args.length > 1) task.command = args.slice(1);
    } else {
      task.command = args;
    }
  }
  if (f.env.length) task.env = { ...(task.env ?? {}), ...Object.fromEntries(f.env.map(parseEnv)) };
  if (f.constraint.length || f.constraintRm?.length || f.placementPref.length) {
    const p = (task.placement ??= {});
    p.constraints = [...(p.constraints ?? []).filter((c) => !(f.constraintRm ?? []).includes(c)), ...f.constraint];
    if (f.placementPref.length) p.preferences = f.placementPref.map((x) => ({ spread: x.replace(/^spread=/, '') }));
  }
  const restart = (task.restart ??= {});
  if (f.restartCondition) restart.condition = f.restartCondition;
  if (f.restartDelay) restart.delayMs = parseDuration(f.restartDelay, '--restart-delay');
  if (f.restartMaxAttempts) restart.maxAttempts = int(f.restartMaxAttempts, '--restart-max-attempts');
  if (f.restartWindow) restart.windowMs = parseDuration(f.restartWindow, '--restart-window');
  if (f.reserveCpu || f.reserveMemory) {
    const r = (task.resources ??= {});
    if (f.reserveCpu) r.nanoCpus = parseCpus(f.reserveCpu, '--reserve-cpu');
    if (f.reserveMemory) r.memoryBytes = parseBytes(f.reserveMemory, '--reserve-memory');
  }
  if (f.network.length) s.networks = [...s.networks, ...f.network.map(parseNetwork)];
  if (f.publish.length || f.publishRm?.length) {
    const rm = new Set((f.publishRm ?? []).map((x) => (x.includes('/') ? x : `${x}/tcp`)));
    const kept = (s.endpoint.ports as { published: number; protocol?: string }[]).filter((p) => !rm.has(`${p.published}/${p.protocol ?? 'tcp'}`));
    s.endpoint.ports = [...kept, ...f.publish.map(parsePublish)];
  }
  if (f.endpointMode) s.endpoint.mode = f.endpointMode;
  const u = s.update;
  if (f.updateParallelism) u.parallelism = int(f.updateParallelism, '--update-parallelism');
  if (f.updateDelay) u.delayMs = parseDuration(f.updateDelay, '--update-delay');
  if (f.updateFailureAction) u.failureAction = f.updateFailureAction;
  if (f.updateMonitor) u.monitorMs = parseDuration(f.updateMonitor, '--update-monitor');
  if (f.updateMaxFailureRatio) u.maxFailureRatio = Number(f.updateMaxFailureRatio);
  if (f.updateOrder) u.order = f.updateOrder;
  if (f.rollbackParallelism) s.rollback.parallelism = int(f.rollbackParallelism, '--rollback-parallelism');
  if (f.rollbackDelay) s.rollback.delayMs = parseDuration(f.rollbackDelay, '--rollback-delay');
  return s;
}

/** Polls until the service has converged (or fails to); prints progress; returns ok. */
async function converge(t: Target, ref: string, opts: { timeoutMs: number; quiet: boolean; update: boolean }): Promise<boolean> {
  const t0 = Date.now();
  let last = '';
  const tty = process.stdout.isTTY;
  for (;;) {
    const { service: s, tasks } = await call<{ service: ServiceSummary; tasks: TaskRow[] }>(t, 'GET', `/v1/services/${encodeURIComponent(ref)}/tasks`);
    const current = tasks.filter((x) => x.desiredState === 'running');
    const running = current.filter((x) => x.state === 'running');
    const pending = current.filter((x) => x.state === 'pending' && x.message);
    const us = s.updateStatus?.state;
    const updating = opts.update && (us === 'updating' || us === 'rollback_started');
    const line = `${s.name}: ${running.length}/${s.desired} running${opts.update ? `, ${s.upToDate}/${s.desired} updated` : ''}${updating ? ` (${us})` : ''}${pending.length ? `; ${pending.length} pending: ${pending[0]!.message}` : ''}`;
    if (!opts.quiet && line !== last) {
      if (tty) process.stdout.write(`\r\x1b[K${line}`);
      else console.log(line);
      last = line;
    }
    const done = running.length === s.desired && current.length === s.desired && s.upToDate === s.desired && !updating;
    if (done || us === 'paused' || us === 'rollback_paused') {
      if (!opts.quiet) {
        if (tty) process.stdout.write('\n');
        if (us === 'paused' || us === 'rollback_paused') console.log(`update ${us}: ${s.updateStatus?.message ?? ''}`);
        else console.log(`verify: service ${s.name} converged in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
      return done;
    }
    if (Date.now() - t0 > opts.timeoutMs) {
      if (!opts.quiet) console.log(`${tty ? '\n' : ''}not converged after ${opts.timeoutMs / 1000} s; the cluster keeps trying (meshctl service ps ${s.name})`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function serviceCommand(target: TargetFn): Command {
  const svc = new Command('service').description('run and manage services (on a manager)');

  specOptions(
    svc
      .command('create')
      .description('create a service: meshctl service create --name web --replicas 3 --command "..." | IMAGE [ARGS...]')
      .requiredOption('--name <name>', 'service name (also its DNS name)')
      .option('-d, --detach', 'return at once instead of waiting for convergence')
      .option('-q, --quiet', 'no progress output')
      .option('--timeout <d>', 'how long to wait for convergence', '120s')
      .argument('[args...]'),
    true,
  ).action(async (args: string[], o: SpecFlags & { name: string; detach?: boolean; quiet?: boolean; timeout: string }) => {
    const spec = applyFlags({ name: o.name }, o, args);
    const t = target();
    const r = await call<{ id: string }>(t, 'POST', '/v1/services', { spec });
    console.log(r.id);
    if (o.detach) return;
    if (!(await converge(t, r.id, { timeoutMs: parseDuration(o.timeout, '--timeout'), quiet: o.quiet === true, update: false }))) process.exitCode = 1;
  });

  specOptions(
    svc
      .command('update')
      .description('change a service; tasks are replaced by the rolling update policy')
      .option('-d, --detach', 'return at once')
      .option('-q, --quiet', 'no progress output')
      .option('--force', 'replace every task even if nothing changed')
      .option('--timeout <d>', 'how long to wait for convergence', '300s')
      .argument('<service>')
      .argument('[args...]'),
    false,
  ).action(async (ref: string, args: string[], o: SpecFlags & { detach?: boolean; quiet?: boolean; force?: boolean; timeout: string }) => {
    const t = target();
    const cur = await call<{ spec: ServiceSpec }>(t, 'GET', `/v1/services/${encodeURIComponent(ref)}`);
    const spec = applyFlags(cur.spec as unknown as Record<string, unknown>, o, args);
    if (o.force) {
      const task = spec.task as { env?: Record<string, string> };
      task.env = { ...(task.env ?? {}), MESH_FORCE_UPDATE: new Date().toISOString() };
    }
    await call(t, 'POST', `/v1/services/${encodeURIComponent(ref)}/update`, { spec });
    console.log(ref);
    if (o.detach) return;
    if (!(await converge(t, ref, { timeoutMs: parseDuration(o.timeout, '--timeout'), quiet: o.quiet === true, update: true }))) process.exitCode = 1;
  });

  svc
    .command('scale')
    .description('set the number of tasks: meshctl service scale web=10 [api=3 ...]')
    .option('-d, --detach', 'return at once')
    .argument('<service=replicas...>')
    .action(async (pairs: string[], o: { detach?: boolean }) => {
      const t = target();
      for (const p of pairs) {
        const m = /^(.+)=(\d+)$/.exec(p);
        if (!m) throw new Error(`"${p}": use SERVICE=REPLICAS`);
        await call(t, 'POST', `/v1/services/${encodeURIComponent(m[1]!)}/scale`, { replicas: Number(m[2]) });
        console.log(`${m[1]} scaled to ${m[2]}`);
        if (!o.detach && !(await converge(t, m[1]!, { timeoutMs: 120_000, quiet: false, update: false }))) process.exitCode = 1;
      }
    });

  svc
    .command('rollback')
    .description('return to the previous spec')
    .option('-d, --detach', 'return at once')
    .argument('<service>')
    .action(async (ref: string, o: { detach?: boolean }) => {
      const t = target();
      await call(t, 'POST', `/v1/services/${encodeURIComponent(ref)}/rollback`, {});
      console.log(ref);
      if (!o.detach && !(await converge(t, ref, { timeoutMs: 300_000, quiet: false, update: true }))) process.exitCode = 1;
    });

  svc
    .command('rm')
    .description('remove services (their tasks stop)')
    .argument('<service...>')
    .action(async (refs: string[]) => {
      for (const ref of refs) {
        await call(target(), 'POST', `/v1/services/${encodeURIComponent(ref)}/rm`, {});
        console.log(ref);
      }
    });

  svc
    .command('ls')
    .description('list services')
    .addOption(formatOption())
    .action(async (o: { format: Format }) => {
      const list = await call<ServiceSummary[]>(target(), 'GET', '/v1/services');
      if (o.format === 'json') return printJson(list);
      console.log(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'RUNTIME', 'COMMAND / IMAGE', 'PORTS'], list.map((s) => [s.id.slice(0, 12), s.name, s.mode, `${s.running}/${s.desired}`, s.runtime, s.command.length > 40 ? `${s.command.slice(0, 37)}...` : s.command, s.ports.join(', ')])));
    });

  svc
    .command('ps')
    .description('tasks of a service: where they run, their state, why they are pending or failed')
    .option('--no-trunc', 'full IDs and messages')
    .option('-a, --all', 'include shut-down and failed tasks (history)')
    .addOption(formatOption())
    .argument('<service>')
    .action(async (ref: string, o: { trunc: boolean; all?: boolean; format: Format }) => {
      const r = await call<{ tasks: TaskRow[] }>(target(), 'GET', `/v1/services/${encodeURIComponent(ref)}/tasks`);
      const tasks = o.all ? r.tasks : r.tasks.filter((x) => x.desiredState === 'running' || !['complete', 'failed', 'shutdown', 'rejected', 'orphaned'].includes(x.state));
      if (o.format === 'json') return printJson(tasks);
      const cut = (s: string, n: number): string => (o.trunc && s.length > n ? `${s.slice(0, n - 3)}...` : s);
      console.log(table(['ID', 'NAME', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'], tasks.map((x) => [cut(x.id, 12), x.name, x.node, x.desiredState, `${x.state} ${ago(x.since)}`, cut(x.error || (x.state === 'pending' ? x.message : ''), 60)])));
    });

  svc
    .command('logs')
    .description("the output of a service's tasks, collected from the nodes that run them")
    .option('-n, --tail <n>', 'only the last N lines of each task')
    .option('-a, --all', 'include tasks that have stopped (still kept on their nodes)')
    .argument('<service>')
    .action(async (ref: string, o: { tail?: string; all?: boolean }) => {
      const q = new URLSearchParams();
      if (o.tail) q.set('tail', o.tail);
      if (o.all) q.set('all', '1');
      const list = await call<{ task: string; node: string; logs: string; error?: string }[]>(target(), 'GET', `/v1/services/${encodeURIComponent(ref)}/logs?${q}`);
      for (const t of list) {
        if (t.error) console.error(`${t.task}@${t.node}: (logs unavailable: ${t.error})`);
        for (const line of t.logs.split('\n')) if (line) console.log(`${t.task}@${t.node}    | ${line}`);
      }
    });

  svc
    .command('inspect')
    .description('the service object, as JSON')
    .argument('<service>')
    .action(async (ref: string) => printJson(await call(target(), 'GET', `/v1/services/${encodeURIComponent(ref)}`)));

  return svc;
}

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s} seconds ago` : s < 3600 ? `${Math.round(s / 60)} minutes ago` : `${Math.round(s / 3600)} hours ago`;
}
