// The 2377 listener: one port for Raft streams between managers and the HTTP API. A connection
// that starts with the Raft preamble goes to the Raft transport; anything else is HTTP.
// (With TLS, ALPN will make the same choice.)
import net from 'node:net';
import type http from 'node:http';
import { RAFT_PREAMBLE, type RaftTransport } from './raft-peers.js';

export class ControlListener {
  private server: net.Server;
  private sockets = new Set<net.Socket>();

  constructor(
    private readonly raft: () => RaftTransport | undefined,
    private readonly http: http.Server,
  ) {
    this.server = net.createServer((sock) => this.route(sock));
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  private route(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, RAFT_PREAMBLE.length);
      if (!head.subarray(0, n).equals(RAFT_PREAMBLE.subarray(0, n))) {
        sock.off('data', onData);
        sock.pause();
        sock.unshift(head);
        this.http.emit('connection', sock);
        sock.resume();
        return;
      }
      if (head.length < RAFT_PREAMBLE.length) return;
      sock.off('data', onData);
      const t = this.raft();
      if (!t) {
        sock.destroy(); // not a manager (yet): refuse Raft traffic
        return;
      }
      t.accept(sock, head.subarray(RAFT_PREAMBLE.length));
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
