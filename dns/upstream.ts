// Forwarding of non-cluster names to the node's resolvers.
//
// Docker waits up to 4 s per dead upstream, for every query. Here: each attempt has a short timeout
// (1 s), the whole query a deadline (2 s, under the 5 s a glibc stub waits before retrying), an upstream
// that fails twice in a row is skipped for 5 s (then tried again), and when every upstream is down the
// answer is SERVFAIL at once. ICMP port-unreachable reaches us through a connected UDP socket, so a
// host with no resolver listening fails over in microseconds, not after a timeout.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import type { Upstream } from './resolvconf.js';
import type { Transport } from './resolver.js';
import { errorResponse, HEADER_LEN, RCODE, type ParsedQuery } from './wire.js';

export interface ForwarderOptions {
  upstreams: readonly Upstream[];
  /** One try at one upstream. */
  attemptTimeoutMs?: number;
  /** The whole query, across upstreams and the TCP retry. */
  deadlineMs?: number;
  /** Queries upstream at once, node-wide; beyond it SERVFAIL (Docker's cap is 1024 too). */
  maxInflight?: number;
  /** Consecutive failures after which an upstream is skipped ... */
  failThreshold?: number;
  /** ... for this long. */
  downMs?: number;
}

export interface ForwardStats {
  queries: number;
  inflight: number;
  /** Refused at once: over maxInflight, or every upstream down. */
  rejected: number;
  /** Answered SERVFAIL after trying. */
  failed: number;
  timeouts: number;
  connectErrors: number;
  tcpRetries: number;
  answered: number;
}

export interface ForwardResult {
  /** The response with the client's ID: the upstream's, or our SERVFAIL. */
  bytes: Buffer;
  rcode: number;
  upstream: Upstream | null;
}

interface UpstreamState {
  readonly u: Upstream;
  failures: number;
  downUntil: number;
}

class AttemptError extends Error {
  constructor(readonly kind: 'timeout' | 'connect' | 'bad') {
    super(kind);
  }
}

