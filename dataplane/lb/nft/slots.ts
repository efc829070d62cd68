// How a frontend's live backends share its numgen slots. Every frontend rule draws
// `numgen random mod SLOTS` and looks the number up in the frontend's interval map, where each live
// backend owns one contiguous range. SLOTS is fixed (the rule never changes while the frontend
// exists, so a backend change is map elements only); 720720 = lcm(1..16), so 1 to 16 equal backends
// split it exactly, and any other mix is within 1/720720 of its weights.
//
// Apportionment (deterministic, pure): backends in address order; each gets floor(SLOTS * w / W)
// slots (W: the sum of live weights); the slots left over (fewer than the number of backends) go
// one each to the largest remainders, ties to the earlier address (Hamilton's method). A backend
// that would still have no slot (a weight below W / SLOTS) takes one from the backend with the
// most, ties to the earlier address: every live backend stays in the map, so its weight, kept in
// the element's comment, is read back. Ranges follow each other from 0 in address order.

export const SLOTS = 720720;

export interface SlotRange {
  ip: string;
  weight: number;
  /** first slot */
  start: number;
  /** one past the last slot */
  end: number;
}

/** live: [address, weight > 0] in address order. */
export function slotRanges(live: readonly (readonly [string, number])[]): SlotRange[] {
  if (live.length === 0) return [];
  if (live.length > SLOTS) throw new RangeError(`${live.length} live backends: at most ${SLOTS} fit one frontend's slots`);
  let total = 0;
  for (const [ip, w] of live) {
    if (!Number.isInteger(w) || w < 1) throw new TypeError(`backend ${ip}: weight ${w} is not a positive integer`);
    total += w;
  }
  // Integers throughout: w * SLOTS < 2^53 for any weight up to 65535 (and far beyond).
  const slots = live.map(([, w]) => Math.floor((w * SLOTS) / total));
  const rem = live.map(([, w]) => (w * SLOTS) % total);
  let left = SLOTS - slots.reduce((a, b) => a + b, 0);
  const byRemainder = live.map((_, i) => i).sort((a, b) => rem[b]! - rem[a]! || a - b);
  for (const i of byRemainder) {
    if (left === 0) break;
    slots[i]!++;
    left--;
  }
  for (let i = 0; i < slots.length; i++) {
    if (slots[i] !== 0) continue;
    let most = 0;
    for (let j = 1; j < slots.length; j++) if (slots[j]! > slots[most]!) most = j;
    slots[most]!--;
    slots[i] = 1;
  }
  const out: SlotRange[] = [];
  let at = 0;
  live.forEach(([ip, weight], i) => {
    out.push({ ip, weight, start: at, end: at + slots[i]! });
    at += slots[i]!;
  });
  return out;
}

/** The comment an element carries: its backend's weight, which the ranges alone do not tell. */
export const weightComment = (w: number): string => `weight ${w}`;

export function parseWeightComment(c: unknown): number | undefined {
  if (typeof c !== 'string') return undefined;
  const m = /^weight ([1-9]\d{0,4})$/.exec(c);
  return m ? Number(m[1]) : undefined;
}
