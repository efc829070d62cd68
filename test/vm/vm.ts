// The vm tier's access to test/vm/microvm.sh: a throw-away VM with Debian's stock kernel running a
// command in a chroot of this machine's root filesystem. Tests skip (with the reason) where no VM
// can run; the first use on a machine runs the one-time setup itself.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = path.join(ROOT, 'test/vm/microvm.sh');

/** null when a VM can run here, otherwise why not. */
export function vmUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'the vm tier needs root';
  const c = spawnSync('bash', [SCRIPT, 'check'], { encoding: 'utf8' });
  if (c.status === 0) return null;
  const s = spawnSync('bash', [SCRIPT, 'setup'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  if (s.status !== 0) return `microvm setup failed: ${(s.stderr || s.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  const again = spawnSync('bash', [SCRIPT, 'check'], { encoding: 'utf8' });
  return again.status === 0 ? null : `microvm cannot run: ${again.stdout.trim()}`;
}

export interface VmRun {
  code: number;
  output: string;
  ms: number;
}

/** Runs a shell command in a VM, in the checkout's directory. */
export function runInVm(command: string, opts: { env?: Record<string, string>; timeoutS?: number } = {}): VmRun {
  const t0 = Date.now();
  const args = [SCRIPT, 'run', '-t', String(opts.timeoutS ?? 420), '-C', ROOT];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('-e', `${k}=${v}`);
  const r = spawnSync('bash', [...args, '--', command], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, MESH_VM_QUIET: '1' } });
  return { code: r.status ?? 1, output: (r.stdout ?? '') + (r.stderr ?? ''), ms: Date.now() - t0 };
}
