// Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue): each item is piggybacked on
// outgoing packets until sent `limit` times; fewest-sent first (newest first among equals), so fresh
// news spreads before old news; a newer item with the same key (e.g. the same node) replaces the older.
//
// Stored lowest priority first (the array's end is the next to go), so enqueue is a push and a
// replaced item is only marked dead and dropped at the next take: both O(1), where a 1,000-member
// join or push/pull enqueues one item per member.
import { messageSize } from './codec.js';
import type { Message } from './messages.js';

interface Item {
  key: string;
  msg: Message;
  /** Encoded frame size (the budget is in bytes on the wire). */
  size: number;
  transmits: number;
  dead: boolean;
}

const NONE: Message[] = [];
/** Taken items during one take() (at most LIMITS.msgs). */
const scratch: (Item | undefined)[] = [];

export class BroadcastQueue {
  /** Sorted by priority, lowest first: transmits descending, then oldest first. */
  private items: Item[] = [];
  private readonly byKey = new Map<string, Item>();

  get length(): number {
    return this.byKey.size;
  }

  enqueue(key: string, msg: Message): void {
    const old = this.byKey.get(key);
    if (old) old.dead = true;
    const item: Item = { key, msg, size: messageSize(msg), transmits: 0, dead: false };
    this.byKey.set(key, item);
    this.items.push(item);
  }

  /**
   * Up to `maxMsgs` messages fitting in `budget` bytes (frame sizes); each taken item counts one send.
   * The result is a shared empty array when nothing is taken: do not mutate it.
   */
  take(budget: number, maxMsgs: number, limit: number): Message[] {
    if (this.byKey.size === 0 || maxMsgs <= 0) return NONE;
    const items = this.items;
    // Walk from the highest priority down, compacting the items not taken towards the end (they
    // keep their order) and collecting the taken ones (transmits + 1), then merge the two runs back
    // in place. No allocation but the result.
    let out: Message[] = NONE;
    let nTaken = 0;
    let w = items.length - 1;
    for (let i = items.length - 1; i >= 0; i--) {
      const it = items[i] as Item;
      if (it.dead) continue;
      if (out.length < maxMsgs && it.size <= budget) {
        budget -= it.size;
        if (out === NONE) out = [];
        out.push(it.msg);
        it.transmits++;
        if (it.transmits >= limit) { this.byKey.delete(it.key); it.dead = true; }
        else scratch[nTaken++] = it;
      } else items[w--] = it;
    }
    // items[w+1..] are the kept ones in ascending priority; scratch[0..nTaken) the taken ones in
    // descending priority. Merge into items[0..] in ascending priority (transmits descending); on
    // equal transmits a taken item ranks below one that was not taken. Writing never overtakes
    // reading: w + 1 >= nTaken.
    let a = w + 1, b = nTaken - 1, o = 0;
    const end = items.length;
    while (a < end || b >= 0) {
      const x = items[a], y = scratch[b];
      if (y === undefined || b < 0 || (x !== undefined && a < end && x.transmits > y.transmits)) { items[o++] = x as Item; a++; }
      else { items[o++] = y; b--; }
    }
    items.length = o;
    for (let i = 0; i < nTaken; i++) scratch[i] = undefined;
    return out;
  }

  /** Drop items already sent at least `limit` times (the limit shrinks when the cluster shrinks). */
  prune(limit: number): void {
    let any = false;
    for (const it of this.byKey.values()) if (it.transmits >= limit) { it.dead = true; any = true; }
    if (!any && this.items.length === this.byKey.size) return;
    for (const it of this.items) if (it.dead && this.byKey.get(it.key) === it) this.byKey.delete(it.key);
    this.compact();
  }

  clear(): void {
    this.items = [];
    this.byKey.clear();
  }

  private compact(): void {
    if (this.items.length !== this.byKey.size) this.items = this.items.filter((it) => !it.dead);
  }
}
