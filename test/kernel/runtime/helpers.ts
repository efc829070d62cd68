// Shared bits of the runtime tests: a per-test runtime prefix and state directory that are always
// cleaned, polling, and the paths of the workload entry.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deleteNetns, listNetns } from '../../../dataplane/netlink/index.js';
import type { TaskRuntime } from '../../../dataplane/runtime/index.js';
import { uniqueName } from '../../helpers/netns.js';

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/** dist/test/kernel/runtime -> repository root (bin/workload.js lives there). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const WORKLOAD = path.join(REPO, 'bin', 'workload.js');

export interface Scratch {
  /** namespace/container prefix, starts with "mt" (the runner's leak check) */
  prefix: string;
  stateDir: string;
}

/** A prefix and state dir for one test; teardown removes every task of rts and checks for leftovers. */
export function scratch(t: Teardown, tag: string, rts: () => TaskRuntime[]): Scratch {
  const prefix = `${uniqueName(tag)}-`;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtrt-'));
  t.teardown(async () => {
    for (const rt of rts()) {
      for (const task of rt.list()) await rt.remove(task.id).catch(() => undefined);
      await rt.close();
    }
    // Whatever the runtimes left is a bug: record it for the closing check, then remove it anyway.
    for (const ns of leftoverNetns(prefix)) {
      leaks.push(ns);
      deleteNetns(ns);
    }
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  return { prefix, stateDir };
}

/** Namespaces found (and removed) by a teardown: a test at the end of each file asserts none. */
export const leaks: string[] = [];

export function leftoverNetns(prefix: string): string[] {
  return listNetns().filter((n) => n.startsWith(prefix));
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}
