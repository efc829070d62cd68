// A tiny synchronous network of RawNodes for rule-by-rule unit tests: messages are queued and
// delivered FIFO, a filter can drop or inspect them.
import { RawNode } from '../../../control/raft/node.js';
import { MemoryStorage, bootstrapStorage } from '../../../control/raft/storage.js';
import { seededRandom } from '../../../control/raft/rand.js';
import { decodeConfChange, type Message, type NodeId, type ReadState } from '../../../control/raft/types.js';
import type { Config } from '../../../control/raft/config.js';

export interface TestNode {
  rn: RawNode;
  disk: MemoryStorage;
  applied: Uint8Array[];
  reads: ReadState[];
}

export class Net {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  sent: Message[] = [];

  constructor(ids: NodeId[], extra: Partial<Config> = {}, members: NodeId[] = ids) {
    for (const id of ids) this.add(id, members.includes(id) ? members : null, extra);
  }

  add(id: NodeId, bootstrap: NodeId[] | null, extra: Partial<Config> = {}): TestNode {
    const disk = new MemoryStorage();
    if (bootstrap) bootstrapStorage(disk, bootstrap);
    const rn = new RawNode({ id, storage: disk, random: seededRandom(id.length * 31 + id.charCodeAt(id.length - 1)), ...extra });
    const n: TestNode = { rn, disk, applied: [], reads: [] };
    this.nodes.set(id, n);
    this.process(id);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  process(id: NodeId): void {
    const n = this.node(id);
    while (n.rn.hasReady()) {
      const rd = n.rn.ready();
      if (rd.snapshot) n.disk.applySnapshot(rd.snapshot);
      n.disk.append(rd.entries);
      if (rd.hardState) n.disk.setHardState(rd.hardState);
      this.queue.push(...rd.messages);
      for (const e of rd.committedEntries) {
        if (e.type === 'conf') n.rn.applyConfChange(decodeConfChange(e.data));
        else if (e.data.length) n.applied.push(e.data);
      }
      n.reads.push(...rd.readStates);
      n.rn.advance(rd);
    }
  }

  /** Deliver queued messages until none are left (or the limit is hit). */
  deliverAll(limit = 10_000): number {
    let count = 0;
    while (this.queue.length && count < limit) {
      const m = this.queue.shift()!;
      count++;
      if (!this.filter(m)) continue;
      this.sent.push(m);
      const to = this.nodes.get(m.to);
      if (!to) continue;
      to.rn.step(m);
      this.process(m.to);
    }
    return count;
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.node(id).rn.tick();
      this.process(id);
    }
  }

  campaign(id: NodeId): void {
    this.node(id).rn.campaign();
    this.process(id);
    this.deliverAll();
  }

  propose(id: NodeId, data: string): boolean {
    const ok = this.node(id).rn.propose(new TextEncoder().encode(data));
    this.process(id);
    this.deliverAll();
    return ok;
  }

  state(id: NodeId): string {
    return this.node(id).rn.raft.state;
  }

  leaders(): NodeId[] {
    return [...this.nodes.keys()].filter((id) => this.state(id) === 'leader');
  }
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
