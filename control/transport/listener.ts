// The 2377 listener: TLS (mutual when the client has a certificate; see control/ca/tls.ts), and
// inside it one port for two protocols: a stream that starts with the Raft preamble goes to the Raft
// transport, anything else is HTTP (the API). Raft streams are admitted only from managers of this
// cluster, judged by the `admitRaft` callback at once after the preamble. Connections are tracked by
// the peer's node ID so that a removed node's open streams can be cut at once (revoke).
import tls from 'node:tls';
import type http from 'node:http';
import { RAFT_PREAMBLE, type RaftTransport } from './raft-peers.js';

export interface ListenerHooks {
  raft: () => RaftTransport | undefined;
  /** The peer's node ID if it may stream Raft messages, else the reason it may not. */
  admitRaft: (sock: tls.TLSSocket) => { ok: true; nodeId: string } | { ok: false; reason: string };
  /** The node ID in a peer's certificate (verified or not), for revoke() bookkeeping. */
  peerId: (sock: tls.TLSSocket) => string | undefined;
  /** Handshakes that failed and Raft streams refused; the daemon logs them (rate-limited). */
  refused: (remote: string, reason: string) => void;
}

export class ControlListener {
  private server: tls.Server;
  private sockets = new Set<tls.TLSSocket>();

  constructor(
    options: tls.TlsOptions,
    private readonly hooks: ListenerHooks,
    private readonly http: http.Server,
  ) {
    this.server = tls.createServer(options, (sock) => this.route(sock));
    this.server.on('tlsClientError', (err, sock) => {
      hooks.refused(`${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}`, `TLS handshake failed: ${err.message}`);
    });
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

  /** New certificate (renewal, promotion): used by every handshake from now on. */
  setCredentials(options: tls.SecureContextOptions): void {
    this.server.setSecureContext(options);
  }

  /** Cuts every open connection from this node (it was removed or demoted). */
  revoke(nodeId: string): number {
    let n = 0;
    for (const s of this.sockets) {
      if (this.hooks.peerId(s) === nodeId) {
        s.destroy();
        n++;
      }
    }
    return n;
  }

  private route(sock: tls.TLSSocket): void {
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
      const t = this.hooks.raft();
      const who = `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}`;
      if (!t) {
        sock.destroy(); // not a manager (yet): refuse Raft traffic
        return;
      }
      const ok = this.hooks.admitRaft(sock);
      if (!ok.ok) {
        this.hooks.refused(who, `Raft stream refused: ${ok.reason}`);
        sock.destroy();
        return;
      }
      t.accept(sock, head.subarray(RAFT_PREAMBLE.length), ok.nodeId);
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
