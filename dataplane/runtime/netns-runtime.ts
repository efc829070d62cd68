// The built-in `netns` runtime: a task is a process tree in its own named network namespace and its
// own mount and UTS namespaces, with no image and no container engine.
//
// How a task is spawned (one exec chain, no extra resident process):
//   nsenter --net=/run/netns/NS -- unshare --mount --uts --propagation private -- /bin/sh -c WRAPPER ...
// nsenter and unshare exec (neither forks here), so the PID we spawn ends up as the wrapper shell.
// We use nsenter rather than `ip netns exec` because the latter also bind-mounts /etc/netns/NS/* and
// remounts /sys, i.e. it keeps per-task files on the host's /etc; our files live in the state dir.
// The mount namespace is private (propagation private), so the wrapper's bind mounts of the task's
// resolv.conf and hosts over /etc/* are seen by the task only, never by the host.
//
// The wrapper runs the command in the foreground (not exec) with a no-op TERM trap, then writes the
// command's exit status to STATE/exitcode: that file is how a restarted meshd learns the exit code of
// a task it did not spawn (it cannot wait(2) on it). The trap is reset by exec, so the command sees
// SIGTERM normally.
//
// Killing: the task is spawned with setsid (detached), so the wrapper leads a fresh process group;
// stop sends SIGTERM then SIGKILL to the whole group, and when the task ends (whyever) any straggler
// in the group, and anything else still inside the task's network namespace (a setsid daemon that
// escaped the group), is SIGKILLed before the namespace is deleted. We do not use a PID namespace:
// its init ignores SIGTERM unless it installs a handler, which would turn every stop of a plain
// command into a SIGKILL after the grace period.
//
// Restart safety: STATE_DIR/<id>/task.json is written before the namespace exists and records
// (pid, start time, netns inode). adopt() re-attaches to live tasks whose process still matches all
// three and cleans up the rest; stdout/stderr go straight to a file, so a task survives meshd.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createNetns, deleteNetns, listNetns, netnsPath, Rtnl } from '../netlink/index.js';
import { DEFAULT_LOG_LIMIT, openLogForChild, readLog, rotateIfNeeded } from './logfile.js';
import { isSameProcess, killGroup, killNetnsMembers, netnsIdOfFile, netnsOfPid, procStat, signalExitCode } from './procfs.js';
import { readExitFile, readRecord, rewriteInPlace, taskDir, writeRecord, type NetnsTaskRecord } from './records.js';
import {
  checkTaskId, DEFAULT_RESOLV_CONF, DEFAULT_TASK_PREFIX, defaultHosts, hostnameFor, Listeners, taskEnv, taskObjectName,
  type AdoptReport, type LogOptions, type StartRequest, type TaskEvent, type TaskInfo, type TaskRuntime, type TaskFiles,
} from './types.js';
import { findExecutable } from './which.js';

export interface NetnsRuntimeOptions {
  /** This meshd's own directory for task records, files and logs (one subdirectory per task). */
  stateDir: string;
  /** Namespace name prefix (default "msh-t-"; tests use "mt..."). */
  prefix?: string;
  /** Rotate a task's log when it passes this size (default 1 MiB; one rotated file is kept). */
  logLimitBytes?: number;
  /** How often adopted tasks are checked for exit and logs for size (default 250 ms). */
  pollMs?: number;
  /**
   * adopt() also deletes namespaces with our prefix that no record in stateDir knows (and kills what
   * runs in them). Only safe when no other meshd on this host uses the same prefix (the lab runs
   * several meshd per host: give each its own prefix or leave this off).
   */
  sweepUnknownNamespaces?: boolean;
}

// The TERM trap comes first: a stop that lands while the wrapper is still mounting must not kill the
// wrapper alone (it leads the group; we would lose the exit code) nor be lost (the command would then
// start and run until SIGKILL); the flag makes the wrapper exit 143 instead of starting the command.
const WRAPPER = [
  'd=$1; h=$2; m=$3; shift 3; stopping=',
  'trap stopping=1 TERM INT HUP',
  'fail() { echo "meshd: $*" >&2; echo 125 > "$d/exitcode"; exit 125; }',
  '"$m" --bind "$d/resolv.conf" /etc/resolv.conf || fail "cannot bind-mount /etc/resolv.conf"',
  '"$m" --bind "$d/hosts" /etc/hosts || fail "cannot bind-mount /etc/hosts"',
  'echo "$h" > /proc/sys/kernel/hostname || fail "cannot set the hostname"',
  'if [ -n "$stopping" ]; then echo 143 > "$d/exitcode"; exit 143; fi',
  '"$@"',
  'rc=$?',
  'echo $rc > "$d/exitcode"',
  'exit $rc',
].join('\n');

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Entry {
  rec: NetnsTaskRecord;
  dir: string;
  adopted: boolean;
  child?: ChildProcess;
  /** the last signal we sent: the exit code when the wrapper died before writing one */
  sentSignal?: NodeJS.Signals;
  reason?: string;
  done: Promise<void>;
  resolveDone: () => void;
}

