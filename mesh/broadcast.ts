// Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue): each item is piggybacked on
// outgoing packets until sent `limit` times; fewest-sent first (newest first among equals), so fresh
// news spreads before old news; a newer item with the same key (e.g. the same node) replaces the older.
import { encodeMessage } from './codec.js';
import type { Message } from './messages.js';

interface Item {
  key: string;
  msg: Message;
  frame: Uint8Array;
  transmits: number;
}

export class BroadcastQueue {
  private items: Item[] = [];
  private readonly byKey = new Map<string, Item>();

  get length(): number {
    return this.items.length;
  }

  enqueue(key: string, msg: Message): void {
    const old = this.byKey.get(key);
    if (old) this.items.splice(this.items.indexOf(old), 1);
    const item: Item = { key, msg, frame: encodeMessage(msg), transmits: 0 };
    this.byKey.set(key, item);
    this.items.unshift(item);
  }

  /** Up to `maxMsgs` messages fitting in `budget` bytes (frame sizes); each taken item counts one send. */
  take(budget: number, maxMsgs: number, limit: number): Message[] {
    const out: Message[] = [];
    if (this.items.length === 0 || maxMsgs <= 0) return out;
    const kept: Item[] = [];
    const taken: Item[] = [];
    for (const it of this.items) {
      if (out.length < maxMsgs && it.frame.length <= budget) {
        budget -= it.frame.length;
        out.push(it.msg);
        it.transmits++;
        if (it.transmits >= limit) this.byKey.delete(it.key);
        else taken.push(it);
      } else kept.push(it);
    }
    // Both lists are sorted by transmits; merge keeps the whole queue sorted.
    const merged: Item[] = [];
    let i = 0, j = 0;
    while (i < kept.length || j < taken.length) {
      const a = kept[i], b = taken[j];
      if (b === undefined || (a !== undefined && a.transmits <= b.transmits)) { merged.push(a as Item); i++; }
      else { merged.push(b); j++; }
    }
    this.items = merged;
    return out;
  }

  /** Drop items already sent at least `limit` times (the limit shrinks when the cluster shrinks). */
  prune(limit: number): void {
    if (!this.items.some((it) => it.transmits >= limit)) return;
    this.items = this.items.filter((it) => {
      if (it.transmits < limit) return true;
      this.byKey.delete(it.key);
      return false;
    });
  }

  clear(): void {
    this.items = [];
    this.byKey.clear();
  }
}
