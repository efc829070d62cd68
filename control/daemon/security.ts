// The node's cryptographic identity at run time: its certificate, key and the cluster's root CA
// (STATE/certificates), the Raft data key, whether the node is locked, and the TLS targets and Raft
// dialer made from them. Files: root-ca.crt and node.crt are public; node.key (0600) holds the TLS key
// and the data key, sealed with the unlock key when autolock is on (control/ca/node-keys.ts).
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import type { Target } from '../api/client.js';
import type { Dialer } from '../transport/raft-peers.js';
import { createCsr, generateKeyPair, parseNodeCert, renewAt, verifyNodeCert, type NodeCertInfo } from '../ca/pki.js';
import { clientOptions, serverOptions, type NodeCredentials } from '../ca/tls.js';
import { newNodeSecrets, readKeyFile, unlockKeyId, unlockNodeSecrets, writeNodeSecrets, type NodeSecrets } from '../ca/node-keys.js';
import { xchacha, type Cipher } from '../ca/seal.js';

export class NodeSecurity {
  creds: NodeCredentials | undefined;
  private secrets: NodeSecrets | undefined;
  /** Locked: the key file is sealed and no unlock key was given since start. */
  lockedKekId: string | undefined;
  /** The unlock key's id the key file is sealed with now (undefined: not sealed). */
  private sealedWith: string | undefined;
  private agent: https.Agent | undefined;
  /** Called when the credentials change (renewal, promotion): the listener takes the new ones. */
  onChange: (c: NodeCredentials) => void = () => undefined;
  /** When this node should renew (ms since the epoch). */
  renewAtMs = Infinity;

  constructor(private readonly stateDir: string) {}

  get certDir(): string {
    return path.join(this.stateDir, 'certificates');
  }

  /** Reads the identity from disk: 'none' (never joined, or left), 'open', or 'locked'. */
  load(): 'none' | 'open' | 'locked' {
    const k = readKeyFile(this.certDir);
    if (k.state === 'missing') return 'none';
    if (k.state === 'locked') {
      this.lockedKekId = k.kekId;
      this.sealedWith = k.kekId;
      return 'locked';
    }
    this.activate(k.secrets);
    return 'open';
  }

  /** Opens a sealed key file with the unlock key (throws LockedError). */
  unlock(unlockKey: string): void {
    const s = unlockNodeSecrets(this.certDir, unlockKey);
    this.sealedWith = unlockKeyId(unlockKey);
    this.lockedKekId = undefined;
    this.activate(s);
  }

  private activate(s: NodeSecrets): void {
    this.secrets = s;
    const caCert = fs.readFileSync(path.join(this.certDir, 'root-ca.crt'), 'utf8');
    const cert = fs.readFileSync(path.join(this.certDir, 'node.crt'), 'utf8');
    this.setCreds({ caCert, cert, key: s.tlsKey, info: parseNodeCert(cert) });
  }

  private setCreds(c: NodeCredentials): void {
    this.creds = c;
    this.agent?.destroy();
    // one keep-alive pool for calls to managers; its TLS options are fixed, so a new certificate
    // means a new pool
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16 });
    this.renewAtMs = renewAt(c.info);
    this.onChange(c);
  }

  /**
   * Installs a certificate (join, renewal, role change) after checking it: issued by the root, in its
   * validity period, for this key. The data key is kept (a new one is made on first install).
   */
  async install(caCert: string, cert: string, tlsKey: string, unlockKey?: string): Promise<NodeCertInfo> {
    const info = await verifyNodeCert(cert, caCert, tlsKey);
    fs.mkdirSync(this.certDir, { recursive: true, mode: 0o700 });
    const s: NodeSecrets = this.secrets ? { ...this.secrets, tlsKey } : newNodeSecrets(tlsKey);
    // key first: a crash between the writes leaves a key without its certificate, which renewal or a
    // rejoin repairs; the reverse would leave a certificate no key can use
    writeNodeSecrets(this.certDir, s, unlockKey);
    this.sealedWith = unlockKey ? unlockKeyId(unlockKey) : undefined;
    writePublic(path.join(this.certDir, 'root-ca.crt'), caCert);
    writePublic(path.join(this.certDir, 'node.crt'), cert);
    this.secrets = s;
    this.setCreds({ caCert, cert, key: tlsKey, info });
    return info;
  }

  /** Re-seals the key file when the autolock setting (the unlock key) changed; true if it wrote. */
  reseal(unlockKey: string | undefined): boolean {
    if (!this.secrets) return false;
    const want = unlockKey ? unlockKeyId(unlockKey) : undefined;
    if (want === this.sealedWith) return false;
    writeNodeSecrets(this.certDir, this.secrets, unlockKey);
    this.sealedWith = want;
    return true;
  }

  /** A new key and its CSR, for renewal or a role change; install() the certificate that comes back. */
  async newRequest(nodeId: string): Promise<{ key: string; csr: string }> {
    const kp = await generateKeyPair();
    return { key: kp.key, csr: await createCsr(kp, nodeId) };
  }

  /** Forgets the identity (leave): certificates, keys and the data key go. */
  clear(): void {
    fs.rmSync(this.certDir, { recursive: true, force: true });
    this.creds = undefined;
    this.secrets = undefined;
    this.sealedWith = undefined;
    this.lockedKekId = undefined;
    this.agent?.destroy();
    this.agent = undefined;
    this.renewAtMs = Infinity;
  }

  cipher(): Cipher {
    if (!this.secrets) throw new Error('no data key: the node has no identity (or is locked)');
    return xchacha(Buffer.from(this.secrets.dek, 'base64'));
  }

  serverOptions(): tls.TlsOptions {
    return serverOptions(this.need());
  }

  private need(): NodeCredentials {
    if (!this.creds) throw new Error(this.lockedKekId ? 'this node is locked: run `meshctl swarm unlock`' : 'this node has no certificate: join a cluster first');
    return this.creds;
  }

  /** A manager of this cluster at addr (HOST:PORT), over the keep-alive pool. */
  managerTarget(host: string, port: number, display: string): Target {
    const c = this.need();
    return { host, port, display, tls: clientOptions(c, { role: 'manager', display }), ...(this.agent ? { agent: this.agent } : {}) };
  }

  /** A given node of this cluster (any role): a fresh connection, since the expected peer varies. */
  nodeTarget(host: string, port: number, display: string, nodeId: string): Target {
    return { host, port, display, tls: clientOptions(this.need(), { nodeId, display }) };
  }

  /** Raft connections: mutual TLS to the manager with that ID. */
  readonly dialRaft: Dialer = (host, port, peer) => tls.connect({ host, port, ...clientOptions(this.need(), { role: 'manager', nodeId: peer, display: `${host}:${port}` }) });
}

function writePublic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}
