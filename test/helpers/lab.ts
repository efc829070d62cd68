// Shared by the lab tests: meshctl as a user runs it (optionally against one node's daemon), and
// waiting for a condition within a stated budget.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeSocketPath } from '../../control/lab/daemons.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin');
export const MESHCTL = path.join(bin, 'meshctl.js');
export const WORKLOAD = path.join(bin, 'workload.js');

export interface Res {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], timeoutMs = 120_000): Promise<Res> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MESHCTL, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

/** meshctl against the daemon of node `n` (n1, n2...) of lab `prefix`. */
export const onNode = (prefix: string, n: string, ...args: string[]): Promise<Res> => cli(['-H', `unix://${nodeSocketPath(`${prefix}-${n}`)}`, ...args]);

/** As onNode, but a failure throws with meshctl's own message. */
export async function okOn(prefix: string, n: string, ...args: string[]): Promise<string> {
  const r = await onNode(prefix, n, ...args);
  if (r.code !== 0) throw new Error(`meshctl ${args.join(' ')} on ${n}: ${r.stderr}`);
  return r.stdout;
}

/** Polls fn (a throw counts as "not yet") until it gives a value, or fails after budgetMs. */
export async function until<T>(what: string, budgetMs: number, fn: () => Promise<T | undefined> | T | undefined, everyMs = 50): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const v = await Promise.resolve().then(fn).catch(() => undefined);
    if (v !== undefined) return { value: v, ms: Date.now() - t0 };
    if (Date.now() - t0 > budgetMs) throw new Error(`${what}: not within ${budgetMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
