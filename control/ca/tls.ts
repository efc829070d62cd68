// TLS settings for port 2377, from the node's credentials. Every connection is TLS 1.2 or newer and
// verified against the cluster's root CA only (never the system store). Servers ask every client for a
// certificate but let a client without one finish the handshake, because a joining node has none
// yet: what such a connection may do is decided per request (control/ca/authz.ts). Clients always
// check that the server is the node they meant: a manager of this cluster, or a given node ID.
import type tls from 'node:tls';
import type { NodeCertInfo, NodeRole } from './pki.js';
import { OU } from './pki.js';

export const MIN_TLS = 'TLSv1.2';

export interface NodeCredentials {
  caCert: string;
  cert: string;
  /** PEM PKCS#8 */
  key: string;
  info: NodeCertInfo;
}

/** Options for the 2377 listener (and its setSecureContext on renewal). */
export function serverOptions(c: NodeCredentials): tls.TlsOptions {
  return { key: c.key, cert: c.cert, ca: [c.caCert], requestCert: true, rejectUnauthorized: false, minVersion: MIN_TLS };
}

export interface ServerExpectation {
  clusterId: string;
  /** the server must hold this role (e.g. a manager, for the dispatcher and forwarded calls) */
  role?: NodeRole;
  /** the server must be this node */
  nodeId?: string;
  /** for error messages */
  display: string;
}

/** Node's `checkServerIdentity` for our certificates: no host names, the subject's CN/OU/O instead. */
export function checkPeer(expect: ServerExpectation): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const s = cert.subject as unknown as Record<string, string | undefined>;
    if (s.O !== expect.clusterId) return new Error(`the node at ${expect.display} holds a certificate for cluster ${s.O ?? '?'}, not ${expect.clusterId}`);
    if (expect.role && s.OU !== OU[expect.role]) return new Error(`the node at ${expect.display} is not a ${expect.role} (its certificate says ${s.OU ?? '?'})`);
    if (expect.nodeId && s.CN !== expect.nodeId) return new Error(`the node at ${expect.display} is ${s.CN ?? '?'}, not ${expect.nodeId}`);
    return undefined;
  };
}

/** Options to connect to a peer with this node's certificate. */
export function clientOptions(c: NodeCredentials, expect: Omit<ServerExpectation, 'clusterId'>): tls.ConnectionOptions {
  return { key: c.key, cert: c.cert, ca: [c.caCert], minVersion: MIN_TLS, rejectUnauthorized: true, checkServerIdentity: checkPeer({ ...expect, clusterId: c.info.clusterId }) };
}

/** Options for a node that is joining: no certificate of its own, the server pinned to `caCert`. */
export function joiningOptions(caCert: string, expect: ServerExpectation): tls.ConnectionOptions {
  return { ca: [caCert], minVersion: MIN_TLS, rejectUnauthorized: true, checkServerIdentity: checkPeer(expect) };
}
