// Throwaway namespaces for kernel-tier tests. Names start with "mt" (the runner fails a tier that
// leaves any mt* namespace behind) and are removed in teardown even when the test fails.
import { execFileSync } from 'node:child_process';
import { createNetns, deleteNetns, Rtnl } from '../../dataplane/netlink/index.js';

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

let counter = 0;

export function uniqueName(tag: string): string {
  return `mt${process.pid % 100000}${tag}${counter++}`;
}

/** Creates a namespace with loopback up; removed at the end of the test. */
export function tempNetns(t: Teardown, tag = 'n'): string {
  const name = uniqueName(tag);
  deleteNetns(name);
  createNetns(name);
  t.teardown(() => {
    deleteNetns(name);
  });
  const r = Rtnl.open(name);
  try {
    r.setLink(r.mustLink('lo').index, { up: true });
  } finally {
    r.close();
  }
  return name;
}

/** JSON view of iproute2's output inside a namespace: the outside check of what we programmed. */
export function ipJson<T = unknown>(netns: string | undefined, ...args: string[]): T {
  const cmd = args[0] === 'bridge' ? 'bridge' : 'ip';
  const rest = args[0] === 'bridge' ? args.slice(1) : args;
  const nsArgs = netns ? ['-n', netns] : [];
  const out = execFileSync(cmd, [...nsArgs, '-j', ...rest], { encoding: 'utf8' });
  return (out.trim() ? JSON.parse(out) : []) as T;
}

export function inNetns(netns: string, cmd: string[], opts: { input?: string; timeout?: number } = {}): string {
  return execFileSync('ip', ['netns', 'exec', netns, ...cmd], { encoding: 'utf8', timeout: opts.timeout ?? 10_000, input: opts.input });
}
