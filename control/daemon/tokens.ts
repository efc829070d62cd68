// Join tokens: SWMTKN-1-<digest of the root CA certificate>-<secret>. The digest lets a joining node
// pin the cluster's CA before it trusts anything a manager says (control/ca/join.ts); the secret
// proves the role. Tokens live only in the (encrypted) Raft store; a node forgets its token once
// it has joined.
import crypto from 'node:crypto';
import { base36, caDigest } from '../ca/pki.js';

export type TokenRole = 'worker' | 'manager';

const TOKEN_RE = /^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$/;

export function newToken(caCertPem: string): string {
  return `SWMTKN-1-${caDigest(caCertPem)}-${base36(crypto.randomBytes(20), 25)}`;
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
export function checkToken(token: string, caCertPem: string, tokens: Record<TokenRole, string>): TokenRole {
  const p = parseToken(token);
  if (p.digest !== caDigest(caCertPem)) throw new Error('join token is for a different cluster (its CA digest does not match this cluster\'s root CA)');
  for (const role of ['worker', 'manager'] as const) {
    const mine = parseToken(tokens[role]);
    if (crypto.timingSafeEqual(Buffer.from(mine.secret), Buffer.from(p.secret))) return role;
  }
  throw new Error('invalid join token: the secret does not match (it may have been rotated; get a current one with `meshctl swarm join-token`)');
}
