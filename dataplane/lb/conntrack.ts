// Cleaning the connections of a backend that left a frontend, so that its clients fail over at once
// instead of sending into a task that is gone. Filtered by the frontend, not just the backend: a
// client talking to the task's own address (bridged, but tracked under br_netfilter) is not ours
// to cut. Done over ctnetlink (ctnetlink.ts: one dump, one batch of deletions, no process);
// conntrackFilter() is the same filter as conntrack(8) arguments, for checking by hand and the
// kernel test that compares the two.
import { ANY_ADDR, parseFrontendKey } from './model.js';
import { deleteConnections } from './ctnetlink.js';

/** The conntrack(8) -D arguments for one frontend's connections to one backend. */
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
  return deleteConnections(netns, targets);
}
