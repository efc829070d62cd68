// Runs a tool (nft) inside a named network namespace. nsenter rather than `ip netns exec`:
// the tools need only the network namespace, and ip's extra mount namespace and /sys remount cost
// a few milliseconds per call, which a one-backend change at scale cannot afford.
import { spawn } from 'node:child_process';
import { netnsPath } from '../../native/index.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ToolError extends Error {
  override name = 'ToolError';
  constructor(readonly tool: string, readonly netns: string, readonly code: number, readonly stderr: string) {
    super(`${tool} in namespace ${netns} failed (exit ${code}): ${stderr.trim().split('\n').slice(0, 6).join(' | ') || 'no message'}`);
  }
}

/** Runs argv in the namespace (null: ours); rejects only when the tool cannot be started. */
export function execIn(netns: string | null, argv: string[], input?: string): Promise<ExecResult> {
  const [cmd, args] = netns ? ['nsenter', [`--net=${netnsPath(netns)}`, '--', ...argv]] : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', (e) => reject(new Error(`cannot run ${argv[0]}: ${e.message} (is it installed? bin/setup installs it)`)));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    p.stdin.on('error', () => {}); // the tool may exit before reading everything; its exit code says why
    p.stdin.end(input ?? '');
  });
}

/** Like execIn, but a non-zero exit is a ToolError carrying the tool's own message. */
export async function mustExecIn(netns: string | null, argv: string[], input?: string): Promise<string> {
  const r = await execIn(netns, argv, input);
  if (r.code !== 0) throw new ToolError(argv[0]!, netns ?? 'host', r.code, r.stderr);
  return r.stdout;
}
