// On-disk task records of the netns runtime: STATE_DIR/<task id>/task.json next to the task's
// resolv.conf, hosts, log files and exit code. The record is written BEFORE the namespace is created,
// so every namespace this runtime makes is findable from its state directory after a crash.
import fs from 'node:fs';
import path from 'node:path';

export interface NetnsTaskRecord {
  version: 1;
  id: string;
  name: string;
  service?: string;
  netns: string;
  hostname: string;
  /** creating: record written, process not yet started; running; exited */
  state: 'creating' | 'running' | 'exited';
  pid?: number;
  pgid?: number;
  /** /proc/PID/stat start time: guards against PID reuse when adopting */
  procStart?: number;
  /** "net:[INODE]" of the task namespace: the process must still be in it to be adopted */
  netnsId?: string;
  startedAt: string;
  finishedAt?: string;
  exitCode?: number | null;
  reason?: string;
}

export function taskDir(stateDir: string, id: string): string {
  return path.join(stateDir, id);
}

export function writeRecord(dir: string, rec: NetnsTaskRecord): void {
  // write + rename: a crash never leaves a half-written record
  const tmp = path.join(dir, 'task.json.tmp');
  fs.writeFileSync(tmp, `${JSON.stringify(rec, null, 1)}\n`);
  fs.renameSync(tmp, path.join(dir, 'task.json'));
}

export function readRecord(dir: string): NetnsTaskRecord | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(dir, 'task.json'), 'utf8')) as Partial<NetnsTaskRecord>;
    if (v.version !== 1 || typeof v.id !== 'string' || typeof v.netns !== 'string' || typeof v.state !== 'string') return undefined;
    return v as NetnsTaskRecord;
  } catch {
    return undefined;
  }
}

/** The status the task's wrapper shell wrote when its command ended, if it got that far. */
export function readExitFile(dir: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(path.join(dir, 'exitcode'), 'utf8').trim(), 10);
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Replaces a bind-mounted file's content in place. A rename would swap the inode and the task,
 * which has the old inode mounted over /etc/resolv.conf, would never see the change.
 */
export function rewriteInPlace(file: string, content: string): void {
  fs.writeFileSync(file, content, { flag: 'r+' });
  fs.truncateSync(file, Buffer.byteLength(content));
}
