// One attempt of each kind against host:port, as an outside client would make it: a fresh
// connection (or socket) per attempt, so a load balancer gets to choose a backend every time.
import net from 'node:net';
import http from 'node:http';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseHttpReply, parseUdpReply, type ReplicaId } from './reply.js';

export type Proto = 'tcp' | 'udp' | 'http';

export interface Attempt {
  ok: boolean;
  /** wall time of the attempt in milliseconds (connect for tcp, full exchange for udp/http) */
  ms: number;
  /** short cause when not ok: refused, timeout, reset, unreachable, http-503, bad-reply, ... */
  error?: string;
  replica?: ReplicaId;
}

/** Short, countable names for socket errors (the report groups failures by them). */
export function errorCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return code ? code.toLowerCase() : ((e as Error | undefined)?.message ?? String(e)).slice(0, 60);
  }
}

export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<Attempt> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (a: Omit<Attempt, 'ms'>): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ...a, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    s.once('connect', () => done({ ok: true }));
    s.once('error', (e) => done({ ok: false, error: errorCode(e) }));
  });
}

export function udpRequest(host: string, port: number, timeoutMs: number): Promise<Attempt> {
  const t0 = performance.now();
  const nonce = `probe-${randomBytes(6).toString('hex')}`;
  return new Promise((resolve) => {
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let finished = false;
    const done = (a: Omit<Attempt, 'ms'>): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.close();
      resolve({ ...a, ms: performance.now() - t0 });
    };
    // UDP has no connection: silence (or an ICMP port unreachable, surfaced as ECONNREFUSED on a
    // connected socket) is the only failure signal.
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    s.on('error', (e) => done({ ok: false, error: errorCode(e) }));
    s.on('message', (msg) => {
      const r = parseUdpReply(msg.toString('utf8'), nonce);
      if ('mismatch' in r) return; // not the answer to this request; keep waiting
      done({ ok: true, replica: r });
    });
    s.connect(port, host, () => s.send(nonce));
  });
}

export function httpGet(host: string, port: number, path: string, timeoutMs: number): Promise<Attempt> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let finished = false;
    const done = (a: Omit<Attempt, 'ms'>): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...a, ms: performance.now() - t0 });
    };
    const req = http.get({ host, port, path, agent: false, headers: { connection: 'close', 'user-agent': 'meshd-probe' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) return done({ ok: false, error: `http-${status}` });
        done({ ok: true, replica: parseHttpReply(Buffer.concat(chunks).toString('utf8')) });
      });
      res.on('error', (e) => done({ ok: false, error: errorCode(e) }));
    });
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    req.on('error', (e) => done({ ok: false, error: errorCode(e) }));
  });
}

export function attempt(proto: Proto, host: string, port: number, opts: { timeoutMs: number; path?: string }): Promise<Attempt> {
  switch (proto) {
    case 'tcp':
      return tcpConnect(host, port, opts.timeoutMs);
    case 'udp':
      return udpRequest(host, port, opts.timeoutMs);
    case 'http':
      return httpGet(host, port, opts.path ?? '/', opts.timeoutMs);
  }
}
