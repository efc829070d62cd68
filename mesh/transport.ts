// The thin real shell around MeshNode: UDP and TCP on one address/port (default 7946), real time,
// every datagram and every TCP frame sealed with the keyring. TCP messages are one-shot connections
// carrying length-prefixed sealed frames ([u32 length][sealed packet]...).
import dgram from 'node:dgram';
import net from 'node:net';
import { decodePacket, encodePacket } from './codec.js';
import type { MeshConfig } from './config.js';
import { hexId, Keyring, type SealOptions, Sealer, sodiumReady } from './keyring.js';
import type { MemberStatus } from './messages.js';
import type { Addr, Outgoing, Via } from './messages.js';
import { MeshNode } from './node.js';

export const DEFAULT_PORT = 7946;

export interface TransportOptions {
  name: string;
  host: string;
  port?: number;
  keyring: Keyring;
  config?: Partial<MeshConfig>;
  seed?: number;
  seal?: SealOptions;
  /** Largest TCP frame accepted (push/pull of a big cluster); bigger streams are cut. */
  maxFrame?: number;
  /** Concurrent inbound TCP connections; more are refused. */
  maxConns?: number;
  networks?: string[];
}

export interface TransportCounters {
  udpIn: number;
  udpOut: number;
  tcpIn: number;
  tcpOut: number;
  bytesIn: number;
  bytesOut: number;
  sendErrors: number;
  oversize: number;
}

export interface MeshStatus {
  name: string;
  addr: Addr;
  members: { name: string; addr: string; status: MemberStatus; incarnation: number }[];
  keyIds: string[];
  primaryKeyId: string;
  tables: Record<string, number>;
  counters: TransportCounters;
  dropped: Record<string, number>;
  health: number;
}

export class MeshTransport {
  readonly node: MeshNode;
  readonly sealer: Sealer;
  readonly addr: Addr;
  readonly counters: TransportCounters = { udpIn: 0, udpOut: 0, tcpIn: 0, tcpOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0, oversize: 0 };
  private udp: dgram.Socket | null = null;
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly maxFrame: number;
  private readonly maxConns: number;

  private constructor(o: TransportOptions) {
    this.addr = { host: o.host, port: o.port ?? DEFAULT_PORT };
    this.node = new MeshNode({ name: o.name, addr: this.addr, now: Date.now(), ...(o.seed !== undefined ? { seed: o.seed } : {}), config: o.config ?? {} });
    this.sealer = new Sealer(o.keyring, o.seal ?? {});
    this.maxFrame = o.maxFrame ?? 16 * 1024 * 1024;
    this.maxConns = o.maxConns ?? 256;
  }

  static async start(o: TransportOptions): Promise<MeshTransport> {
    await sodiumReady();
    const t = new MeshTransport(o);
    await t.bind();
    for (const n of o.networks ?? []) t.node.tables.joinNetwork(n);
    t.pump();
    return t;
  }

  join(seeds: readonly Addr[]): void {
    this.node.members.join(seeds);
    this.pump();
  }

  /** Graceful: announce the leave, let gossip carry it for `graceMs`, then close. */
  async leave(graceMs = 1000): Promise<void> {
    this.node.members.leave();
    this.pump();
    await new Promise((r) => setTimeout(r, graceMs));
    this.kill();
  }

  /** Abrupt: sockets vanish, as if the process died. */
  kill(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.udp?.close();
    this.server?.close();
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }

  status(): MeshStatus {
    const ring = this.sealer.ring;
    return {
      name: this.node.name,
      addr: this.addr,
      members: this.node.members.allMembers().map((m) => ({ name: m.name, addr: `${m.addr.host}:${m.addr.port}`, status: m.status, incarnation: m.inc })),
      keyIds: ring.ids().map(hexId),
      primaryKeyId: hexId(ring.primaryId),
      tables: this.node.tables.sizes(),
      counters: { ...this.counters },
      dropped: { ...this.sealer.dropped },
      health: this.node.members.awareness.health,
    };
  }

  /** Run timers that are due, send what the node wants sent, and re-arm the timer. */
  pump(): void {
    if (this.stopped) return;
    this.node.tick(Date.now());
    for (const out of this.node.drain()) this.sendOut(out);
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.node.nextWake() - Date.now(), 60_000));
    this.timer = setTimeout(() => this.pump(), wait);
    this.timer.unref?.();
  }

  private bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      const udp = dgram.createSocket({ type: this.addr.host.includes(':') ? 'udp6' : 'udp4' });
      udp.on('message', (buf) => this.input(buf, 'udp'));
      udp.on('error', () => { this.counters.sendErrors++; });
      udp.once('error', reject);
      udp.bind(this.addr.port, this.addr.host, () => {
        udp.removeListener('error', reject);
        this.udp = udp;
        const server = net.createServer((c) => this.accept(c));
        server.once('error', (e) => { udp.close(); reject(e); });
        server.listen(this.addr.port, this.addr.host, () => {
          server.removeAllListeners('error');
          server.on('error', () => { this.counters.sendErrors++; });
          this.server = server;
          resolve();
        });
      });
    });
  }

  private accept(c: net.Socket): void {
    if (this.stopped || this.conns.size >= this.maxConns) { c.destroy(); return; }
    this.conns.add(c);
    c.setTimeout(10_000, () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    c.on('error', () => c.destroy());
    let buf: Buffer = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (len > this.maxFrame) { this.sealer.countDrop('decode'); c.destroy(); return; }
        if (buf.length < 4 + len) break;
        const frame = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        this.input(frame, 'tcp');
      }
    });
  }

  private input(buf: Uint8Array, via: Via): void {
    if (this.stopped) return;
    const now = Date.now();
    this.counters.bytesIn += buf.length;
    if (via === 'udp') this.counters.udpIn++; else this.counters.tcpIn++;
    const opened = this.sealer.open(buf, now);
    if (!opened.ok) return;
    const d = decodePacket(opened.plain);
    if (!d.ok) { this.sealer.countDrop('decode'); return; }
    this.node.receive(now, d.msgs, via);
    this.pump();
  }

  private sendOut(out: Outgoing): void {
    const sealed = this.sealer.seal(encodePacket(out.msgs), Date.now());
    this.counters.bytesOut += sealed.length;
    if (out.via === 'udp') {
      if (sealed.length > 65_000) { this.counters.oversize++; return; }
      this.counters.udpOut++;
      this.udp?.send(sealed, out.to.port, out.to.host, (err) => { if (err) this.counters.sendErrors++; });
      return;
    }
    this.counters.tcpOut++;
    const frame = Buffer.alloc(4 + sealed.length);
    frame.writeUInt32BE(sealed.length, 0);
    frame.set(sealed, 4);
    const c = net.connect({ host: out.to.host, port: out.to.port, localAddress: this.addr.host });
    c.setTimeout(5_000, () => c.destroy());
    c.on('error', () => { this.counters.sendErrors++; c.destroy(); });
    c.end(frame);
  }
}
