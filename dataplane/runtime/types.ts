// The contract between the node agent and a task executor. Both runtimes (netns, docker) implement
// TaskRuntime; the agent never needs to know which one runs a task beyond picking it by spec.runtime.

/**
 * What a runtime needs from a task's spec. Structurally a subset of control/store's TaskSpec, so the
 * agent passes task.spec as is (the dataplane does not import the control plane).
 */
export interface RuntimeSpec {
  /** netns: argv to run (required); docker: optional override of the image's command */
  command?: string[];
  /** docker: image reference or ID (required) */
  image?: string;
  env?: Record<string, string>;
}

export interface StartRequest {
  /** cluster-unique task ID: [A-Za-z0-9][A-Za-z0-9_.-]*; its first 12 characters name the namespace */
  id: string;
  /** human name, e.g. "web.3"; given to the task as MESH_TASK_NAME */
  name: string;
  /** service name or ID, kept as a label (docker) / in the record (netns) for `ps` and cleanup */
  service?: string;
  spec: RuntimeSpec;
  /** extra environment, on top of spec.env (agent-provided: MESH_TASK_SLOT, ...) */
  env?: Record<string, string>;
  /** contents of the task's /etc/resolv.conf; default DEFAULT_RESOLV_CONF (embedded DNS) */
  resolvConf?: string;
  /** contents of the task's /etc/hosts; default: localhost lines plus the hostname */
  hostsFile?: string;
  /** hostname inside the task; default the first 12 characters of the ID (as Docker does) */
  hostname?: string;
  /**
   * Called with the task's namespace name once it exists: the agent attaches the task's networks
   * here. netns runtime: before the command runs, so the task starts with its interfaces. docker:
   * just after the container starts (Docker makes the namespace only then). A throw fails the start.
   */
  prepare?: (netns: string) => Promise<void>;
}

export type TaskRunState = 'running' | 'exited';

export interface TaskInfo {
  id: string;
  name: string;
  service?: string;
  runtime: 'netns' | 'docker';
  state: TaskRunState;
  /**
   * Name of the task's network namespace under /run/netns (what Rtnl.open, createVeth({peerNetns})
   * and moveLink take). Present while the task runs; removed when it exits.
   */
  netns: string;
  /**
   * A path that opens the task's network namespace: /run/netns/NAME for netns tasks,
   * /proc/PID/ns/net for docker tasks (their namespace belongs to Docker; NAME is a bind mount of it).
   */
  netnsPath: string;
  /** main process in the host's PID namespace (netns: the group leader; docker: the container's init) */
  pid?: number;
  startedAt: string;
  finishedAt?: string;
  /** once exited: the command's exit status (128+N when killed by signal N); null when it was lost */
  exitCode?: number | null;
  /** why it exited, if not by itself: "stopped", "killed after grace", "start failed: ..." */
  reason?: string;
  /** true when this runtime instance found the task already running (meshd restarted) */
  adopted: boolean;
}

export type TaskEvent =
  | { type: 'start'; task: TaskInfo }
  | { type: 'exit'; task: TaskInfo; exitCode: number | null; reason?: string };

export interface AdoptReport {
  /** still running: now watched by this instance, exit events will follow */
  adopted: TaskInfo[];
  /** exited while nobody watched (or died half-started): cleaned up, kept for inspect/logs until remove */
  exited: TaskInfo[];
  /** things removed because nothing owned them (namespaces, containers): human-readable */
  removed: string[];
}

/** New contents for a running task's resolv.conf and/or hosts (e.g. once its IPs are known). */
export interface TaskFiles {
  resolvConf?: string;
  hostsFile?: string;
}

export interface LogOptions {
  /** only the last N lines */
  tail?: number;
}

/**
 * A task executor. Lifecycle: start -> (exit event) -> remove. stop() is idempotent; remove() stops
 * first if needed and deletes everything the task left (namespace, state, logs).
 */
export interface TaskRuntime {
  readonly kind: 'netns' | 'docker';
  /** Starts a task; resolves once its process runs (and its namespace exists). */
  start(req: StartRequest): Promise<TaskInfo>;
  /** SIGTERM to the task, SIGKILL after graceMs; resolves with the exit code once it is gone. */
  stop(id: string, graceMs: number): Promise<number | null>;
  /** Stops (grace 0) if running and removes all of the task's traces. Unknown IDs are a no-op. */
  remove(id: string): Promise<void>;
  inspect(id: string): TaskInfo | undefined;
  list(): TaskInfo[];
  /** The task's combined stdout and stderr (bounded: the current and one rotated file). */
  logs(id: string, opts?: LogOptions): Promise<string>;
  /**
   * Rewrites the task's /etc/resolv.conf or /etc/hosts while it runs (the files are bind mounts of
   * per-task files that meshd owns, updated in place so the mount sees the change).
   */
  updateFiles(id: string, files: TaskFiles): Promise<void>;
  /** Subscribes to start/exit events; returns the unsubscribe function. */
  subscribe(listener: (e: TaskEvent) => void): () => void;
  /** After a meshd restart: finds this node's tasks, watches the live ones, cleans up the dead. */
  adopt(): Promise<AdoptReport>;
  /** Stops watching (timers, streams) without touching any task: they keep running for a later adopt. */
  close(): Promise<void>;
}

/** Embedded DNS at 127.0.0.11 (dns/ listens there in every task's namespace), as Docker does. */
export const DEFAULT_RESOLV_CONF = 'nameserver 127.0.0.11\noptions ndots:0\n';

/** Production prefix for task namespaces and containers; "mt" is reserved for tests. */
export const DEFAULT_TASK_PREFIX = 'msh-t-';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkTaskId(id: string): void {
  if (!ID_RE.test(id)) throw new TypeError(`task ID "${id}" is not valid (letters, digits, . _ -; at most 128)`);
}

/** prefix + the ID's first 12 characters: the namespace (and container) name of a task. */
export function taskObjectName(prefix: string, id: string): string {
  return `${prefix}${id.slice(0, 12)}`;
}

export function defaultHosts(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}

export function hostnameFor(req: StartRequest): string {
  const h = req.hostname ?? req.id.slice(0, 12);
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(h)) throw new TypeError(`hostname "${h}" is not valid`);
  return h;
}

/** The environment every task gets, whatever the runtime: spec env, then agent env, then ours. */
export function taskEnv(req: StartRequest, hostname: string): Record<string, string> {
  return {
    ...(req.spec.env ?? {}),
    ...(req.env ?? {}),
    MESH_TASK_ID: req.id,
    MESH_TASK_NAME: req.name,
    HOSTNAME: hostname,
  };
}

/** A small synchronous listener set (no EventEmitter: typed, and a throwing listener cannot break us). */
export class Listeners<E> {
  private readonly set = new Set<(e: E) => void>();
  add(fn: (e: E) => void): () => void {
    this.set.add(fn);
    return () => this.set.delete(fn);
  }
  emit(e: E): void {
    for (const fn of this.set) {
      try {
        fn(e);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
