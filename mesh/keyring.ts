// Gossip keyring and packet sealing. A ring holds up to 3 32-byte keys and names one primary:
// we seal with the primary and open with whichever key the header names, so rotation is
// "add everywhere, then make primary everywhere, then drop the old one" with no packet lost.
// Seal = XChaCha20-Poly1305 (libsodium); header = [version][key id u32][nonce 24] is the AEAD's
// associated data; nonce = [sender epoch 8][sequence u64][sender time ms u64]: random per process,
// unique per packet, and carrying what the replay and age checks need.
import sodium from 'libsodium-wrappers';
import { ReplayGuard } from './replay.js';

export const SEAL_VERSION = 1;
export const KEY_BYTES = 32;
export const MAX_KEYS = 3;
const HEADER = 1 + 4 + 24;
const TAG = 16;
export const SEAL_OVERHEAD = HEADER + TAG;

export async function sodiumReady(): Promise<void> {
  await sodium.ready;
}

/** Public key identifier: 4 bytes of BLAKE2b(key); shown in status, never the key. */
export function keyId(key: Uint8Array): number {
  const h = sodium.crypto_generichash(16, key, null);
  return (((h[0] as number) << 24) | ((h[1] as number) << 16) | ((h[2] as number) << 8) | (h[3] as number)) >>> 0;
}

export function generateKey(): Uint8Array {
  return sodium.randombytes_buf(KEY_BYTES);
}

export class Keyring {
  private keys: { id: number; key: Uint8Array }[] = [];
  private primary = 0;

  /** Call after sodiumReady(). The first key is the primary. */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new Error('keyring needs at least one key');
    for (const k of keys) this.add(k);
    this.primary = (this.keys[0] as { id: number }).id;
  }

  add(key: Uint8Array): number {
    if (key.length !== KEY_BYTES) throw new RangeError(`gossip keys are ${KEY_BYTES} bytes`);
    const id = keyId(key);
    if (this.keys.some((k) => k.id === id)) return id;
    if (this.keys.length >= MAX_KEYS) throw new Error(`keyring holds at most ${MAX_KEYS} keys`);
    this.keys.push({ id, key: key.slice() });
    return id;
  }

  use(id: number): void {
    if (!this.keys.some((k) => k.id === id)) throw new Error(`no key ${hexId(id)} in the ring`);
    this.primary = id;
  }

  remove(id: number): void {
    if (id === this.primary) throw new Error('cannot remove the primary key');
    this.keys = this.keys.filter((k) => k.id !== id);
  }

  get primaryId(): number {
    return this.primary;
  }

  ids(): number[] {
    return this.keys.map((k) => k.id);
  }

  key(id: number): Uint8Array | undefined {
    return this.keys.find((k) => k.id === id)?.key;
  }
}

export function hexId(id: number): string {
  return id.toString(16).padStart(8, '0');
}

export type DropReason = 'short' | 'version' | 'unknown-key' | 'auth' | 'replay' | 'too-old' | 'too-new' | 'decode';
export const DROP_REASONS: readonly DropReason[] = ['short', 'version', 'unknown-key', 'auth', 'replay', 'too-old', 'too-new', 'decode'];

export interface SealOptions {
  /** Packets whose sender time is older than this are dropped (ms). Bounds replays after LRU eviction. */
  maxAge?: number;
  /** ...or further in the future than this (clock skew allowance, ms). */
  maxSkew?: number;
  replayWindow?: number;
  maxSenders?: number;
}

export type OpenResult = { ok: true; plain: Uint8Array; keyId: number } | { ok: false; reason: DropReason };

export class Sealer {
  readonly dropped: Record<DropReason, number> = { short: 0, version: 0, 'unknown-key': 0, auth: 0, replay: 0, 'too-old': 0, 'too-new': 0, decode: 0 };
  private readonly epoch = sodium.randombytes_buf(8);
  private seq = 0;
  private readonly guard: ReplayGuard;
  private readonly maxAge: number;
  private readonly maxSkew: number;

  constructor(readonly ring: Keyring, o: SealOptions = {}) {
    this.maxAge = o.maxAge ?? 120_000;
    this.maxSkew = o.maxSkew ?? 60_000;
    this.guard = new ReplayGuard(o.maxSenders ?? 4096, o.replayWindow ?? 1024);
  }

  seal(plain: Uint8Array, now: number): Uint8Array {
    const id = this.ring.primaryId;
    const key = this.ring.key(id) as Uint8Array;
    const header = new Uint8Array(HEADER);
    const dv = new DataView(header.buffer);
    header[0] = SEAL_VERSION;
    dv.setUint32(1, id);
    header.set(this.epoch, 5);
    dv.setBigUint64(13, BigInt(++this.seq));
    dv.setBigUint64(21, BigInt(Math.max(0, Math.floor(now))));
    const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, header, null, header.subarray(5), key);
    const out = new Uint8Array(HEADER + ct.length);
    out.set(header);
    out.set(ct, HEADER);
    return out;
  }

  open(packet: Uint8Array, now: number): OpenResult {
    const r = this.tryOpen(packet, now);
    if (!r.ok) this.dropped[r.reason]++;
    return r;
  }

  /** Count a packet that opened but did not decode. */
  countDrop(reason: DropReason): void {
    this.dropped[reason]++;
  }

  private tryOpen(packet: Uint8Array, now: number): OpenResult {
    if (packet.length < SEAL_OVERHEAD) return { ok: false, reason: 'short' };
    if (packet[0] !== SEAL_VERSION) return { ok: false, reason: 'version' };
    const dv = new DataView(packet.buffer, packet.byteOffset, packet.length);
    const id = dv.getUint32(1);
    const key = this.ring.key(id);
    if (!key) return { ok: false, reason: 'unknown-key' };
    let plain: Uint8Array;
    try {
      plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, packet.subarray(HEADER), packet.subarray(0, HEADER), packet.subarray(5, HEADER), key);
    } catch {
      return { ok: false, reason: 'auth' };
    }
    // Only authenticated headers reach the window, so forged packets cannot poison it.
    const seq = Number(dv.getBigUint64(13));
    const ts = Number(dv.getBigUint64(21));
    if (now - ts > this.maxAge) return { ok: false, reason: 'too-old' };
    if (ts - now > this.maxSkew) return { ok: false, reason: 'too-new' };
    const sender = Buffer.from(packet.subarray(5, 13)).toString('hex');
    if (!this.guard.accept(sender, seq)) return { ok: false, reason: 'replay' };
    return { ok: true, plain, keyId: id };
  }
}
