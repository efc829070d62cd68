// The node's secrets on disk: certificates/node.key holds the node's TLS private key and the data
// key (DEK) that encrypts this manager's Raft WAL and snapshots. It is the one file under the state
// directory that holds key material, mode 0600 in a 0700 directory. With autolock on (managers), its
// content is sealed with a key-encryption key derived from the unlock key, which is never written to
// disk: a restarted manager can then neither speak TLS nor read its Raft data until `swarm unlock`.
// (Swarm keeps the DEK in a header of the node's key PEM, encrypted the same way.)
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { deriveKey, randomKey, xchacha, SealError } from './seal.js';

export interface NodeSecrets {
  /** PEM PKCS#8 of the node's TLS key */
  tlsKey: string;
  /** base64 of the 32-byte Raft data key */
  dek: string;
}

interface OpenFile {
  v: 1;
  locked: false;
  secrets: NodeSecrets;
}

interface LockedFile {
  v: 1;
  locked: true;
  /** which unlock key sealed it (a short id, not the key) */
  kekId: string;
  sealed: string;
}

type KeyFile = OpenFile | LockedFile;

const UNLOCK_RE = /^SWMKEY-1-([A-Za-z0-9+/]{43}=)$/;

export class LockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockedError';
  }
}

/** A fresh unlock key: SWMKEY-1-<base64 of 32 random bytes>. */
export function newUnlockKey(): string {
  return `SWMKEY-1-${crypto.randomBytes(32).toString('base64')}`;
}

function kek(unlockKey: string): { key: Buffer; id: string } {
  const m = UNLOCK_RE.exec(unlockKey.trim());
  if (!m) throw new LockedError('malformed unlock key: expected SWMKEY-1-<44 base64 characters> (`meshctl swarm unlock-key` on an unlocked manager shows it)');
  const key = deriveKey(Buffer.from(m[1]!, 'base64'), 'meshd-kek-v1');
  return { key, id: crypto.createHash('sha256').update(key).digest('hex').slice(0, 12) };
}

export function unlockKeyId(unlockKey: string): string {
  return kek(unlockKey).id;
}

export function keyFilePath(certDir: string): string {
  return path.join(certDir, 'node.key');
}

export function newNodeSecrets(tlsKey: string): NodeSecrets {
  return { tlsKey, dek: randomKey().toString('base64') };
}

/** Writes the key file atomically, sealed when `unlockKey` is given. */
export function writeNodeSecrets(certDir: string, s: NodeSecrets, unlockKey?: string): void {
  fs.mkdirSync(certDir, { recursive: true, mode: 0o700 });
  let f: KeyFile;
  if (unlockKey) {
    const k = kek(unlockKey);
    f = { v: 1, locked: true, kekId: k.id, sealed: xchacha(k.key).seal(Buffer.from(JSON.stringify(s)), Buffer.from('meshd node.key v1')).toString('base64') };
  } else {
    f = { v: 1, locked: false, secrets: s };
  }
  const file = keyFilePath(certDir);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(f));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

export type KeyFileState = { state: 'missing' } | { state: 'open'; secrets: NodeSecrets } | { state: 'locked'; kekId: string };

export function readKeyFile(certDir: string): KeyFileState {
  let text: string;
  try {
    text = fs.readFileSync(keyFilePath(certDir), 'utf8');
  } catch {
    return { state: 'missing' };
  }
  const f = JSON.parse(text) as KeyFile;
  if (f.locked) return { state: 'locked', kekId: f.kekId };
  return { state: 'open', secrets: f.secrets };
}

/** Opens a sealed key file with the unlock key; throws LockedError with the reason. */
export function unlockNodeSecrets(certDir: string, unlockKey: string): NodeSecrets {
  const f = JSON.parse(fs.readFileSync(keyFilePath(certDir), 'utf8')) as KeyFile;
  if (!f.locked) return f.secrets;
  const k = kek(unlockKey);
  try {
    return JSON.parse(xchacha(k.key).open(Buffer.from(f.sealed, 'base64'), Buffer.from('meshd node.key v1')).toString('utf8')) as NodeSecrets;
  } catch (e) {
    if (e instanceof SealError) throw new LockedError('invalid unlock key: it does not open this manager\'s keys (was it rotated? use the key that was current when this manager stopped)');
    throw e;
  }
}
