// Raft messages between managers over TCP 2377. One outbound connection per peer carries frames;
// inbound connections only receive. Back-pressure: each peer has a bounded queue; when the socket
// cannot keep up or the peer is down, messages are dropped and the peer is reported unreachable.
// Raft tolerates loss (it retries from its own state), so dropping is safe and bounded memory is not
// negotiable.
import net from 'node:net';
import type { Message, NodeId } from '../raft/types.js';
import { encodeMessage, decodeMessage } from './raft-codec.js';
import { frame, FrameReader } from './framing.js';

export const RAFT_PREAMBLE = Buffer.from('MESHRAFT1\n');
const MAX_QUEUE_BYTES = 64 << 20;
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 1000;

export interface RaftTransportEvents {
  onMessage(m: Message): void;
  onUnreachable(peer: NodeId): void;
}

export interface TransportStats {
  sent: number;
  received: number;
  dropped: number;
  decodeErrors: number;
}

class Peer {
  sock: net.Socket | undefined;
  connecting = false;
  queued = 0;
  backoff = RECONNECT_MIN_MS;
  retryTimer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    readonly id: NodeId,
    public addr: string,
    private readonly t: RaftTransport,
  ) {}

  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const [host, port] = splitHostPort(this.addr);
    const s = net.connect({ host, port, noDelay: true });
    s.on('connect', () => {
      this.connecting = false;
      this.backoff = RECONNECT_MIN_MS;
      this.sock = s;
      s.write(RAFT_PREAMBLE);
    });
    const gone = (): void => {
      if (this.sock === s) this.sock = undefined;
      this.connecting = false;
      this.queued = 0;
      if (!this.closed && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
        }, this.backoff);
        this.retryTimer.unref();
        this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
      }
    };
    s.on('error', gone);
    s.on('close', gone);
    s.on('data', () => undefined); // peers never answer on this connection
  }

  send(payload: Buffer): boolean {
    if (!this.sock) {
      if (!this.retryTimer) this.connect();
      return false;
    }
    if (this.queued > MAX_QUEUE_BYTES) return false;
    const f = frame(payload);
    this.queued += f.length;
    this.sock.write(f, () => {
      this.queued -= f.length;
    });
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.sock?.destroy();
    this.sock = undefined;
  }
}

export function splitHostPort(addr: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr);
  if (!m) throw new Error(`"${addr}" is not HOST:PORT`);
  return [m[1]!, Number(m[2])];
}

export class RaftTransport {
  private peers = new Map<NodeId, Peer>();
  private inbound = new Set<net.Socket>();
  readonly stats: TransportStats = { sent: 0, received: 0, dropped: 0, decodeErrors: 0 };

  constructor(private readonly events: RaftTransportEvents) {}

  setPeer(id: NodeId, addr: string): void {
    const p = this.peers.get(id);
    if (p && p.addr === addr) return;
    p?.close();
    this.peers.set(id, new Peer(id, addr, this));
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  peerAddrs(): Map<NodeId, string> {
    return new Map([...this.peers].map(([id, p]) => [id, p.addr]));
  }

  send(msgs: readonly Message[]): void {
    const unreachable = new Set<NodeId>();
    for (const m of msgs) {
      const p = this.peers.get(m.to);
      if (p && p.send(encodeMessage(m))) {
        this.stats.sent++;
      } else {
        this.stats.dropped++;
        unreachable.add(m.to);
      }
    }
    for (const id of unreachable) this.events.onUnreachable(id);
  }

  /** An inbound connection whose preamble was already read; `rest` is what followed it. */
  accept(sock: net.Socket, rest: Buffer): void {
    this.inbound.add(sock);
    sock.setNoDelay(true);
    const reader = new FrameReader();
    const onData = (chunk: Buffer): void => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch {
        this.stats.decodeErrors++;
        sock.destroy();
        return;
      }
      for (const f of frames) {
        let m: Message;
        try {
          m = decodeMessage(f);
        } catch {
          this.stats.decodeErrors++;
          continue;
        }
        this.stats.received++;
        this.events.onMessage(m);
      }
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.inbound.delete(sock));
    if (rest.length) onData(rest);
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
  }
}
