// Per-task log files for netns tasks. The task writes straight into the file (an O_APPEND descriptor
// as its stdout and stderr), not through a pipe to meshd: a pipe would break (SIGPIPE) when meshd
// restarts, and the task must outlive meshd. Rotation is therefore "copytruncate": when the file
// passes the limit, meshd copies it to FILE.1 and truncates it; O_APPEND writers simply carry on at
// the new end. Bounded to about 2 x limit (plus what is written between two checks); a write that
// lands between the copy and the truncate can be lost, the usual copytruncate trade-off.
import fs from 'node:fs';

export const DEFAULT_LOG_LIMIT = 1024 * 1024;

/** Opens the log for a child's stdout/stderr; the caller closes its copy after spawning. */
export function openLogForChild(file: string): number {
  return fs.openSync(file, 'a', 0o640);
}

/** Rotates once the file exceeds limit bytes; returns true if it did. */
export function rotateIfNeeded(file: string, limit: number): boolean {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return false;
  }
  if (size <= limit) return false;
  fs.copyFileSync(file, `${file}.1`);
  fs.truncateSync(file, 0);
  return true;
}

/** Both files, oldest first, optionally only the last `tail` lines. */
export function readLog(file: string, tail?: number): string {
  let text = '';
  for (const f of [`${file}.1`, file]) {
    try {
      text += fs.readFileSync(f, 'utf8');
    } catch {
      // not there (yet)
    }
  }
  return tail === undefined ? text : lastLines(text, tail);
}

export function lastLines(text: string, n: number): string {
  if (n <= 0) return '';
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
  const kept = lines.slice(-n).join('\n');
  return trailing === '' ? `${kept}\n` : kept;
}
