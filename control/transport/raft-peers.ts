// Raft messages between managers over TCP 2377. One outbound connection per peer carries frames;
// inbound connections only receive. Outbound connections are made as soon as a peer is known and
// remade after a failure (with back-off), so no message is lost to connection set-up; the messages
// for one peer from one Ready go out in one write. Back-pressure: each peer has a bounded queue; when
// the socket cannot keep up or the peer is down, messages are dropped and the peer is reported
// unreachable. Raft tolerates loss (it retries from its own state), so dropping is safe and bounded
// memory is not negotiable.
//
// In meshd every connection is mutual TLS (the daemon's dialer, control/ca/tls.ts): the dialer checks
// that the peer is the manager it meant, the listener that the caller is a manager, and inbound
// messages must come from the node the connection's certificate names.
import net from 'node:net';
import tls from 'node:tls';
import type { Message, NodeId } from '../raft/types.js';
import { encodeMessage, decodeMessage } from './raft-codec.js';
import { frame, FrameReader } from './framing.js';

export const RAFT_PREAMBLE = Buffer.from('MESHRAFT1\n');
const MAX_QUEUE_BYTES = 64 << 20;
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 1000;
/** While a connection is still being made, at most this much is buffered for it. */
const MAX_CONNECTING_BYTES = 4 << 20;
const CONNECT_TIMEOUT_MS = 3000;

export interface RaftTransportEvents {
  onMessage(m: Message): void;
  onUnreachable(peer: NodeId): void;
}

/** Opens the connection to a peer (plain TCP by default; meshd dials mutual TLS). */
export type Dialer = (host: string, port: number, peer: NodeId) => net.Socket;

const plainDial: Dialer = (host, port) => net.connect({ host, port, noDelay: true });

export interface TransportStats {
  sent: number;
  received: number;
  dropped: number;
  decodeErrors: number;
}

class Peer {
  /** The current connection, connected or still connecting (Node buffers writes until it is up). */
  sock: net.Socket | undefined;
  connected = false;
  queued = 0;
  backoff = RECONNECT_MIN_MS;
  retryTimer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    readonly id: NodeId,
    public addr: string,
    private readonly t: RaftTransport,
  ) {
    // Connect now and keep reconnecting: a connection made only when the first message is due would
    // lose that message, and the first messages between two followers are an election's votes.
    this.connect();
  }

  private connect(): void {
    if (this.sock || this.closed) return;
    const [host, port] = splitHostPort(this.addr);
    const s = this.t.dial(host, port, this.id);
    s.setNoDelay(true);
    this.sock = s;
    this.connected = false;
    s.write(RAFT_PREAMBLE);
    const timer = setTimeout(() => s.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    timer.unref();
    const up = (): void => {
      clearTimeout(timer);
      this.connected = true;
      this.backoff = RECONNECT_MIN_MS;
    };
    // a TLS dialer's socket is up once the handshake is done
    s.on(s instanceof tls.TLSSocket ? 'secureConnect' : 'connect', up);
    const gone = (): void => {
      clearTimeout(timer);
      if (this.sock !== s) return;
      this.sock = undefined;
      this.connected = false;
      this.queued = 0;
      if (!this.closed && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.connect();
        }, this.backoff);
        this.retryTimer.unref();
        this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
      }
    };
    s.on('error', gone);
    s.on('close', gone);
    s.on('data', () => undefined); // peers never answer on this connection
  }

  /** Sends the payloads as frames in one socket write; false (nothing sent) when down or full. */
  send(payloads: readonly Buffer[]): boolean {
    if (!this.sock) {
      if (!this.retryTimer) this.connect();
      return false;
    }
    if (this.queued > (this.connected ? MAX_QUEUE_BYTES : MAX_CONNECTING_BYTES)) return false;
    const f = payloads.length === 1 ? frame(payloads[0]!) : Buffer.concat(payloads.map(frame));
    this.queued += f.length;
    const sock = this.sock;
    sock.write(f, () => {
      // after a reconnect the count restarted at 0: only the socket it was counted on may undo it
      if (this.sock === sock) this.queued -= f.length;
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

  constructor(
    private readonly events: RaftTransportEvents,
    readonly dial: Dialer = plainDial,
  ) {}

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

  /** Sends a batch of messages: one socket write per peer, in order. */
  send(msgs: readonly Message[]): void {
    const byPeer = new Map<NodeId, Buffer[]>();
    for (const m of msgs) {
      const list = byPeer.get(m.to);
      if (list) list.push(encodeMessage(m));
      else byPeer.set(m.to, [encodeMessage(m)]);
    }
    const unreachable: NodeId[] = [];
    for (const [to, payloads] of byPeer) {
      const p = this.peers.get(to);
      if (p && p.send(payloads)) {
        this.stats.sent += payloads.length;
      } else {
        this.stats.dropped += payloads.length;
        unreachable.push(to);
      }
    }
    for (const id of unreachable) this.events.onUnreachable(id);
  }

  /**
   * An inbound connection whose preamble was already read; `rest` is what followed it. With `from`
   * (the authenticated peer), messages claiming another sender are dropped.
   */
  accept(sock: net.Socket, rest: Buffer, from?: NodeId): void {
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
        if (from !== undefined && m.from !== from) {
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
