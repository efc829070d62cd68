// Client for the daemon API: unix:///path.sock (local, root only) or tcp://host:2377 (remote).
import http from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';

export const DEFAULT_SOCKET = '/run/meshd/meshd.sock';

export class ClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export interface Target {
  socketPath?: string;
  host?: string;
  port?: number;
  display: string;
  /** TLS to a peer on 2377 (mutual when it carries a certificate); see control/ca/tls.ts */
  tls?: tls.ConnectionOptions;
  /** a keep-alive agent made for these TLS options; default: a fresh connection per call */
  agent?: https.Agent;
}

export function parseHost(h: string | undefined): Target {
  const v = h && h.length ? h : `unix://${DEFAULT_SOCKET}`;
  if (v.startsWith('unix://')) return { socketPath: v.slice('unix://'.length), display: v };
  const m = /^(?:tcp:\/\/)?\[?([^\]/]+?)\]?(?::(\d+))?$/.exec(v);
  if (!m) throw new ClientError(`"${v}" is not unix:///path.sock or tcp://HOST:PORT`, 0, 'invalid');
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 2377, display: v };
}

export function call<T = unknown>(target: Target, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const opts: https.RequestOptions = {
      method,
      path,
      ...(target.socketPath ? { socketPath: target.socketPath } : { host: target.host, port: target.port }),
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
      timeout: timeoutMs,
    };
    const req = (target.tls ? https.request : http.request)(
      target.tls ? { ...opts, ...target.tls, agent: target.agent ?? false } : opts,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
          } catch {
            return reject(new ClientError(`daemon at ${target.display} sent a malformed reply`, res.statusCode ?? 0, 'protocol'));
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = parsed as { error?: string; code?: string };
            return reject(new ClientError(e.error ?? `HTTP ${res.statusCode}`, res.statusCode ?? 0, e.code ?? 'error'));
          }
          resolve(parsed as T);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${target.display} within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? `cannot reach meshd at ${target.display}: is the daemon running? (set -H or MESH_HOST; in a lab: eval $(meshctl lab env n1))`
          : e.code === 'EACCES'
            ? `permission denied on ${target.display}: meshctl needs root for the local socket`
            : target.tls && /certificate|self.signed|issuer|SSL|TLS|not a (manager|worker)|holds a certificate|, not /i.test(`${e.code ?? ''} ${e.message}`)
              ? `refused to talk to ${target.display}: its TLS identity did not check out: ${e.message}`
              : `cannot reach meshd at ${target.display}: ${e.message}`;
      reject(new ClientError(why, 0, e.code ?? 'unreachable'));
    });
    if (data) req.write(data);
    req.end();
  });
}
