// Join tokens: SWMTKN-1-<cluster digest>-<secret>. The digest lets a joining node check it reached the
// cluster it meant to (with the PKI it becomes the root CA's digest); the secret proves the role.
import crypto from 'node:crypto';

export type TokenRole = 'worker' | 'manager';

const TOKEN_RE = /^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$/;

function base36(bytes: Buffer, len: number): string {
  let n = BigInt(`0x${bytes.toString('hex')}`);
  let s = '';
  while (s.length < len) {
    s = (n % 36n).toString(36) + s;
    n /= 36n;
  }
  return s;
}

export function clusterDigest(clusterId: string): string {
  return base36(crypto.createHash('sha256').update(`meshd-cluster:${clusterId}`).digest(), 50);
}

export function newToken(clusterId: string): string {
  return `SWMTKN-1-${clusterDigest(clusterId)}-${base36(crypto.randomBytes(20), 25)}`;
}

export function newId(): string {
  return base36(crypto.randomBytes(20), 25);
}

export interface ParsedToken {
  digest: string;
  secret: string;
}

export function parseToken(t: string): ParsedToken {
  const m = TOKEN_RE.exec(t.trim());
  if (!m) throw new Error('malformed join token: expected SWMTKN-1-<50 characters>-<25 characters> (get one with `meshctl swarm join-token worker` on a manager)');
  return { digest: m[1]!, secret: m[2]! };
}

/** Which role a token grants in this cluster, or why it is refused. */
export function checkToken(token: string, clusterId: string, tokens: Record<TokenRole, string>): TokenRole {
  const p = parseToken(token);
  if (p.digest !== clusterDigest(clusterId)) throw new Error('join token is for a different cluster (its digest does not match this cluster)');
  for (const role of ['worker', 'manager'] as const) {
    const mine = parseToken(tokens[role]);
    if (crypto.timingSafeEqual(Buffer.from(mine.secret), Buffer.from(p.secret))) return role;
  }
  throw new Error('invalid join token: the secret does not match (it may have been rotated; get a current one with `meshctl swarm join-token`)');
}
