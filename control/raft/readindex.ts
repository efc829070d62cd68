// ReadIndex (Raft thesis §6.4): the leader records its commit index for a read, then confirms it is still
// leader by a heartbeat round acknowledged by a quorum. Any read confirmed that way may be served once
// the serving node has applied up to the recorded index. Requests are confirmed in arrival order, so an
// ack for a later request confirms every earlier one too.
import type { NodeId } from './types.js';

export interface ReadRequest {
  readonly index: number;
  /** Node that asked (the leader itself for local reads). */
  readonly from: NodeId;
  readonly context: string;
  readonly acks: Set<NodeId>;
}

export class ReadOnly {
  private pending = new Map<string, ReadRequest>();
  private queue: string[] = [];

  add(index: number, from: NodeId, context: string): void {
    if (this.pending.has(context)) return;
    this.pending.set(context, { index, from, context, acks: new Set() });
    this.queue.push(context);
  }

  /** Record that `from` acknowledged the heartbeat carrying `context`; returns the acks, if pending. */
  recvAck(from: NodeId, context: string): ReadonlySet<NodeId> | null {
    const r = this.pending.get(context);
    if (!r) return null;
    r.acks.add(from);
    return r.acks;
  }

  /** Pop every request up to and including `context`. */
  advance(context: string): ReadRequest[] {
    const i = this.queue.indexOf(context);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: ReadRequest[] = [];
    for (const c of done) {
      const r = this.pending.get(c);
      this.pending.delete(c);
      if (r) out.push(r);
    }
    return out;
  }

  lastPendingContext(): string {
    return this.queue.length ? this.queue[this.queue.length - 1]! : '';
  }

  size(): number {
    return this.queue.length;
  }
}
