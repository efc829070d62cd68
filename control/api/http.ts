// A small JSON-over-HTTP router for the daemon's API (unix socket for meshctl, 2377 for peers).
import http from 'node:http';
import { z } from 'zod';
import type { Access } from '../ca/authz.js';
import type { NodeCertInfo } from '../ca/pki.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  /** 'local' for the root-only unix socket; 'remote' for 2377. */
  via: 'local' | 'remote';
  /** remote calls: the calling node, from its verified certificate (absent for anonymous calls) */
  peer?: NodeCertInfo;
  raw: http.IncomingMessage;
}

/** Decides whether a remote call may go ahead; returns the caller, or throws an ApiError. */
export type RemoteAuthorizer = (raw: http.IncomingMessage, access: Access, path: string) => NodeCertInfo | undefined;

type Handler = (req: Request) => Promise<unknown>;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
  /** served on 2377 too, to callers with this access (see control/ca/authz.ts) */
  access: Access | undefined;
}

const MAX_BODY = 1 << 20;

export class Router {
  private routes: Route[] = [];
  /** Judges remote callers; without one, no remote call is served. */
  authorizeRemote: RemoteAuthorizer | undefined;

  /**
   * Registers a route; with `access` it is also served on 2377 to peers that have that access
   * (checked on every request, not once per connection), otherwise only on the local socket.
   */
  on(method: string, path: string, handler: Handler, opts: { access?: Access } = {}): void {
    const keys: string[] = [];
    const pattern = new RegExp('^' + path.replace(/:(\w+)/g, (_, k: string) => (keys.push(k), '([^/]+)')) + '$');
    this.routes.push({ method, pattern, keys, handler, access: opts.access });
  }

  server(via: 'local' | 'remote'): http.Server {
    return http.createServer((req, res) => void this.handle(req, res, via));
  }

  private async handle(raw: http.IncomingMessage, res: http.ServerResponse, via: 'local' | 'remote'): Promise<void> {
    const url = new URL(raw.url ?? '/', 'http://meshd');
    try {
      let route: Route | undefined;
      let m: RegExpExecArray | null = null;
      for (const r of this.routes) {
        if (r.method !== raw.method) continue;
        m = r.pattern.exec(url.pathname);
        if (m) {
          route = r;
          break;
        }
      }
      if (!route || !m) throw new ApiError(404, 'not-found', `no API route ${raw.method} ${url.pathname}`);
      let peer: NodeCertInfo | undefined;
      if (via === 'remote') {
        if (!route.access) throw new ApiError(403, 'forbidden', `${url.pathname} is only served on the local socket`);
        if (!this.authorizeRemote) throw new ApiError(503, 'no-tls', 'this node has no TLS identity yet');
        peer = this.authorizeRemote(raw, route.access, url.pathname);
      }
      const body = await readBody(raw);
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => (params[k] = decodeURIComponent(m![i + 1]!)));
      const out = await route.handler({ method: raw.method ?? 'GET', path: url.pathname, params, query: url.searchParams, body, via, raw, ...(peer ? { peer } : {}) });
      send(res, 200, out ?? {});
    } catch (e) {
      if (e instanceof ApiError) send(res, e.status, { error: e.message, code: e.code });
      else if (e instanceof z.ZodError) send(res, 400, { error: `invalid request: ${e.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`, code: 'invalid' });
      else send(res, 500, { error: (e as Error).message ?? String(e), code: 'internal' });
    }
  }
}

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'too-large', `request body over ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!chunks.length) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new ApiError(400, 'invalid', 'request body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const b = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
  res.end(b);
}