function sameQuestion(resp: Buffer, question: Buffer): boolean {
  if (resp.length < HEADER_LEN + question.length) return false;
  for (let i = 0; i < question.length; i++) {
    let a = resp[HEADER_LEN + i]!, b = question[i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

/** Whether `resp` answers our upstream query `id` for `question` (anything else is ignored as a spoof). */
function matches(resp: Buffer, id: number, question: Buffer): boolean {
  if (resp.length < HEADER_LEN || resp.readUInt16BE(0) !== id || !(resp[2]! & 0x80)) return false;
  const qd = resp.readUInt16BE(4);
  return qd === 0 ? (resp[3]! & 0xf) !== RCODE.NOERROR : qd === 1 && sameQuestion(resp, question);
}

export class Forwarder {
  readonly stats: ForwardStats = { queries: 0, inflight: 0, rejected: 0, failed: 0, timeouts: 0, connectErrors: 0, tcpRetries: 0, answered: 0 };
  private upstreams: UpstreamState[];
  private readonly attemptTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxInflight: number;
  private readonly failThreshold: number;
  private readonly downMs: number;
  private readonly sockets = new Set<dgram.Socket | net.Socket>();

  constructor(opts: ForwarderOptions) {
    this.upstreams = opts.upstreams.map((u) => ({ u, failures: 0, downUntil: 0 }));
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 1000;
    this.deadlineMs = opts.deadlineMs ?? 2000;
    this.maxInflight = opts.maxInflight ?? 1024;
    this.failThreshold = opts.failThreshold ?? 2;
    this.downMs = opts.downMs ?? 5000;
  }

  /**
   * Replaces the upstream list (resolv.conf changed, or configuration). An upstream kept from the
   * old list keeps its failure state; queries in flight finish against the list they started with.
   */
  setUpstreams(upstreams: readonly Upstream[]): void {
    const old = new Map(this.upstreams.map((s) => [`${s.u.address}#${s.u.port}`, s]));
    this.upstreams = upstreams.map((u) => old.get(`${u.address}#${u.port}`) ?? { u: { ...u }, failures: 0, downUntil: 0 });
  }

  /** Upstreams in the order the next query tries them; down ones are left out. */
  usable(now = Date.now()): Upstream[] {
    return this.upstreams.filter((s) => s.downUntil <= now).map((s) => s.u);
  }

  /** Forwards `raw` (the client's query, parsed as `q`). Never rejects: failures become SERVFAIL. */
  async forward(raw: Uint8Array, q: ParsedQuery, transport: Transport): Promise<ForwardResult> {
    this.stats.queries++;
    const now = Date.now();
    const order = this.upstreams.filter((s) => s.downUntil <= now);
    if (this.stats.inflight >= this.maxInflight || order.length === 0) {
      this.stats.rejected++;
      return { bytes: errorResponse(q, RCODE.SERVFAIL), rcode: RCODE.SERVFAIL, upstream: null };
    }
    this.stats.inflight++;
    try {
      const deadline = now + this.deadlineMs;
      let fallback: ForwardResult | null = null;
      for (const s of order) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        try {
          const resp = await this.attempt(s.u, raw, q, transport, Math.min(left, this.attemptTimeoutMs), deadline);
          s.failures = 0;
          s.downUntil = 0;
          resp.writeUInt16BE(q.id, 0);
          const rcode = resp[3]! & 0xf;
          const result = { bytes: resp, rcode, upstream: s.u };
          // Another upstream may know better than one that is failing or refusing us.
          if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
            fallback ??= result;
            continue;
          }
          this.stats.answered++;
          return result;
        } catch (e) {
          if (!(e instanceof AttemptError)) throw e;
          if (e.kind === 'timeout') this.stats.timeouts++;
          else this.stats.connectErrors++;
          if (++s.failures >= this.failThreshold) s.downUntil = Date.now() + this.downMs;
        }
      }
      if (fallback) {
        this.stats.answered++;
        return fallback;
      }
      this.stats.failed++;
      return { bytes: errorResponse(q, RCODE.SERVFAIL), rcode: RCODE.SERVFAIL, upstream: null };
    } finally {
      this.stats.inflight--;
    }
  }

  /** Closes sockets of queries still in flight (they then fail over or SERVFAIL). */
  close(): void {
    for (const s of this.sockets) s instanceof net.Socket ? s.destroy() : s.close();
    this.sockets.clear();
  }

  private async attempt(u: Upstream, raw: Uint8Array, q: ParsedQuery, transport: Transport, timeoutMs: number, deadline: number): Promise<Buffer> {
    const id = randomInt(0x10000); // fresh ID per upstream query (RFC 5452): the client's may be guessable
    const msg = Buffer.from(raw);
    msg.writeUInt16BE(id, 0);
    if (transport === 'tcp') return this.tcp(u, msg, id, q.question, timeoutMs);
    const resp = await this.udp(u, msg, id, q.question, timeoutMs);
    if (!(resp[2]! & 0x02)) return resp;
    // Truncated: ask again over TCP for the full answer (the server cuts it to the client's size later).
    this.stats.tcpRetries++;
    const left = deadline - Date.now();
    if (left <= 0) throw new AttemptError('timeout');
    return this.tcp(u, msg, id, q.question, Math.min(left, this.attemptTimeoutMs));
  }

  private udp(u: Upstream, msg: Buffer, id: number, question: Buffer, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket(net.isIPv6(u.address) ? 'udp6' : 'udp4');
      this.sockets.add(sock);
      let settled = false;
      const done = (err: AttemptError | null, resp?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.sockets.delete(sock);
        try {
          sock.close();
        } catch {
          /* already closed by close() */
        }
        if (err) reject(err);
        else resolve(resp!);
      };
      const timer = setTimeout(() => done(new AttemptError('timeout')), timeoutMs);
      sock.on('error', () => done(new AttemptError('connect')));
      sock.on('close', () => done(new AttemptError('connect')));
      sock.on('message', (m) => {
        if (matches(m, id, question)) done(null, m);
      });
      // Connected: only the upstream's datagrams reach us, and ICMP unreachable surfaces as an error.
      sock.connect(u.port, u.address, () => sock.send(msg, (err) => err && done(new AttemptError('connect'))));
    });
  }

  private tcp(u: Upstream, msg: Buffer, id: number, question: Buffer, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: u.address, port: u.port });
      this.sockets.add(sock);
      let buf = Buffer.alloc(0);
      let settled = false;
      const done = (err: AttemptError | null, resp?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.sockets.delete(sock);
        sock.destroy();
        if (err) reject(err);
        else resolve(resp!);
      };
      const timer = setTimeout(() => done(new AttemptError('timeout')), timeoutMs);
      sock.on('error', () => done(new AttemptError('connect')));
      sock.on('close', () => done(new AttemptError('bad')));
      sock.on('connect', () => {
        const len = Buffer.allocUnsafe(2);
        len.writeUInt16BE(msg.length, 0);
        sock.write(Buffer.concat([len, msg]));
      });
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2) {
          const n = buf.readUInt16BE(0);
          if (buf.length < 2 + n) return;
          const m = buf.subarray(2, 2 + n);
          buf = buf.subarray(2 + n);
          if (matches(m, id, question)) return done(null, Buffer.from(m));
        }
      });
    });
  }
}
