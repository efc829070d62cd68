// Authenticated encryption for data at rest: XChaCha20-Poly1305 (libsodium) with a random 192-bit
// nonce per message, so one key can seal any number of records without nonce bookkeeping. A sealed
// message is [nonce 24][ciphertext + tag 16]. Call `await cipherReady()` once before using a Cipher.
import crypto from 'node:crypto';
import sodium from 'libsodium-wrappers';

export const KEY_BYTES = 32;
const NONCE = 24;
const TAG = 16;
/** What sealing adds to a message. */
export const SEAL_OVERHEAD = NONCE + TAG;

export async function cipherReady(): Promise<void> {
  await sodium.ready;
}

export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

/** The operations the WAL and the key file need; a Cipher holds one key. */
export interface Cipher {
  seal(plain: Uint8Array, ad?: Uint8Array): Buffer;
  open(sealed: Uint8Array, ad?: Uint8Array): Buffer;
}

// Nonces come from a pool filled by the OS CSPRNG in one call per 512 nonces: libsodium's own
// randombytes (the wasm build) asks Node for 4 bytes at a time, which cost ~7% of a manager's CPU
// under write load (one nonce per WAL record).
const POOL_NONCES = 512;
let pool = Buffer.alloc(0);
let poolAt = 0;

function nextNonce(): Buffer {
  if (poolAt + NONCE > pool.length) {
    pool = crypto.randomBytes(NONCE * POOL_NONCES);
    poolAt = 0;
  }
  const n = pool.subarray(poolAt, poolAt + NONCE);
  poolAt += NONCE;
  return n;
}

export function randomKey(): Buffer {
  return Buffer.from(sodium.randombytes_buf(KEY_BYTES));
}

export function xchacha(key: Uint8Array): Cipher {
  if (key.length !== KEY_BYTES) throw new SealError(`a data key is ${KEY_BYTES} bytes, not ${key.length}`);
  const k = Uint8Array.from(key);
  return {
    seal(plain, ad) {
      const nonce = nextNonce();
      const c = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad ?? null, null, nonce, k);
      const out = Buffer.allocUnsafe(NONCE + c.length);
      out.set(nonce, 0);
      out.set(c, NONCE);
      return out;
    },
    open(sealed, ad) {
      if (sealed.length < SEAL_OVERHEAD) throw new SealError('sealed data is too short');
      try {
        return Buffer.from(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(NONCE), ad ?? null, sealed.subarray(0, NONCE), k));
      } catch {
        throw new SealError('sealed data does not open with this key (wrong key, or the data was altered)');
      }
    },
  };
}

/** A key derived for one purpose from a secret (BLAKE2b keyed with the purpose). */
export function deriveKey(secret: Uint8Array, purpose: string): Buffer {
  return Buffer.from(sodium.crypto_generichash(KEY_BYTES, secret, Buffer.from(purpose.padEnd(16, '.').slice(0, 64))));
}
