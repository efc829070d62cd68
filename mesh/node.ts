// One gossip member: SWIM membership plus its network tables, still pure (no clock, no sockets).
import type { MeshConfig } from './config.js';
import { Membership } from './membership.js';
import type { Addr, Message, Outgoing, Via } from './messages.js';
import { Sfc32, type Rng } from './rng.js';
import { Tables } from './tables.js';

export interface MeshNodeOptions {
  name: string;
  addr: Addr;
  now: number;
  seed?: number;
  rng?: Rng;
  config?: Partial<MeshConfig>;
  meta?: Uint8Array;
  incarnation?: number;
}

export class MeshNode {
  readonly members: Membership;
  readonly tables: Tables;

  constructor(o: MeshNodeOptions) {
    const rng = o.rng ?? new Sfc32(o.seed ?? hashName(o.name));
    this.members = new Membership({ name: o.name, addr: o.addr, rng, now: o.now, config: o.config ?? {}, ...(o.meta ? { meta: o.meta } : {}), ...(o.incarnation !== undefined ? { incarnation: o.incarnation } : {}) });
    this.tables = new Tables(this.members);
  }

  get name(): string {
    return this.members.name;
  }

  receive(now: number, msgs: readonly Message[], via: Via): void {
    this.members.receive(now, msgs, via);
  }

  tick(now: number): void {
    this.members.tick(now);
  }

  nextWake(): number {
    return this.members.nextWake();
  }

  drain(): Outgoing[] {
    return this.members.drain();
  }
}

/** FNV-1a, so a node's default seed follows from its name. */
export function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}
