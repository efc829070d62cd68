// What managers propose to Raft. A command is a transaction: every op applies or none does.
import type { Kind, KindMap } from './objects.js';

export type Op =
  | { op: 'create'; kind: Kind; object: KindMap[Kind] }
  /** Replace the object; with `version`, only if it is still at that version (compare-and-set). */
  | { op: 'update'; kind: Kind; object: KindMap[Kind]; version?: number }
  | { op: 'delete'; kind: Kind; id: string; version?: number };

export interface Command {
  /** Matches the applied result to the caller waiting for it (any manager may propose). */
  requestId: string;
  /** Proposer's clock: apply must not read the local clock, or replicas would differ. */
  at: string;
  ops: Op[];
}

export function encodeCommand(c: Command): Uint8Array {
  return Buffer.from(JSON.stringify(c), 'utf8');
}

export function decodeCommand(data: Uint8Array): Command {
  const v = JSON.parse(Buffer.from(data).toString('utf8')) as Command;
  if (!v || typeof v.requestId !== 'string' || !Array.isArray(v.ops)) throw new Error('malformed store command');
  return v;
}
