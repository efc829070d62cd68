// Cleaning the connections of a backend that left a frontend, so that its clients fail over at once
// instead of sending into a task that is gone. Filtered by the frontend, not just the backend: a
// client talking to the task's own address (bridged, but tracked under br_netfilter) is not ours
// to cut. Uses conntrack(8) (package conntrack, installed by bin/setup) in one process per batch.
import { ANY_ADDR, parseFrontendKey } from './model.js';
import { execIn } from './exec.js';

/** The conntrack(8) filter for one frontend's connections to one backend. */
export function conntrackFilter(key: string, ip: string): string[] {
  const m = parseFrontendKey(key);
  const args = ['-D'];
  if (m.proto !== 'any') args.push('-p', m.proto);
  if (m.addr !== ANY_ADDR) args.push('--orig-dst', m.addr);
  if (m.proto !== 'any') args.push('--orig-port-dst', String(m.port));
  args.push('--reply-src', ip);
  return args;
}

/** Deletes the tracked connections of each (frontend, backend); returns how many were deleted. */
export async function flushConntrack(netns: string, targets: readonly { key: string; ip: string }[]): Promise<number> {
  if (targets.length === 0) return 0;
  // Arguments are validated addresses, protocols and numbers (desired.ts), safe to join.
  const script = targets.map((t) => `conntrack ${conntrackFilter(t.key, t.ip).join(' ')} 2>&1`).join('; ');
  const r = await execIn(netns, ['sh', '-c', script]);
  if (/command not found|not found/.test(r.stdout + r.stderr) && !/flow entries/.test(r.stdout)) {
    throw new Error(`conntrack(8) is not installed: cannot clean connections of removed backends in ${netns} (bin/setup installs it)`);
  }
  let n = 0;
  for (const m of r.stdout.matchAll(/(\d+) flow entries have been deleted/g)) n += Number(m[1]);
  return n;
}
