// Deterministic discrete-event network for many in-process mesh members: seeded loss and latency,
// partitions and crashes, no real time. Used by the unit tests (CI size) and the bench (1,000 members).
import { encodePacket, decodePacket, packetSize } from '../../mesh/codec.js';
import type { MeshConfig } from '../../mesh/config.js';
import type { Message, Outgoing, PushPull, Via } from '../../mesh/messages.js';
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

/**
 * A deterministic lossy network of in-process members, built for 1,000 members over simulated
 * minutes: events are pooled and kept in a binary heap moved by holes (no destructuring swaps, which
 * allocated on every step), and bytes are counted with packetSize(), which is exactly
 * encodePacket().length (the codec tests check it), instead of encoding every packet only to measure
 * it. With roundTrip every packet is encoded and decoded.
 */
export class SimNet {
  now = 0;
  readonly members = new Map<string, SimMember>();
  readonly rng: Sfc32;
  dropped = 0;
  delivered = 0;
  private heap: SimEv[] = [];
  private free: SimEv[] = [];
  private seq = 0;
  private readonly lo: number;
  private readonly span: number;
  private blocked: ((a: string, b: string) => boolean) | null = null;
  private udpOnly = false;

  constructor(readonly o: SimOptions) {
    this.rng = new Sfc32(o.seed);
    this.lo = o.latency[0];
    this.span = o.latency[1] - o.latency[0];
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

  /** Drop traffic between members for which block(from, to) holds (UDP only with udpOnly); null heals. */
  partition(block: ((a: string, b: string) => boolean) | null, udpOnly = false): void {
    this.blocked = block;
    this.udpOnly = udpOnly;
  }

  /** Run the state machines' own effects (after a direct API call on a node). */
  flush(m: SimMember): void {
    const outs = m.node.drain();
    for (let i = 0; i < outs.length; i++) {
      const out = outs[i] as Outgoing;
      m.packetsOut++;
      if (this.o.roundTrip) {
        const bytes = encodePacket(out.msgs);
        m.bytesOut += bytes.length + SEAL_OVERHEAD + (out.via === 'tcp' ? 4 : 0);
        const d = decodePacket(bytes);
        if (!d.ok) throw new Error(`codec round trip failed: ${d.reason}`);
        this.send(m, out.to.host, d.msgs, out.via);
        continue;
      }
      if (this.o.countBytes) m.bytesOut += packetSize(out.msgs) + SEAL_OVERHEAD + (out.via === 'tcp' ? 4 : 0);
      this.send(m, out.to.host, out.msgs, out.via);
    }
    this.schedule(m);
  }

  private send(from: SimMember, toName: string, msgs: readonly Message[], via: Via): void {
    const to = this.members.get(toName);
    if (!to || !to.up || (this.blocked && (via === 'udp' || !this.udpOnly) && this.blocked(from.name, toName))) { this.dropped++; return; }
    let delay = this.lo + this.rng.next() * this.span;
    if (via === 'udp') {
      if (this.rng.next() < this.o.loss) { this.dropped++; return; }
    } else {
      // TCP does not lose, it waits: each lost exchange costs a retransmission timeout (200 ms min on
      // Linux, doubling); a lost SYN costs a full second.
      let rto = 1000;
      const pLost = 1 - (1 - this.o.loss) ** 2;
      for (let i = 0; i < 6 && this.rng.next() < pLost; i++) { delay += rto; rto *= 2; }
    }
    this.push(this.now + delay, to, msgs, via);
  }

  private schedule(m: SimMember): void {
    const w = m.node.nextWake();
    if (w < m.wakeAt) {
      m.wakeAt = w;
      this.push(Math.max(w, this.now), m, null, 'udp');
    }
  }

  runUntil(t: number, stop?: () => boolean): void {
    const h = this.heap;
    for (;;) {
      const ev = h[0];
      if (ev === undefined || ev.at > t) break;
      this.pop();
      const { at, to: m, msgs, via } = ev;
      ev.to = null; ev.msgs = null;
      this.free.push(ev);
      this.now = at;
      if (!m || !m.up) continue;
      if (msgs) {
        this.delivered++;
        m.node.receive(at, msgs, via);
      } else {
        if (at !== m.wakeAt) continue;
        m.wakeAt = Infinity;
        m.node.tick(at);
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

  private push(at: number, to: SimMember, msgs: readonly Message[] | null, via: Via): void {
    const e = this.free.pop() ?? { at: 0, seq: 0, to: null, msgs: null, via: 'udp' };
    e.at = at; e.seq = this.seq++; e.to = to; e.msgs = msgs; e.via = via;
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p] as SimEv;
      if (!before(e, pe)) break;
      h[i] = pe;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as SimEv;
    const n = h.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && before(h[r] as SimEv, h[l] as SimEv)) c = r;
      const ce = h[c] as SimEv;
      if (!before(ce, last)) break;
      h[i] = ce;
      i = c;
    }
    h[i] = last;
  }
}

interface SimEv {
  at: number;
  seq: number;
  to: SimMember | null;
  /** null: a timer wake-up. */
  msgs: readonly Message[] | null;
  via: Via;
}

function before(a: SimEv, b: SimEv): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