export class NetnsRuntime implements TaskRuntime {
  readonly kind = 'netns' as const;
  private readonly stateDir: string;
  private readonly prefix: string;
  private readonly logLimit: number;
  private readonly pollMs: number;
  private readonly sweepUnknown: boolean;
  private readonly tasks = new Map<string, Entry>();
  private readonly listeners = new Listeners<TaskEvent>();
  private readonly nsenter = findExecutable('nsenter');
  private readonly unshare = findExecutable('unshare');
  // by absolute path: the task's PATH (from its spec) must not decide which mount the wrapper runs
  private readonly mount = findExecutable('mount');
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: NetnsRuntimeOptions) {
    this.stateDir = path.resolve(opts.stateDir);
    this.prefix = opts.prefix ?? DEFAULT_TASK_PREFIX;
    this.logLimit = opts.logLimitBytes ?? DEFAULT_LOG_LIMIT;
    this.pollMs = opts.pollMs ?? 250;
    this.sweepUnknown = opts.sweepUnknownNamespaces ?? false;
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
  }

  subscribe(listener: (e: TaskEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  inspect(id: string): TaskInfo | undefined {
    const e = this.tasks.get(id);
    return e && this.info(e);
  }

  list(): TaskInfo[] {
    return [...this.tasks.values()].map((e) => this.info(e));
  }

  /** Path of the task's combined log file (for followers such as `service logs -f`). */
  logFile(id: string): string {
    return path.join(taskDir(this.stateDir, id), 'log');
  }

  async logs(id: string, opts: LogOptions = {}): Promise<string> {
    const e = this.mustGet(id);
    rotateIfNeeded(path.join(e.dir, 'log'), this.logLimit);
    return readLog(path.join(e.dir, 'log'), opts.tail);
  }

  async updateFiles(id: string, files: TaskFiles): Promise<void> {
    const e = this.mustGet(id);
    if (files.resolvConf !== undefined) rewriteInPlace(path.join(e.dir, 'resolv.conf'), files.resolvConf);
    if (files.hostsFile !== undefined) rewriteInPlace(path.join(e.dir, 'hosts'), files.hostsFile);
  }

  async start(req: StartRequest): Promise<TaskInfo> {
    if (this.closed) throw new Error('netns runtime is closed');
    checkTaskId(req.id);
    const argv = req.spec.command;
    if (!argv || argv.length === 0) throw new TypeError(`task ${req.id}: the netns runtime needs spec.command (an argv)`);
    if (this.tasks.has(req.id)) throw new Error(`task ${req.id} already exists in this runtime (remove it first)`);
    const hostname = hostnameFor(req);
    const ns = taskObjectName(this.prefix, req.id);
    const dir = taskDir(this.stateDir, req.id);
    if (fs.existsSync(dir)) throw new Error(`task ${req.id}: ${dir} already exists (adopt() or remove() it first)`);
    fs.mkdirSync(dir, { mode: 0o700 });
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const rec: NetnsTaskRecord = {
      version: 1, id: req.id, name: req.name, netns: ns, hostname, state: 'creating', startedAt: new Date().toISOString(),
      ...(req.service !== undefined ? { service: req.service } : {}),
    };
    const entry: Entry = { rec, dir, adopted: false, done, resolveDone };
    let nsCreated = false;
    try {
      fs.writeFileSync(path.join(dir, 'resolv.conf'), req.resolvConf ?? DEFAULT_RESOLV_CONF);
      fs.writeFileSync(path.join(dir, 'hosts'), req.hostsFile ?? defaultHosts(hostname));
      writeRecord(dir, rec);
      createNetns(ns);
      nsCreated = true;
      const r = Rtnl.open(ns);
      try {
        r.setLink(r.mustLink('lo').index, { up: true });
      } finally {
        r.close();
      }
      rec.netnsId = netnsIdOfFile(netnsPath(ns));
      if (req.prepare) await req.prepare(ns);
      const child = await this.spawnTask(entry, argv, { PATH: DEFAULT_PATH, ...taskEnv(req, hostname) });
      entry.child = child;
      const pid = child.pid!;
      const st = procStat(pid);
      Object.assign(rec, { state: 'running', pid, pgid: st?.pgid ?? pid, procStart: st?.startTime });
      writeRecord(dir, rec);
    } catch (err) {
      // Nothing half-made survives a failed start: the caller gets the error, the host gets no leftovers.
      if (entry.child?.pid) killGroup(entry.child.pid, 'SIGKILL');
      if (nsCreated) this.destroyNetns(rec);
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    this.tasks.set(req.id, entry);
    this.ensureTimer();
    const info = this.info(entry);
    this.listeners.emit({ type: 'start', task: info });
    return info;
  }

  private spawnTask(entry: Entry, argv: string[], env: Record<string, string>): Promise<ChildProcess> {
    const { dir, rec } = entry;
    const logFd = openLogForChild(path.join(dir, 'log'));
    try {
      const child = spawn(
        this.nsenter,
        [`--net=${netnsPath(rec.netns)}`, '--', this.unshare, '--mount', '--uts', '--propagation', 'private', '--', '/bin/sh', '-c', WRAPPER, 'meshd-task', dir, rec.hostname, this.mount, ...argv],
        // detached = setsid: the task leads its own process group and session, apart from meshd's.
        { detached: true, stdio: ['ignore', logFd, logFd], env, cwd: '/' },
      );
      return new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => {
          child.off('error', reject);
          child.on('error', () => undefined); // later errors (kill of a gone process) are not fatal
          child.once('exit', (code, signal) => {
            const status = code ?? (signal ? signalExitCode(signal) : null);
            void this.finish(entry, status);
          });
          resolve(child);
        });
      });
    } finally {
      fs.closeSync(logFd); // the child has its own copy
    }
  }

  async stop(id: string, graceMs: number): Promise<number | null> {
    const e = this.mustGet(id);
    if (e.rec.state !== 'running') return e.rec.exitCode ?? null;
    const pgid = e.rec.pgid ?? e.rec.pid;
    if (pgid === undefined) return null;
    e.reason ??= 'stopped';
    e.sentSignal = 'SIGTERM';
    killGroup(pgid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      e.done.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, graceMs)))),
    ]);
    clearTimeout(timer);
    if (timedOut && e.rec.state === 'running') {
      e.reason = `killed after ${graceMs} ms grace`;
      e.sentSignal = 'SIGKILL';
      killGroup(pgid, 'SIGKILL');
      if (e.adopted) this.poll(); // do not wait a whole poll period for a process we just killed
    }
    await e.done;
    return e.rec.exitCode ?? null;
  }

  async remove(id: string): Promise<void> {
    const e = this.tasks.get(id);
    if (!e) {
      // Not ours in memory, but maybe on disk (never adopted): clean it all the same.
      const rec = readRecord(taskDir(this.stateDir, id));
      if (rec) this.destroyNetns(rec);
      fs.rmSync(taskDir(this.stateDir, id), { recursive: true, force: true });
      return;
    }
    if (e.rec.state === 'running') await this.stop(id, 0);
    await e.done;
    this.destroyNetns(e.rec);
    fs.rmSync(e.dir, { recursive: true, force: true });
    this.tasks.delete(id);
  }

  async adopt(): Promise<AdoptReport> {
    const report: AdoptReport = { adopted: [], exited: [], removed: [] };
    const known = new Set<string>();
    for (const name of fs.readdirSync(this.stateDir)) {
      const dir = path.join(this.stateDir, name);
      const rec = readRecord(dir);
      if (!rec || rec.id !== name) {
        // a crash before the first record write: nothing else was made yet
        fs.rmSync(dir, { recursive: true, force: true });
        report.removed.push(`state ${dir} (no valid task record)`);
        continue;
      }
      known.add(rec.netns);
      if (this.tasks.has(rec.id)) continue;
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => (resolveDone = r));
      const entry: Entry = { rec, dir, adopted: true, done, resolveDone };
      this.tasks.set(rec.id, entry);
      const live =
        rec.state === 'running' && rec.pid !== undefined && rec.procStart !== undefined &&
        isSameProcess(rec.pid, rec.procStart) && netnsOfPid(rec.pid) === rec.netnsId;
      if (live) {
        report.adopted.push(this.info(entry));
      } else if (rec.state === 'exited') {
        this.destroyNetns(rec); // idempotent: a crash may have come between exit and cleanup
        resolveDone();
        report.exited.push(this.info(entry));
      } else {
        entry.reason = rec.state === 'creating' ? 'start interrupted (meshd restarted)' : 'exited while meshd was down';
        await this.finish(entry, null, false);
        report.exited.push(this.info(entry));
      }
    }
    if (this.sweepUnknown) {
      for (const ns of listNetns()) {
        if (!ns.startsWith(this.prefix) || known.has(ns)) continue;
        this.destroyNetns({ netns: ns, netnsId: netnsIdOfFile(netnsPath(ns)) });
        report.removed.push(`netns ${ns} (no task record)`);
      }
    }
    this.ensureTimer();
    return report;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const e of this.tasks.values()) {
      // Let meshd exit without taking the tasks along; the next instance adopts them.
      e.child?.removeAllListeners('exit');
      e.child?.unref();
    }
    this.tasks.clear();
  }

  /** The task ended (or was found dead): record why, kill stragglers, delete its namespace, tell. */
  private async finish(e: Entry, waitStatus: number | null, emit = true): Promise<void> {
    if (e.rec.state === 'exited') return;
    const fromFile = readExitFile(e.dir);
    let code = fromFile ?? waitStatus;
    if (code === null && e.sentSignal) code = signalExitCode(e.sentSignal);
    // Stragglers of a task we spawned: its group (the number cannot be reused while members live).
    // For adopted tasks the group may be long gone and its number reused, so there only the
    // namespace sweep in destroyNetns runs; it catches the same stragglers, as they share the netns.
    const pgid = e.rec.pgid ?? e.rec.pid;
    if (e.child && pgid !== undefined) killGroup(pgid, 'SIGKILL');
    this.destroyNetns(e.rec);
    Object.assign(e.rec, { state: 'exited', exitCode: code, finishedAt: new Date().toISOString() });
    if (e.reason) e.rec.reason = e.reason;
    try {
      writeRecord(e.dir, e.rec);
    } catch {
      // removed under us (remove() racing a natural exit): nothing left to record
    }
    e.resolveDone();
    if (emit) this.listeners.emit({ type: 'exit', task: this.info(e), exitCode: code, ...(e.reason ? { reason: e.reason } : {}) });
  }

  /** SIGKILLs whatever still lives in the namespace, then deletes it. Idempotent. */
  private destroyNetns(rec: Pick<NetnsTaskRecord, 'netns' | 'netnsId'>): void {
    const id = netnsIdOfFile(netnsPath(rec.netns));
    // Only when the namespace file is the one we made: a reused name must not cost someone else's processes.
    if (id !== undefined && (rec.netnsId === undefined || id === rec.netnsId)) killNetnsMembers(id);
    deleteNetns(rec.netns);
  }

  private ensureTimer(): void {
    const running = [...this.tasks.values()].some((e) => e.rec.state === 'running');
    if (running && !this.timer && !this.closed) this.timer = setInterval(() => this.poll(), this.pollMs);
    if (!running && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Exit detection for tasks we did not spawn, and log rotation for all. */
  private poll(): void {
    for (const e of this.tasks.values()) {
      if (e.rec.state !== 'running') continue;
      try {
        rotateIfNeeded(path.join(e.dir, 'log'), this.logLimit);
      } catch {
        // the directory went away with remove(); finish() handles the rest
      }
      if (e.adopted && !(e.rec.pid !== undefined && e.rec.procStart !== undefined && isSameProcess(e.rec.pid, e.rec.procStart))) {
        void this.finish(e, null);
      }
    }
    this.ensureTimer();
  }

  private info(e: Entry): TaskInfo {
    const r = e.rec;
    return {
      id: r.id, name: r.name, runtime: 'netns', state: r.state === 'running' ? 'running' : 'exited',
      netns: r.netns, netnsPath: netnsPath(r.netns), startedAt: r.startedAt, adopted: e.adopted,
      ...(r.service !== undefined ? { service: r.service } : {}),
      ...(r.pid !== undefined ? { pid: r.pid } : {}),
      ...(r.finishedAt !== undefined ? { finishedAt: r.finishedAt } : {}),
      ...(r.state === 'exited' ? { exitCode: r.exitCode ?? null } : {}),
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
    };
  }

  private mustGet(id: string): Entry {
    const e = this.tasks.get(id);
    if (!e) throw new Error(`no task ${id} in the netns runtime`);
    return e;
  }
}
