// The `docker` runtime: a task is a container that Docker runs with no network of its own
// (NetworkMode "none": Docker gives it a namespace with only lo), which our dataplane then wires.
//
// - Names and labels: the container is named PREFIX+ID[:12] and labelled meshd.owner (which meshd
//   owns it: several lab nodes share one dockerd), meshd.task, meshd.task.name, meshd.service and
//   meshd.netns. adopt() lists containers by meshd.owner and re-attaches; nothing is kept elsewhere.
// - Namespace: exposed as /proc/PID/ns/net (netnsPath) and also bind-mounted under /run/netns/NAME
//   (`ip netns attach`), because the netlink layer (createVeth peerNetns, moveLink) and operators
//   (`ip netns`) address namespaces by name. The name is removed as soon as the container exits.
// - DNS and hosts: per-task files bind-mounted read-only over /etc/resolv.conf and /etc/hosts,
//   rather than Docker's Dns/DnsOptions. Docker applies those differently per network mode (and
//   rewrites 127.x nameservers in some modes); a bind mount gives byte-identical files in both
//   runtimes and lets meshd rewrite them in place while the task runs (updateFiles). Docker skips its
//   own resolv.conf/hosts when the container has a mount there.
// - Init: docker-init as PID 1 by default, so a command that installs no SIGTERM handler still
//   stops on SIGTERM instead of waiting out the grace period (PID 1 ignores unhandled signals).
// - Logs: json-file, 1 MiB x 2 files, read back with `docker logs` semantics.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { deleteNetns, netnsPath } from '../netlink/index.js';
import { DEFAULT_LOG_LIMIT, lastLines } from './logfile.js';
import { netnsIdOfFile, netnsOfPid, sleep } from './procfs.js';
import { rewriteInPlace } from './records.js';
import {
  checkTaskId, DEFAULT_RESOLV_CONF, DEFAULT_TASK_PREFIX, defaultHosts, hostnameFor, Listeners, taskEnv, taskObjectName,
  type AdoptReport, type LogOptions, type StartRequest, type TaskEvent, type TaskFiles, type TaskInfo, type TaskRuntime,
} from './types.js';
import { findExecutable } from './which.js';

const run = promisify(execFile);

export interface DockerRuntimeOptions {
  /** default: new Docker() (DOCKER_HOST, else /var/run/docker.sock) */
  docker?: Docker;
  /** which meshd owns the containers (e.g. the node ID); adopt() only touches its own */
  owner: string;
  /** this meshd's directory for the per-task resolv.conf and hosts (bind-mount sources) */
  stateDir: string;
  /** container and namespace name prefix (default "msh-t-"; tests use "mt...") */
  prefix?: string;
  /** docker-init as PID 1 (default true) */
  init?: boolean;
  /** pull an image that is not present, unless it is an ID (default true) */
  pull?: boolean;
  logLimitBytes?: number;
}

export const LABEL = {
  owner: 'meshd.owner',
  task: 'meshd.task',
  name: 'meshd.task.name',
  service: 'meshd.service',
  netns: 'meshd.netns',
} as const;

interface Entry {
  info: TaskInfo;
  container: Docker.Container;
  dir: string;
  done: Promise<void>;
  resolveDone: () => void;
  reason?: string;
}

interface DockerApiError {
  statusCode?: number;
}

function status(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null ? (e as DockerApiError).statusCode : undefined;
}

export class DockerRuntime implements TaskRuntime {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly owner: string;
  private readonly stateDir: string;
  private readonly prefix: string;
  private readonly init: boolean;
  private readonly pull: boolean;
  private readonly logLimit: number;
  private readonly tasks = new Map<string, Entry>();
  private readonly listeners = new Listeners<TaskEvent>();
  private readonly abort = new AbortController();
  private readonly ip = findExecutable('ip');
  private closed = false;

  constructor(opts: DockerRuntimeOptions) {
    if (!/^[A-Za-z0-9_.-]+$/.test(opts.owner)) throw new TypeError(`owner "${opts.owner}" is not a valid label value here`);
    this.docker = opts.docker ?? new Docker();
    this.owner = opts.owner;
    this.stateDir = path.resolve(opts.stateDir);
    this.prefix = opts.prefix ?? DEFAULT_TASK_PREFIX;
    this.init = opts.init ?? true;
    this.pull = opts.pull ?? true;
    this.logLimit = opts.logLimitBytes ?? DEFAULT_LOG_LIMIT;
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
  }

