// Write-ahead log for the Raft core's persistent state.
//
// Directory layout:
//   wal   records: [u32 length][u32 crc32(payload)][payload]; payload = [u8 kind][body]
//           kind 1 entry (u64 index, u64 term, u8 type, data), 2 hard state (u64 term, u64 commit,
//           vote utf-8), 3 log reset (u64 index, u64 term): the log now starts after a snapshot
//   snap  latest snapshot: [u32 length][u32 crc32][u64 index][u64 term][u32 confLen][conf json][data],
//         replaced atomically (write temp file, fsync, rename, fsync directory)
//
// Encryption at rest: given a Cipher (the node's data key), every record's payload and the snapshot's
// body are sealed (XChaCha20-Poly1305, random nonce) before framing, so the length and CRC cover the
// sealed bytes and torn-tail recovery works exactly as without encryption. A record whose CRC holds
// but which does not open is not a torn write: it is a wrong key or tampering, and opening fails.
//
// One Ready is one durable write (group commit): the log is opened with O_DSYNC where the platform
// has it, so write() returns only once the data (and the file size) is on disk, the same guarantee
// as write() + fdatasync() but in one system call and, for saveAsync(), one trip to the thread pool
// instead of two; elsewhere it is write() + fsync(). A crash can leave a torn last write; on
// open, the first record that is short or fails its checksum marks the end of the log and the file
// is truncated there. Everything before it was fsynced in earlier batches.
//
// Two ways to save a batch: save() blocks (start-up, recovery, tests), saveAsync() runs the write and
// the fsync on libuv's thread pool so the event loop keeps working meanwhile (the manager's normal
// path). At most one saveAsync() is in flight and nothing else touches the file until it completes;
// close() during one waits for it, so no write ever reaches a closed (and possibly reused) fd.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { MemoryStorage } from './storage.js';
import type { Cipher } from '../ca/seal.js';
import { EMPTY_HARD_STATE, RaftError, type ConfState, type Entry, type HardState, type Snapshot } from './types.js';

const KIND_ENTRY = 1;
const KIND_HARD = 2;
const KIND_RESET = 3;
/** First byte of a sealed record: a reader without the key stops with an error, never truncates. */
const SEALED = 0x80;
const HEADER = 8;
const MAX_RECORD = 256 << 20;

export interface Recovered {
  storage: MemoryStorage;
  /** Byte offset where a torn or corrupt tail was cut off, if any. */
  truncatedAt?: number;
}

export interface WalBatch {
  hardState?: HardState;
  entries: readonly Entry[];
  snapshot?: Snapshot;
}

function crc32(b: Uint8Array): number {
  return zlib.crc32(b) >>> 0;
}

/** Seals a payload (or passes it through when the WAL is not encrypted). */
type Sealer = (p: Buffer) => Buffer;
const plain: Sealer = (p) => p;

function frame(payload: Buffer): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt32LE(payload.length, 0);
  h.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([h, payload]);
}

function u64(b: Buffer, off: number, v: number): void {
  b.writeBigUInt64LE(BigInt(v), off);
}

function r64(b: Buffer, off: number): number {
  return Number(b.readBigUInt64LE(off));
}

function encodeEntry(e: Entry, seal: Sealer): Buffer {
  const p = Buffer.allocUnsafe(18 + e.data.length);
  p[0] = KIND_ENTRY;
  u64(p, 1, e.index);
  u64(p, 9, e.term);
  p[17] = e.type === 'conf' ? 1 : 0;
  p.set(e.data, 18);
  return frame(seal(p));
}

function encodeHard(h: HardState, seal: Sealer): Buffer {
  const vote = Buffer.from(h.vote, 'utf8');
  const p = Buffer.allocUnsafe(17 + vote.length);
  p[0] = KIND_HARD;
  u64(p, 1, h.term);
  u64(p, 9, h.commit);
  vote.copy(p, 17);
  return frame(seal(p));
}

function encodeReset(index: number, term: number, seal: Sealer): Buffer {
  const p = Buffer.allocUnsafe(17);
  p[0] = KIND_RESET;
  u64(p, 1, index);
  u64(p, 9, term);
  return frame(seal(p));
}

function encodeSnapshot(s: Snapshot, seal: Sealer): Buffer {
  const conf = Buffer.from(JSON.stringify(s.meta.conf), 'utf8');
  const p = Buffer.allocUnsafe(20 + conf.length + s.data.length);
  u64(p, 0, s.meta.index);
  u64(p, 8, s.meta.term);
  p.writeUInt32LE(conf.length, 16);
  conf.copy(p, 20);
  p.set(s.data, 20 + conf.length);
  return frame(seal(p));
}

function decodeSnapshot(b: Buffer, open: Sealer): Snapshot | null {
  if (b.length < HEADER) return null;
  const len = b.readUInt32LE(0);
  if (HEADER + len !== b.length) return null;
  const sealed = b.subarray(HEADER);
  if (crc32(sealed) !== b.readUInt32LE(4)) return null;
  const p = open(sealed);
  if (p.length < 20) return null;
  const confLen = p.readUInt32LE(16);
  if (20 + confLen > p.length) return null;
  const conf = JSON.parse(p.subarray(20, 20 + confLen).toString('utf8')) as ConfState;
  return { meta: { index: r64(p, 0), term: r64(p, 8), conf }, data: new Uint8Array(p.subarray(20 + confLen)) };
}

