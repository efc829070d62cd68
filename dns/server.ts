// The server shell: one UDP and one TCP listener per task, at 127.0.0.11:53 inside the task's network
// namespace, all served from this process's event loop (sockets keep the namespace they were opened
// in; the addon opens them from a helper thread, so the main thread never changes namespace).
//
// Every packet goes through handle(), which catches everything: a packet can cost us a FORMERR or a
// drop, never the server.
import net from 'node:net';
import { native, type WatchHandle } from '../native/index.js';
import { countResponse, newCounters, type DnsCounters } from './counters.js';
import { resolve, type Transport } from './resolver.js';
import type { Snapshot } from './snapshot.js';
import type { Forwarder } from './upstream.js';
import { errorResponse, RCODE, truncateResponse, udpLimit, UDP_MAX_PAYLOAD, TCP_MAX_MESSAGE } from './wire.js';

export interface SnapshotSource {
  snapshot(): Snapshot;
}

export interface DnsServerOptions {
  table: SnapshotSource;
  /** Null: non-cluster names get SERVFAIL (e.g. an internal-only network). */
  forwarder: Forwarder | null;
  /** TCP connections per listener (Node's maxConnections). */
  maxTcpConnections?: number;
  /** A TCP connection with no complete query for this long is closed (RFC 7766 6.2.3). */
  tcpIdleMs?: number;
  /** Forwarded queries in flight on one TCP connection. */
  maxTcpPending?: number;
}

export interface ListenerSpec {
  /** /run/netns/NAME, or null for this process's namespace. */
  nsPath: string | null;
  /** The task's networks, primary first: what it may resolve. */
  networks: readonly string[];
  address?: string;
  port?: number;
}

interface Listener {
  readonly id: string;
  networks: readonly string[];
  readonly udpFd: number;
  readonly watch: WatchHandle;
  readonly tcp: net.Server;
  readonly conns: Set<net.Socket>;
  closed: boolean;
}

/** Called with each response; a forwarded query answers later, or never if its listener went away. */
export type Reply = (bytes: Buffer) => void;

// Queries are a header, one question and an OPT with a few options: far below this.
const MAX_QUERY = UDP_MAX_PAYLOAD;
// Datagrams read per readiness callback: uv_poll is level-triggered, so the rest comes on the next
// turn of the loop and one flooded task cannot starve the others.
const UDP_BATCH = 64;
// A TCP client that stops reading its answers gets cut off past this much queued output.
const MAX_TCP_BACKLOG = 256 * 1024;

export class DnsServer {
  readonly counters: DnsCounters = newCounters();
  private readonly listeners = new Map<string, Listener>();
  private rotation = 0;
  private readonly maxTcpConnections: number;
  private readonly tcpIdleMs: number;
  private readonly maxTcpPending: number;

  constructor(private readonly opts: DnsServerOptions) {
    this.maxTcpConnections = opts.maxTcpConnections ?? 64;
    this.tcpIdleMs = opts.tcpIdleMs ?? 10_000;
    this.maxTcpPending = opts.maxTcpPending ?? 32;
  }

  /** Answers one query from a task on `networks`: the whole packet path, minus the sockets. */
  handle(networks: readonly string[], msg: Buffer, transport: Transport, reply: Reply): void {
    const c = this.counters;
    try {
      if (msg.length > MAX_QUERY) {
        c.dropped.oversized++;
        return;
      }
      this.rotation = (this.rotation + 1) >>> 0;
      const r = resolve(this.opts.table.snapshot(), networks, msg, { transport, rotation: this.rotation });
      if (r.kind === 'drop') {
        c.dropped[r.reason]++;
        return;
      }
      if (r.kind === 'answer') {
        countResponse(c, r.rcode);
        if (r.nodata) c.nodata++;
        if (r.truncated && transport === 'udp') c.truncated++;
        reply(r.bytes);
        return;
      }
      const q = r.query;
      const fwd = this.opts.forwarder;
      if (!fwd) {
        countResponse(c, RCODE.SERVFAIL);
        reply(errorResponse(q, RCODE.SERVFAIL));
        return;
      }
      c.forwarded++;
      fwd.forward(msg, q, transport).then(
        (res) => {
          let bytes = res.bytes;
          if (transport === 'udp' && bytes.length > udpLimit(q.edns)) {
            bytes = truncateResponse(bytes, q, udpLimit(q.edns));
            c.truncated++;
          }
          countResponse(c, bytes[3]! & 0xf);
          reply(bytes);
        },
        () => void c.errors++,
      );
    } catch {
      c.errors++;
    }
  }

