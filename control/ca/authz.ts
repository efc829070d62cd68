// Who is on the other end of a 2377 connection, and may they do this? The TLS handshake proved the
// peer holds the key of the certificate it presented (if any); here the certificate itself is judged:
// issued by our root, in its validity period, for this cluster, not of a removed node. Requests then
// need a level of access: anonymous (joining: the root CA and the join call), any node of the
// cluster, or a manager (Raft, forwarded API calls, manager-to-agent calls).
import type tls from 'node:tls';
import { infoFromSubject, type NodeCertInfo } from './pki.js';

export type Access = 'anonymous' | 'node' | 'manager';

export type Peer = { kind: 'anonymous' } | { kind: 'node'; info: NodeCertInfo } | { kind: 'refused'; reason: string; nodeId?: string };

/** A removed node: certificates of it issued at or before `at` are refused. */
export interface Removal {
  at: string;
  /** after this, every certificate issued before the removal has expired: the entry can go */
  until: string;
}

export interface AuthzContext {
  clusterId: string;
  removed: (nodeId: string) => Removal | undefined;
  /** the node's role as the store records it now (managers only; undefined when unknown) */
  storeRole?: (nodeId: string) => 'manager' | 'worker' | undefined;
}

const WHY: Record<string, string> = {
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet (check the clocks)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it was not issued by this cluster\'s root CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it was not issued by this cluster\'s root CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed, not issued by this cluster\'s root CA',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify',
};

/** Judges the certificate a TLS peer presented. */
export function identify(sock: tls.TLSSocket, ctx: AuthzContext): Peer {
  const pc = sock.getPeerCertificate();
  if (!pc || !pc.subject) return { kind: 'anonymous' };
  const subj = pc.subject as unknown as { CN?: string; OU?: string; O?: string };
  const who = `${subj.CN ?? '?'} (${subj.OU ?? '?'})`;
  if (!sock.authorized) {
    const code = String(sock.authorizationError ?? 'unknown');
    const why = WHY[code] ?? code;
    const extra = code === 'CERT_HAS_EXPIRED' ? ` on ${new Date(pc.valid_to).toISOString()}; the node must leave and join again with a token` : '';
    return { kind: 'refused', reason: `the certificate of node ${who} was refused: ${why}${extra}`, ...(subj.CN ? { nodeId: subj.CN } : {}) };
  }
  let info: NodeCertInfo;
  try {
    info = infoFromSubject(subj, pc.serialNumber, new Date(pc.valid_from), new Date(pc.valid_to));
  } catch (e) {
    return { kind: 'refused', reason: (e as Error).message };
  }
  if (info.clusterId !== ctx.clusterId) return { kind: 'refused', reason: `node ${who} holds a certificate for cluster ${info.clusterId}, not this one (${ctx.clusterId})`, nodeId: info.nodeId };
  const r = ctx.removed(info.nodeId);
  if (r && info.notBefore.getTime() <= Date.parse(r.at)) {
    return { kind: 'refused', reason: `node ${who} was removed from the cluster at ${r.at}; its certificate is no longer accepted (it must leave and join again with a token)`, nodeId: info.nodeId };
  }
  return { kind: 'node', info };
}

/** Whether `peer` may make a call that needs `access`; the reason when not. */
export function authorize(peer: Peer, access: Access, ctx: AuthzContext): { ok: true } | { ok: false; status: 401 | 403; reason: string } {
  if (peer.kind === 'refused') return { ok: false, status: 401, reason: peer.reason };
  if (access === 'anonymous') return { ok: true };
  if (peer.kind === 'anonymous') return { ok: false, status: 401, reason: 'this call needs a node certificate of this cluster (join the cluster first)' };
  if (access === 'node') return { ok: true };
  if (peer.info.role !== 'manager') return { ok: false, status: 403, reason: `node ${peer.info.nodeId} is a worker: only managers may make this call` };
  const now = ctx.storeRole?.(peer.info.nodeId);
  // A demoted manager keeps its manager certificate until it renews: the store has the last word.
  if (now === 'worker') return { ok: false, status: 403, reason: `node ${peer.info.nodeId} is no longer a manager: only managers may make this call` };
  return { ok: true };
}