  subscribe(listener: (e: TaskEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  inspect(id: string): TaskInfo | undefined {
    const e = this.tasks.get(id);
    return e && { ...e.info };
  }

  list(): TaskInfo[] {
    return [...this.tasks.values()].map((e) => ({ ...e.info }));
  }

  async start(req: StartRequest): Promise<TaskInfo> {
    if (this.closed) throw new Error('docker runtime is closed');
    checkTaskId(req.id);
    const image = req.spec.image;
    if (!image) throw new TypeError(`task ${req.id}: the docker runtime needs spec.image`);
    if (this.tasks.has(req.id)) throw new Error(`task ${req.id} already exists in this runtime (remove it first)`);
    const hostname = hostnameFor(req);
    const name = taskObjectName(this.prefix, req.id);
    await this.removeLeftover(name, req.id);
    await this.ensureImage(image);
    const dir = path.join(this.stateDir, req.id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'resolv.conf'), req.resolvConf ?? DEFAULT_RESOLV_CONF);
    fs.writeFileSync(path.join(dir, 'hosts'), req.hostsFile ?? defaultHosts(hostname));
    const labels: Record<string, string> = { [LABEL.owner]: this.owner, [LABEL.task]: req.id, [LABEL.name]: req.name, [LABEL.netns]: name };
    if (req.service !== undefined) labels[LABEL.service] = req.service;
    let container: Docker.Container | undefined;
    try {
      container = await this.docker.createContainer({
        name,
        Image: image,
        ...(req.spec.command ? { Cmd: req.spec.command } : {}),
        Env: Object.entries(taskEnv(req, hostname)).map(([k, v]) => `${k}=${v}`),
        Hostname: hostname,
        Labels: labels,
        HostConfig: {
          NetworkMode: 'none',
          Init: this.init,
          Binds: [`${dir}/resolv.conf:/etc/resolv.conf:ro`, `${dir}/hosts:/etc/hosts:ro`],
          // restarts are the orchestrator's business, not Docker's
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'json-file', Config: { 'max-size': String(this.logLimit), 'max-file': '2' } },
        },
      });
      await container.start();
    } catch (err) {
      if (container) await container.remove({ force: true }).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const entry = this.track(req.id, container, dir, {
      id: req.id, name: req.name, runtime: 'docker', state: 'running', netns: name, netnsPath: '', startedAt: new Date().toISOString(), adopted: false,
      ...(req.service !== undefined ? { service: req.service } : {}),
    });
    await this.attachRunning(entry, true);
    if (req.prepare) {
      try {
        await req.prepare(entry.info.netns);
      } catch (err) {
        await this.remove(req.id).catch(() => undefined);
        throw err;
      }
    }
    return { ...entry.info };
  }

  async stop(id: string, graceMs: number): Promise<number | null> {
    const e = this.mustGet(id);
    if (e.info.state === 'running') {
      e.reason ??= 'stopped';
      try {
        // Docker's own SIGTERM, then SIGKILL after t seconds (it counts in whole seconds).
        await e.container.stop({ t: Math.ceil(Math.max(0, graceMs) / 1000) });
      } catch (err) {
        if (status(err) !== 304 && status(err) !== 404) throw err;
      }
    }
    await e.done;
    return e.info.exitCode ?? null;
  }

  async remove(id: string): Promise<void> {
    const e = this.tasks.get(id);
    if (e && e.info.state === 'running') await this.stop(id, 0);
    const container = e?.container ?? this.docker.getContainer(taskObjectName(this.prefix, id));
    try {
      const c = await container.inspect();
      // by name alone it might be someone else's: only ours (owner + task labels) goes
      if (c.Config.Labels[LABEL.owner] === this.owner && c.Config.Labels[LABEL.task] === id) await container.remove({ force: true, v: true });
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
    deleteNetns(taskObjectName(this.prefix, id));
    fs.rmSync(path.join(this.stateDir, id), { recursive: true, force: true });
    e?.resolveDone();
    this.tasks.delete(id);
  }

  async logs(id: string, opts: LogOptions = {}): Promise<string> {
    const e = this.mustGet(id);
    const buf = await e.container.logs({ stdout: true, stderr: true, follow: false, ...(opts.tail !== undefined ? { tail: opts.tail } : {}) });
    const text = demux(buf);
    return opts.tail === undefined ? text : lastLines(text, opts.tail);
  }

  async updateFiles(id: string, files: TaskFiles): Promise<void> {
    const e = this.mustGet(id);
    if (files.resolvConf !== undefined) rewriteInPlace(path.join(e.dir, 'resolv.conf'), files.resolvConf);
    if (files.hostsFile !== undefined) rewriteInPlace(path.join(e.dir, 'hosts'), files.hostsFile);
  }

  async adopt(): Promise<AdoptReport> {
    const report: AdoptReport = { adopted: [], exited: [], removed: [] };
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.owner}=${this.owner}`] } });
    const ids = new Set<string>();
    for (const c of found) {
      const id = c.Labels[LABEL.task];
      if (!id) continue;
      ids.add(id);
      if (this.tasks.has(id)) continue;
      const container = this.docker.getContainer(c.Id);
      const ins = await container.inspect();
      const name = c.Labels[LABEL.netns] ?? taskObjectName(this.prefix, id);
      const service = c.Labels[LABEL.service];
      const entry = this.track(id, container, path.join(this.stateDir, id), {
        id, name: c.Labels[LABEL.name] ?? id, runtime: 'docker', state: 'running', netns: name, netnsPath: '',
        startedAt: ins.State.StartedAt, adopted: true, ...(service !== undefined ? { service } : {}),
      });
      await this.attachRunning(entry, false);
      (entry.info.state === 'running' ? report.adopted : report.exited).push({ ...entry.info });
    }
    // Per-task files whose container is gone (crash between mkdir and create): nothing else to clean.
    for (const id of fs.readdirSync(this.stateDir)) {
      if (ids.has(id) || this.tasks.has(id)) continue;
      fs.rmSync(path.join(this.stateDir, id), { recursive: true, force: true });
      deleteNetns(taskObjectName(this.prefix, id));
      report.removed.push(`state ${path.join(this.stateDir, id)} (no container)`);
    }
    return report;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort(); // ends the wait() requests; containers keep running for the next adopt
    this.tasks.clear();
  }

  private track(id: string, container: Docker.Container, dir: string, info: TaskInfo): Entry {
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const entry: Entry = { info, container, dir, done, resolveDone };
    this.tasks.set(id, entry);
    return entry;
  }

  /**
   * Reads the container's PID, names its namespace and watches for its exit, or records the exit if
   * it is already over (a fast command: then start() returns an exited task, after a start event).
   */
  private async attachRunning(e: Entry, emitStart: boolean): Promise<void> {
    const ins = await e.container.inspect();
    const running = ins.State.Running && ins.State.Pid > 0;
    if (running) {
      e.info.pid = ins.State.Pid;
      e.info.netnsPath = `/proc/${ins.State.Pid}/ns/net`;
      await this.nameNetns(e.info.netns, ins.State.Pid);
    }
    if (emitStart) this.listeners.emit({ type: 'start', task: { ...e.info } });
    if (running) void this.watch(e);
    else this.finish(e, ins.State.ExitCode, ins.State.FinishedAt);
  }

  /** `ip netns attach NAME PID`, replacing a stale NAME that points at another namespace. */
  private async nameNetns(name: string, pid: number): Promise<void> {
    const want = netnsOfPid(pid);
    const have = netnsIdOfFile(netnsPath(name));
    if (have !== undefined && have === want) return;
    if (have !== undefined) deleteNetns(name);
    try {
      await run(this.ip, ['netns', 'attach', name, String(pid)]);
    } catch (err) {
      // the container may have exited already: its wait() will tell; otherwise this is a real error
      if (netnsOfPid(pid) !== undefined) throw err;
    }
  }

  /** Waits for the container to stop; survives dockerd restarts (re-inspects and waits again). */
  private async watch(e: Entry): Promise<void> {
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
      try {
        const r = (await e.container.wait({ abortSignal: this.abort.signal })) as { StatusCode?: number };
        if (this.closed) return;
        const ins = await e.container.inspect().catch(() => undefined);
        this.finish(e, ins?.State.ExitCode ?? r.StatusCode ?? null, ins?.State.FinishedAt);
        return;
      } catch (err) {
        if (this.closed) return;
        if (status(err) === 404) {
          this.finish(e, null, undefined, 'container removed');
          return;
        }
        await sleep(delay);
      }
    }
  }

  private finish(e: Entry, code: number | null, finishedAt?: string, reason?: string): void {
    if (e.info.state === 'exited') return;
    deleteNetns(e.info.netns);
    if (reason) e.reason = reason;
    Object.assign(e.info, { state: 'exited', exitCode: code, finishedAt: finishedAt && !finishedAt.startsWith('0001') ? finishedAt : new Date().toISOString() });
    if (e.reason) e.info.reason = e.reason;
    e.resolveDone();
    this.listeners.emit({ type: 'exit', task: { ...e.info }, exitCode: code, ...(e.reason ? { reason: e.reason } : {}) });
  }

  /** A container with our name from an earlier, interrupted start of the same task goes. */
  private async removeLeftover(name: string, id: string): Promise<void> {
    try {
      const c = await this.docker.getContainer(name).inspect();
      if (c.Config.Labels[LABEL.owner] !== this.owner || c.Config.Labels[LABEL.task] !== id) {
        throw new Error(`a container named ${name} exists and is not this task's (owner ${c.Config.Labels[LABEL.owner] ?? 'none'})`);
      }
      await this.docker.getContainer(name).remove({ force: true, v: true });
      deleteNetns(name);
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
  }

  private async ensureImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
    if (!this.pull || /^(sha256:)?[0-9a-f]{12,64}$/.test(image)) throw new Error(`image ${image} is not present (and is not pulled)`);
    const stream = await this.docker.pull(image);
    await new Promise<void>((resolve, reject) => this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
  }

  private mustGet(id: string): Entry {
    const e = this.tasks.get(id);
    if (!e) throw new Error(`no task ${id} in the docker runtime`);
    return e;
  }
}

/** Docker's multiplexed log stream (no TTY): 8-byte headers [stream, 0, 0, 0, size32be]. */
export function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const kind = buf[off];
    const size = buf.readUInt32BE(off + 4);
    if (kind === undefined || kind > 2 || buf[off + 1] !== 0) return buf.toString('utf8'); // not multiplexed (TTY)
    parts.push(buf.subarray(off + 8, off + 8 + size));
    off += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