  /** Opens UDP and TCP listeners (127.0.0.11:53 by default) in the namespace at nsPath. */
  async addListener(id: string, spec: ListenerSpec): Promise<void> {
    if (this.listeners.has(id)) throw new Error(`DNS listener "${id}" already exists`);
    const address = spec.address ?? '127.0.0.11';
    const port = spec.port ?? 53;
    const udpFd = native.socketOpen(spec.nsPath, 'udp', address, port, 0);
    let tcpFd = -1;
    let watch: WatchHandle | null = null;
    let tcp: net.Server | null = null;
    try {
      tcpFd = native.socketOpen(spec.nsPath, 'tcp', address, port, 128);
      const conns = new Set<net.Socket>();
      tcp = net.createServer({ noDelay: true }, (sock) => this.onTcp(l, sock));
      tcp.maxConnections = this.maxTcpConnections;
      tcp.on('error', () => void this.counters.errors++);
      const server = tcp;
      await new Promise<void>((ok, fail) => {
        server.once('error', fail);
        server.listen({ fd: tcpFd }, () => {
          server.off('error', fail);
          ok();
        });
      });
      tcpFd = -1; // the net.Server owns it now and closes it with itself
      watch = native.watchReadable(udpFd, () => this.onUdp(l));
      const l: Listener = { id, networks: [...spec.networks], udpFd, watch, tcp, conns, closed: false };
      this.listeners.set(id, l);
    } catch (e) {
      if (watch) native.unwatch(watch);
      native.close(udpFd);
      if (tcpFd >= 0) native.close(tcpFd);
      if (tcp?.listening) tcp.close();
      throw e;
    }
  }

  /** The task joined or left a network. */
  setNetworks(id: string, networks: readonly string[]): void {
    const l = this.listeners.get(id);
    if (l) l.networks = [...networks];
  }

  /** Closes a task's listeners and its open TCP connections; answers still in flight are dropped. */
  async removeListener(id: string): Promise<boolean> {
    const l = this.listeners.get(id);
    if (!l) return false;
    this.listeners.delete(id);
    l.closed = true;
    native.unwatch(l.watch);
    native.close(l.udpFd);
    for (const s of l.conns) s.destroy();
    await new Promise<void>((ok) => l.tcp.close(() => ok()));
    return true;
  }

  listenerIds(): string[] {
    return [...this.listeners.keys()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((id) => this.removeListener(id)));
  }

  private onUdp(l: Listener): void {
    for (let i = 0; i < UDP_BATCH && !l.closed; i++) {
      let d;
      try {
        d = native.udpRecv(l.udpFd);
      } catch {
        this.counters.errors++; // e.g. a pending ICMP error on the socket: read again next time
        return;
      }
      if (!d) return;
      this.counters.queries.udp++;
      if (d.truncated) {
        this.counters.dropped.oversized++;
        continue;
      }
      const { address, port } = d;
      this.handle(l.networks, d.data, 'udp', (bytes) => {
        if (l.closed) return; // the fd number may already belong to another socket
        try {
          if (!native.udpSend(l.udpFd, bytes, address, port)) this.counters.dropped.sendFailed++;
        } catch {
          this.counters.dropped.sendFailed++;
        }
      });
    }
  }

  private onTcp(l: Listener, sock: net.Socket): void {
    if (l.closed) {
      sock.destroy();
      return;
    }
    l.conns.add(sock);
    sock.setTimeout(this.tcpIdleMs, () => sock.destroy());
    sock.on('close', () => l.conns.delete(sock));
    sock.on('error', () => undefined); // resets from clients are normal
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    const reply = (bytes: Buffer): void => {
      pending--;
      if (sock.destroyed || l.closed) return;
      if (sock.writableLength > MAX_TCP_BACKLOG) {
        this.counters.dropped.overload++;
        sock.destroy();
        return;
      }
      const frame = Buffer.allocUnsafe(2 + bytes.length);
      frame.writeUInt16BE(bytes.length, 0);
      bytes.copy(frame, 2);
      sock.write(frame);
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2 && !sock.destroyed) {
        const n = buf.readUInt16BE(0);
        if (n < 12 || n > Math.min(MAX_QUERY, TCP_MAX_MESSAGE)) {
          // Not a DNS query, and the stream has no way to resynchronise: hang up.
          this.counters.dropped.overload++;
          sock.destroy();
          return;
        }
        if (buf.length < 2 + n) break;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        this.counters.queries.tcp++;
        if (pending >= this.maxTcpPending) {
          this.counters.dropped.overload++;
          sock.destroy();
          return;
        }
        pending++;
        sock.setTimeout(this.tcpIdleMs); // a complete query: the connection is alive
        this.handle(l.networks, Buffer.from(msg), 'tcp', reply);
      }
    });
  }
}
