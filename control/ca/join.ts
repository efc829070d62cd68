// The joining side of the PKI. A node that joins has no certificate and trusts nothing but its token:
//  1. it asks the manager for the cluster's root CA certificate (anonymous TLS: the answer is not
//     trusted yet) and checks its SHA-256 digest against the one the token pins;
//  2. every further call is TLS with that root as the only trust anchor, and the server must present
//     a manager certificate of the cluster: a manager with another CA (or an impostor holding a copy
//     of the public root certificate but no manager key) fails the handshake;
//  3. it makes its key pair locally and sends only a CSR: the private key never leaves the node.
import { call, type Target } from '../api/client.js';
import { joiningOptions, MIN_TLS } from './tls.js';
import { caClusterId, caDigest } from './pki.js';

export class JoinError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'JoinError';
  }
}

/** Fetches the root CA from a manager and checks it against the digest the token pins. */
export async function fetchPinnedRoot(host: string, port: number, display: string, digest: string): Promise<{ caCert: string; clusterId: string }> {
  const anon: Target = { host, port, display, tls: { rejectUnauthorized: false, minVersion: MIN_TLS } };
  const r = await call<{ caCert: string }>(anon, 'GET', '/v1/ca/root', undefined, 10_000);
  let got: string;
  try {
    got = caDigest(r.caCert);
  } catch {
    throw new JoinError(`the node at ${display} answered with something that is not a CA certificate; is it a meshd manager?`, 'wrong-ca');
  }
  if (got !== digest) {
    throw new JoinError(`the manager at ${display} presented a CA whose digest is ${got}, but the token pins ${digest}: check the token (and that ${display} is a manager of the cluster the token is for)`, 'wrong-ca');
  }
  return { caCert: r.caCert, clusterId: caClusterId(r.caCert) };
}

/** A target on the manager with the root pinned: the server must be a manager of that cluster. */
export function pinnedTarget(host: string, port: number, display: string, caCert: string, clusterId: string): Target {
  return { host, port, display, tls: joiningOptions(caCert, { clusterId, role: 'manager', display }) };
}
