// Deterministic discrete-event network for many in-process mesh members: seeded loss and latency,
// partitions and crashes, no real time. Used by the unit tests (CI size) and the bench (1,000 members).
import { encodePacket, decodePacket } from '../../mesh/codec.js';
import type { MeshConfig } from '../../mesh/config.js';
import type { Message, PushPull, Via } from '../../mesh/messages.js';
import { MeshNode } from '../../mesh/node.js';
import { Sfc32 } from '../../mesh/rng.js';

/** Seal overhead per packet: header (version 1 + key id 4 + nonce 24) + Poly1305 tag 16. */
export const SEAL_OVERHEAD = 45;

export interface SimOptions {
  seed: number;
  /** UDP loss probability per packet. */
  loss: number;
  /** One-way latency range, ms. */
  latency: [number, number];
  config?: Partial<MeshConfig>;
  /** Encode every packet to count bytes (and decode it, if roundTrip, to exercise the codec). */
  countBytes?: boolean;
  roundTrip?: boolean;
}

export interface SimMember {
  name: string;
  node: MeshNode;
  up: boolean;
  bytesOut: number;
  packetsOut: number;
  wakeAt: number;
}

interface Ev {
  at: number;
  seq: number;
  to: SimMember;
  msgs: readonly Message[] | null;
  via: Via;
  from: string;
}

export class SimNet {
  now = 0;
  readonly members = new Map<string, SimMember>();
  readonly rng: Sfc32;
  dropped = 0;
  delivered = 0;
  private heap: Ev[] = [];
  private seq = 0;
  private blocked: ((a: string, b: string) => boolean) | null = null;
  private udpOnly = false;

  constructor(readonly o: SimOptions) {
    this.rng = new Sfc32(o.seed);
  }

  add(name: string, seedOffset = 0): SimMember {
    const node = new MeshNode({ name, addr: { host: name, port: 7946 }, now: this.now, seed: this.o.seed * 7919 + this.members.size + seedOffset * 104729, config: this.o.config ?? {} });
    const m: SimMember = { name, node, up: true, bytesOut: 0, packetsOut: 0, wakeAt: Infinity };
    this.members.set(name, m);
    this.schedule(m);
    return m;
  }

  /** Gives every member the full member list at once (a converged cluster) without a gossip flood. */
  bootstrap(): void {
    const records = [...this.members.values()].map((m) => ({ name: m.name, addr: m.node.members.addr, inc: m.node.members.incarnation, status: 'alive' as const, meta: new Uint8Array(0) }));
    for (const m of this.members.values()) {
      const pp: PushPull = { t: 'push-pull', join: true, reply: true, source: '#bootstrap', sourceAddr: { host: '#', port: 0 }, members: records, nets: [], entries: [] };
      m.node.receive(this.now, [pp], 'tcp');
      m.node.members.broadcasts.clear();
      m.node.drain();
      this.schedule(m);
    }
  }

  join(name: string, via: string): void {
    const m = this.members.get(name);
    const seed = this.members.get(via);
    if (!m || !seed) throw new Error('unknown member');
    m.node.members.join([seed.node.members.addr]);
    this.flush(m);
  }

  /** Crash: its sockets vanish; nothing in or out from now on. */
  kill(name: string): void {
    const m = this.members.get(name);
    if (m) m.up = false;
  }

  /** Drop everything (or only UDP) between pairs for which `block` is true; null heals. */
  partition(block: ((a: string, b: string) => boolean) | null, udpOnly = false): void {
    this.blocked = block;
    this.udpOnly = udpOnly;
  }

  /** Run the state machines' own effects (after a direct API call on a node). */
  flush(m: SimMember): void {
    for (const out of m.node.drain()) {
      m.packetsOut++;
      if (this.o.countBytes || this.o.roundTrip) {
        const bytes = encodePacket(out.msgs);
        m.bytesOut += bytes.length + SEAL_OVERHEAD + (out.via === 'tcp' ? 4 : 0);
        if (this.o.roundTrip) {
          const d = decodePacket(bytes);
          if (!d.ok) throw new Error(`codec round trip failed: ${d.reason}`);
          this.send(m, out.to.host, d.msgs, out.via);
          continue;
        }
      }
      this.send(m, out.to.host, out.msgs, out.via);
    }
    this.schedule(m);
  }

  private send(from: SimMember, toName: string, msgs: readonly Message[], via: Via): void {
    const to = this.members.get(toName);
    if (!to || !to.up || (this.blocked && (via === 'udp' || !this.udpOnly) && this.blocked(from.name, toName))) { this.dropped++; return; }
    const [lo, hi] = this.o.latency;
    let delay = lo + this.rng.next() * (hi - lo);
    if (via === 'udp') {
      if (this.rng.next() < this.o.loss) { this.dropped++; return; }
    } else {
      // TCP does not lose, it waits: each lost exchange costs a retransmission timeout (200 ms min on
      // Linux, doubling); a lost SYN costs a full second.
      let rto = 1000;
      for (let i = 0; i < 6 && this.rng.next() < 1 - (1 - this.o.loss) ** 2; i++) { delay += rto; rto *= 2; }
    }
    this.push({ at: this.now + delay, seq: this.seq++, to, msgs, via, from: from.name });
  }

  private schedule(m: SimMember): void {
    const w = m.node.nextWake();
    if (w < m.wakeAt) {
      m.wakeAt = w;
      this.push({ at: Math.max(w, this.now), seq: this.seq++, to: m, msgs: null, via: 'udp', from: '' });
    }
  }

  runUntil(t: number, stop?: () => boolean): void {
    for (;;) {
      const ev = this.heap[0];
      if (!ev || ev.at > t) break;
      this.pop();
      this.now = ev.at;
      const m = ev.to;
      if (!m.up) continue;
      if (ev.msgs) {
        this.delivered++;
        m.node.receive(this.now, ev.msgs, ev.via);
      } else {
        if (ev.at !== m.wakeAt) continue;
        m.wakeAt = Infinity;
        m.node.tick(this.now);
      }
      this.flush(m);
      if (stop && stop()) return;
    }
    this.now = Math.max(this.now, t);
  }

  runFor(ms: number, stop?: () => boolean): void {
    this.runUntil(this.now + ms, stop);
  }

  live(): SimMember[] {
    return [...this.members.values()].filter((m) => m.up && !m.node.members.isLeaving);
  }

  private push(e: Ev): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Ev, h[p] as Ev)) break;
      [h[i], h[p]] = [h[p] as Ev, h[i] as Ev];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as Ev;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let s = i;
      if (l < h.length && before(h[l] as Ev, h[s] as Ev)) s = l;
      if (r < h.length && before(h[r] as Ev, h[s] as Ev)) s = r;
      if (s === i) return;
      [h[i], h[s]] = [h[s] as Ev, h[i] as Ev];
      i = s;
    }
  }
}

function before(a: Ev, b: Ev): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
