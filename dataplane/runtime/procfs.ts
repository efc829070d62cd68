// Process identity and killing through /proc. A PID alone is not an identity (PIDs are reused), so a
// task record keeps (pid, start time); an adopted process must match both and live in the task's
// network namespace before we signal it.
import fs from 'node:fs';
import os from 'node:os';

export interface ProcStat {
  state: string;
  pgid: number;
  /** clock ticks since boot: with the PID, identifies one process for its whole life */
  startTime: number;
}

export function procStat(pid: number): ProcStat | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const pgid = Number(rest[2]);
  const startTime = Number(rest[19]);
  if (state === undefined || !Number.isFinite(pgid) || !Number.isFinite(startTime)) return undefined;
  return { state, pgid, startTime };
}

/** Alive and the same process (start time matches); zombies count as dead. */
export function isSameProcess(pid: number, startTime: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.startTime === startTime && s.state !== 'Z' && s.state !== 'X';
}

/** "net:[4026532000]" of a process, or undefined if it is gone. */
export function netnsOfPid(pid: number | 'self'): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** The same "net:[INODE]" form for a namespace file (e.g. /run/netns/NAME). */
export function netnsIdOfFile(file: string): string | undefined {
  try {
    return `net:[${fs.statSync(file).ino}]`;
  } catch {
    return undefined;
  }
}

/** Signals a whole process group; false when the group is already empty. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (pgid <= 1) throw new RangeError(`refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/**
 * SIGKILLs every process whose network namespace is netnsId: the catch-all for anything that left
 * the task's process group (setsid daemons). Never our own namespace. Returns the PIDs signalled.
 */
export function killNetnsMembers(netnsId: string): number[] {
  if (netnsId === netnsOfPid('self')) throw new Error('refusing to kill every process in our own network namespace');
  const killed: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid || netnsOfPid(pid) !== netnsId) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return killed;
}

/** 128 + signal number, the shell's convention for "killed by a signal". */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
