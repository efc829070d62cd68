// Seeded PRNG (sfc32): the state machine takes all of its randomness from here, so a simulation
// with the same seed replays exactly. Not for key material (keys come from libsodium).

export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export class Sfc32 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.u32() / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Fisher-Yates in place. */
export function shuffle<T>(rng: Rng, a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const x = a[i] as T;
    a[i] = a[j] as T;
    a[j] = x;
  }
  return a;
}

/** Indices already drawn by pickK's probing phase (reused: pickK is not reentrant, and need not be). */
const drawn: number[] = [];

/** Up to k distinct random items of `from` that pass `ok` (reservoir-free partial shuffle on a copy). */
export function pickK<T>(rng: Rng, from: readonly T[], k: number, ok: (x: T) => boolean): T[] {
  const out: T[] = [];
  if (k <= 0 || from.length === 0) return out;
  // Few candidates relative to the list: random probing is cheap and allocation-free (the drawn
  // indices are at most a few dozen, so a linear scan beats a Set).
  const tries = Math.min(3 * from.length, 8 * k + 16);
  let nDrawn = 0;
  for (let i = 0; i < tries && out.length < k; i++) {
    const j = rng.int(from.length);
    let seen = false;
    for (let d = 0; d < nDrawn; d++) if (drawn[d] === j) { seen = true; break; }
    if (seen) continue;
    drawn[nDrawn++] = j;
    const x = from[j] as T;
    if (ok(x)) out.push(x);
  }
  if (out.length < k && nDrawn < from.length) {
    // Sparse eligible set: fall back to a full scan in random order.
    const seen = new Set<number>(drawn.slice(0, nDrawn));
    const rest: T[] = [];
    for (let j = 0; j < from.length; j++) if (!seen.has(j)) { const x = from[j] as T; if (ok(x)) rest.push(x); }
    shuffle(rng, rest);
    for (const x of rest) { if (out.length >= k) break; out.push(x); }
  }
  return out;
}
