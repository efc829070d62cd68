// Overlay health: from this node's ingress sandbox, ICMP echo to every peer node's ingress address,
// i.e. across VXLAN (UDP 4789) and back. Two probes per peer and round: a small one (is the VXLAN
// path there at all?) and one at the full overlay MTU with don't-fragment set (does a full-size
// frame fit the underlay?). That tells "UDP 4789 blocked" from "MTU too small" instead of leaving
// users to guess, the most common Swarm overlay complaint.
//
// The socket is a raw ICMP socket opened inside the sandbox namespace by the native addon (the
// raw-socket package can only open sockets in the namespace of the calling thread).
import { native, netnsPath, type WatchHandle } from '../../native/index.js';
import { echoRequest } from './icmp.js';


export type PathState = 'unknown' | 'ok' | 'mtu' | 'broken';

export interface PeerHealth {
  node: string;
  addr: string;
  state: PathState;
  /** plain words for `mesh status` */
  detail: string;
  rttMs?: number;
  lastSmallOk?: number;
  lastBigOk?: number;
}

interface Peer {
  node: string;
  addr: string;
  since: number;
  lastSmallOk?: number;
  lastBigOk?: number;
  rttMs?: number;
  sent: Map<number, number>; // seq -> sent at (ms)
}

const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
const IP_PMTUDISC_PROBE = 3; // DF set, and the kernel's path-MTU cache ignored: we are the probe

export interface ProberOptions {
  netns: string;
  /** this sandbox's own address: the source of the probes */
  source: string;
  /** overlay MTU: the big probe is a full frame of this size */
  mtu: number;
  intervalMs?: number;
  /** a path is declared broken (or short of MTU) after this long without a reply */
  windowMs?: number;
}

export class OverlayProber {
  private fd: number;
  private watch: WatchHandle;
  private timer: NodeJS.Timeout;
  private peers = new Map<string, Peer>();
  private readonly id = (Math.random() * 0xffff) | 0;
  private seq = 0;
  private readonly interval: number;
  private readonly window: number;

  constructor(private readonly o: ProberOptions) {
    this.interval = o.intervalMs ?? 1000;
    this.window = o.windowMs ?? 3500;
    this.fd = native.socketOpen(netnsPath(o.netns), 'icmp', o.source, 0, 0);
    native.setSockOptInt(this.fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    this.watch = native.watchReadable(this.fd, () => this.drain());
    native.watchRef(this.watch, false);
    this.timer = setInterval(() => this.round(), this.interval);
    this.timer.unref();
  }

  setPeers(list: readonly { node: string; addr: string }[]): void {
    const want = new Map(list.filter((p) => p.addr !== this.o.source).map((p) => [p.node, p]));
    for (const k of [...this.peers.keys()]) if (!want.has(k)) this.peers.delete(k);
    for (const [k, p] of want) {
      const cur = this.peers.get(k);
      if (!cur || cur.addr !== p.addr) this.peers.set(k, { node: k, addr: p.addr, since: Date.now(), sent: new Map() });
    }
  }

  setMtu(mtu: number): void {
    (this.o as { mtu: number }).mtu = mtu;
  }

  private round(): void {
    const now = Date.now();
    for (const p of this.peers.values()) {
      for (const big of [false, true]) {
        this.seq = (this.seq + 1) & 0x7fff;
        const seq = (this.seq << 1) | (big ? 1 : 0);
        // IP header 20 + ICMP header 8 + payload = the MTU for the big one
        const pkt = echoRequest(this.id, seq, big ? this.o.mtu - 28 : 56);
        try {
          native.udpSend(this.fd, pkt, p.addr, 0);
          p.sent.set(seq, now);
        } catch {
          // EMSGSIZE (the local MTU is smaller still) or unreachable: no reply will come, which is the finding
        }
      }
      for (const [s, at] of p.sent) if (now - at > this.window) p.sent.delete(s);
    }
  }

  private drain(): void {
    for (;;) {
      let d;
      try {
        d = native.udpRecv(this.fd);
      } catch {
        return;
      }
      if (!d) return;
      const b = d.data;
      if (b.length < 20) continue;
      const ihl = (b[0]! & 0x0f) * 4;
      if (b.length < ihl + 8 || b[ihl] !== 0 /* echo reply */) continue;
      if (b.readUInt16BE(ihl + 4) !== this.id) continue;
      const seq = b.readUInt16BE(ihl + 6);
      const peer = [...this.peers.values()].find((p) => p.addr === d.address);
      const at = peer?.sent.get(seq);
      if (!peer || at === undefined) continue;
      peer.sent.delete(seq);
      const now = Date.now();
      if (seq & 1) peer.lastBigOk = now;
      else {
        peer.lastSmallOk = now;
        peer.rttMs = now - at;
      }
    }
  }

  status(): PeerHealth[] {
    const now = Date.now();
    return [...this.peers.values()].map((p) => {
      const small = p.lastSmallOk !== undefined && now - p.lastSmallOk <= this.window;
      const big = p.lastBigOk !== undefined && now - p.lastBigOk <= this.window;
      let state: PathState;
      let detail: string;
      if (small && big) {
        state = 'ok';
        detail = `VXLAN path up, full ${this.o.mtu}-byte frames pass`;
      } else if (small) {
        state = 'mtu';
        detail = `VXLAN path up but ${this.o.mtu}-byte frames with DF set are lost: MTU too small on the underlay path (lower the network's mtu or raise the underlay's)`;
      } else if (now - p.since < this.window) {
        state = 'unknown';
        detail = 'probing';
      } else {
        state = 'broken';
        detail = `VXLAN path broken: no reply across the overlay for ${((now - (p.lastSmallOk ?? p.since)) / 1000).toFixed(0)} s (UDP 4789 blocked between the nodes?)`;
      }
      const h: PeerHealth = { node: p.node, addr: p.addr, state, detail };
      if (p.rttMs !== undefined && small) h.rttMs = p.rttMs;
      if (p.lastSmallOk !== undefined) h.lastSmallOk = p.lastSmallOk;
      if (p.lastBigOk !== undefined) h.lastBigOk = p.lastBigOk;
      return h;
    });
  }

  close(): void {
    clearInterval(this.timer);
    native.unwatch(this.watch);
    native.close(this.fd);
  }
}