/** O_DSYNC if this platform has it: every write() on the log is then durable when it returns. */
const O_DSYNC = fs.constants.O_DSYNC ?? 0;

/** Opens the log for appending; with O_DSYNC when available (see the top of this file). */
function openLog(file: string): number {
  const c = fs.constants;
  return fs.openSync(file, c.O_WRONLY | c.O_APPEND | c.O_CREAT | O_DSYNC, 0o600);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class Wal {
  private fd: number;
  /** Durable writes made (one per non-empty batch). */
  syncs = 0;
  private size: number;
  /** A saveAsync() is in flight. */
  private writing = false;
  /** close() was called (it may still be waiting for the write in flight). */
  private closing = false;
  private closed = false;

  private readonly seal: Sealer;

  private constructor(
    readonly dir: string,
    fd: number,
    size: number,
    cipher: Cipher | undefined,
  ) {
    this.fd = fd;
    this.size = size;
    this.seal = cipher ? (p) => Buffer.concat([Buffer.of(SEALED), cipher.seal(p)]) : plain;
  }

  /**
   * Open (or create) the WAL in `dir`, recovering the persisted state and cutting any torn tail.
   * With a cipher, records and the snapshot are sealed with it (see the top of this file).
   */
  static open(dir: string, cipher?: Cipher): { wal: Wal; recovered: Recovered } {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const open: Sealer = cipher
      ? (p) => {
          if (p[0] !== SEALED) throw new RaftError(`wal: ${dir} is not encrypted (written without a data key); refusing to mix plaintext and sealed records`);
          try {
            return cipher.open(p.subarray(1));
          } catch (e) {
            throw new RaftError(`wal: ${dir} does not decrypt with this node's data key (${(e as Error).message}); it was written with another key or altered`);
          }
        }
      : (p) => {
          if (p[0] === SEALED) throw new RaftError(`wal: ${dir} is encrypted: it can only be opened with the node's data key`);
          return p;
        };
    const walPath = path.join(dir, 'wal');
    const snapPath = path.join(dir, 'snap');
    let snap: Snapshot | null = null;
    if (fs.existsSync(snapPath)) {
      snap = decodeSnapshot(fs.readFileSync(snapPath), open);
      // the snapshot file is replaced atomically, so a bad one is real corruption, not a torn write
      if (!snap) throw new RaftError(`corrupt snapshot file ${snapPath}`);
    }
    const buf = fs.existsSync(walPath) ? fs.readFileSync(walPath) : Buffer.alloc(0);

    // Replay: the log is base (index, term) followed by contiguous entries.
    let baseIndex = 0;
    let baseTerm = 0;
    let ents: Entry[] = [];
    let hard: HardState = EMPTY_HARD_STATE;
    let off = 0;
    let truncatedAt: number | undefined;
    while (off < buf.length) {
      if (off + HEADER > buf.length) {
        truncatedAt = off;
        break;
      }
      let len = buf.readUInt32LE(off);
      const storedLen = len;
      if (len < 1 || len > MAX_RECORD || off + HEADER + len > buf.length) {
        truncatedAt = off;
        break;
      }
      const stored = buf.subarray(off + HEADER, off + HEADER + len);
      if (crc32(stored) !== buf.readUInt32LE(off + 4)) {
        truncatedAt = off;
        break;
      }
      const p = open(stored);
      len = p.length;
      const kind = p[0];
      if (kind === KIND_ENTRY && len >= 18) {
        const e: Entry = { index: r64(p, 1), term: r64(p, 9), type: p[17] === 1 ? 'conf' : 'normal', data: new Uint8Array(p.subarray(18)) };
        const last = baseIndex + ents.length;
        if (e.index > last + 1) throw new RaftError(`wal: gap before entry ${e.index} (last ${last})`);
        if (e.index <= baseIndex) {
          // before a reset point: superseded
        } else {
          ents.length = e.index - baseIndex - 1; // overwrite a conflicting suffix
          ents.push(e);
        }
      } else if (kind === KIND_HARD && len >= 17) {
        hard = { term: r64(p, 1), commit: r64(p, 9), vote: p.subarray(17).toString('utf8') };
      } else if (kind === KIND_RESET && len >= 17) {
        const idx = r64(p, 1);
        const term = r64(p, 9);
        if (!snap || snap.meta.index < idx) {
          // its snapshot never made it to disk: the batch it belongs to is incomplete
          truncatedAt = off;
          break;
        }
        baseIndex = idx;
        baseTerm = term;
        ents = [];
      } else {
        truncatedAt = off;
        break;
      }
      off += HEADER + storedLen;
    }
    if (truncatedAt !== undefined) {
      fs.truncateSync(walPath, truncatedAt);
    }

    const storage = new MemoryStorage();
    if (snap && snap.meta.index > 0) {
      storage.applySnapshot(snap);
      // keep the logged entries only if they continue the snapshot's history
      const si = snap.meta.index;
      const termAt = si === baseIndex ? baseTerm : si > baseIndex && si <= baseIndex + ents.length ? ents[si - baseIndex - 1]!.term : -1;
      if (termAt === snap.meta.term) storage.append(ents.filter((e) => e.index > si));
    } else {
      if (baseIndex !== 0) throw new RaftError('wal: log reset without a snapshot');
      storage.append(ents);
    }
    const last = storage.lastIndex();
    const commit = Math.max(storage.snapshot().meta.index, Math.min(hard.commit, last));
    storage.setHardState({ ...hard, commit });

    const fd = openLog(walPath);
    const size = fs.fstatSync(fd).size;
    fsyncDir(dir); // make the file's creation durable too
    const recovered: Recovered = truncatedAt === undefined ? { storage } : { storage, truncatedAt };
    return { wal: new Wal(dir, fd, size, cipher), recovered };
  }

  /** Persist one Ready: snapshot file first, then all records with a single write and fsync. */
  save(b: WalBatch): void {
    this.checkIdle('save');
    const buf = this.encodeBatch(b);
    if (!buf) return;
    let done = 0;
    while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done);
    if (!O_DSYNC) fs.fsyncSync(this.fd);
    this.size += buf.length;
    this.syncs++;
  }

  /**
   * Like save(), but the write (and fsync) run on the thread pool; `done` runs once the batch is durable
   * (or failed: the log's tail is then unknown and the caller must not go on as if it were written).
   * A snapshot in the batch is still saved synchronously first (rare: a follower far behind).
   * Until `done` runs, no other save, saveSnapshot or rewrite may be called.
   */
  saveAsync(b: WalBatch, done: (err: Error | null) => void): void {
    this.checkIdle('saveAsync');
    const buf = this.encodeBatch(b);
    if (!buf) {
      process.nextTick(done, null);
      return;
    }
    this.writing = true;
    const fd = this.fd;
    let off = 0;
    const finish = (err: Error | null): void => {
      this.writing = false;
      if (!err) {
        this.size += buf.length;
        this.syncs++;
      }
      if (this.closing && !this.closed) this.closeNow();
      done(err);
    };
    const wrote = (err: Error | null, n: number): void => {
      if (err) return finish(err);
      off += n;
      if (off < buf.length) fs.write(fd, buf, off, buf.length - off, null, wrote);
      else if (!O_DSYNC) fs.fsync(fd, finish);
      else finish(null);
    };
    fs.write(fd, buf, 0, buf.length, null, wrote);
  }

  /** A saveAsync() has not completed yet. */
  busy(): boolean {
    return this.writing;
  }

  private checkIdle(what: string): void {
    if (this.closing) throw new RaftError(`wal: ${what} after close`);
    if (this.writing) throw new RaftError(`wal: ${what} while an asynchronous write is in flight`);
  }

  /** The batch's records as one buffer (null if there are none); saves its snapshot file first. */
  private encodeBatch(b: WalBatch): Buffer | null {
    const parts: Buffer[] = [];
    if (b.snapshot) {
      this.saveSnapshot(b.snapshot);
      parts.push(encodeReset(b.snapshot.meta.index, b.snapshot.meta.term, this.seal));
    }
    for (const e of b.entries) parts.push(encodeEntry(e, this.seal));
    if (b.hardState) parts.push(encodeHard(b.hardState, this.seal));
    if (!parts.length) return null;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Atomically replace the snapshot file (for snapshots made locally when compacting). */
  saveSnapshot(s: Snapshot): void {
    if (this.closing) throw new RaftError('wal: saveSnapshot after close');
    const tmp = path.join(this.dir, 'snap.tmp');
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      const b = encodeSnapshot(s, this.seal);
      let done = 0;
      while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(this.dir, 'snap'));
    fsyncDir(this.dir);
  }

  /** Bytes in the log file: rewrite() it after compaction when it grows too large. */
  bytes(): number {
    return this.size;
  }

  /**
   * Rewrite the log to hold only what `storage` still holds (after compaction). The snapshot covering
   * the compacted prefix must already be saved.
   */
  rewrite(storage: MemoryStorage): void {
    this.checkIdle('rewrite');
    const first = storage.firstIndex();
    const baseTerm = storage.term(first - 1) ?? 0;
    const parts = [encodeReset(first - 1, baseTerm, this.seal), ...storage.allEntries().map((e) => encodeEntry(e, this.seal)), encodeHard(storage.hardState, this.seal)];
    if (first - 1 === 0) parts.shift();
    const tmp = path.join(this.dir, 'wal.tmp');
    const buf = Buffer.concat(parts);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      let done = 0;
      while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.closeSync(this.fd);
    fs.renameSync(tmp, path.join(this.dir, 'wal'));
    fsyncDir(this.dir);
    this.fd = openLog(path.join(this.dir, 'wal'));
    this.size = buf.length;
  }

  /** Close the file; if a saveAsync() is in flight, only once it has completed (its callback still runs). */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (!this.writing) this.closeNow();
  }

  private closeNow(): void {
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
