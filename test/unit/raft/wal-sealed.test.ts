// The WAL with a data key: records and snapshots are sealed, recovery (torn tails, flipped bytes)
// works as without encryption, nothing written is readable without the key, a wrong key is an error.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Wal, type WalBatch } from '../../../control/raft/wal.js';
import { MemoryStorage } from '../../../control/raft/storage.js';
import { seededRandom } from '../../../control/raft/rand.js';
import { cipherReady, randomKey, xchacha, type Cipher } from '../../../control/ca/seal.js';
import type { Entry } from '../../../control/raft/types.js';

await cipherReady();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-walx-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const fresh = (): string => path.join(tmp, String(++seq));
const MARK = 'PLAINTEXT-MARKER-7f3a';

/** Batches of entries whose data all contain MARK, one per batch, indices 1..n. */
function batches(n: number, seed: number): WalBatch[] {
  const r = seededRandom(seed);
  const out: WalBatch[] = [];
  let idx = 0;
  for (let b = 0; b < n; b++) {
    const entries: Entry[] = [];
    const k = 1 + Math.floor(r() * 4);
    for (let i = 0; i < k; i++) entries.push({ index: ++idx, term: 1 + b, type: 'normal', data: Buffer.from(`${MARK} ${idx} ${'x'.repeat(Math.floor(r() * 30))}`) });
    out.push({ entries, hardState: { term: 1 + b, vote: 'voter-name-in-clear?', commit: idx - 1 } });
  }
  return out;
}

function write(dir: string, c: Cipher | undefined, bs: WalBatch[]): number[] {
  const { wal } = Wal.open(dir, c);
  const ends = [0];
  for (const b of bs) {
    wal.save(b);
    ends.push(wal.bytes());
  }
  wal.close();
  return ends;
}

t.test('round trip with a data key; the file holds no plaintext', async (t) => {
  const c = xchacha(randomKey());
  const dir = fresh();
  const bs = batches(30, 1);
  write(dir, c, bs);
  const raw = fs.readFileSync(path.join(dir, 'wal'));
  t.notOk(raw.includes(MARK), 'entry data is not in the file in clear');
  t.notOk(raw.includes('voter-name-in-clear?'), 'the hard state is sealed too');
  const { wal, recovered } = Wal.open(dir, c);
  wal.close();
  const all = recovered.storage.allEntries();
  t.equal(all.length, bs.reduce((n, b) => n + b.entries.length, 0));
  t.equal(Buffer.from(all[all.length - 1]!.data).toString().startsWith(MARK), true);
  t.equal(recovered.storage.hardState.vote, 'voter-name-in-clear?');
  // without the key, or with another, opening fails loudly instead of returning an empty log
  t.throws(() => Wal.open(dir, xchacha(randomKey())), /does not decrypt with this node's data key/);
  t.throws(() => Wal.open(dir), /is encrypted: it can only be opened with the node's data key/, 'no key: an error, not a truncated log');
  t.equal(fs.readFileSync(path.join(dir, 'wal')).length, raw.length, 'and the file is untouched');
  const plainDir = fresh();
  write(plainDir, undefined, bs.slice(0, 2));
  t.throws(() => Wal.open(plainDir, c), /is not encrypted/, 'a plaintext WAL is not silently mixed with sealed records');
});

t.test('torn tails and flipped bytes: cut at the damaged record, the rest is intact', async (t) => {
  const r = seededRandom(9);
  const c = xchacha(randomKey());
  for (let i = 0; i < 30; i++) {
    const dir = fresh();
    const bs = batches(15, 50 + i);
    const ends = write(dir, c, bs);
    const file = path.join(dir, 'wal');
    const buf = fs.readFileSync(file);
    const at = Math.floor(r() * buf.length);
    if (i % 2) fs.truncateSync(file, at);
    else {
      buf[at] = buf[at]! ^ 0x5a;
      fs.writeFileSync(file, buf);
    }
    const { wal, recovered } = Wal.open(dir, c);
    let k = 0;
    while (k + 1 < ends.length && ends[k + 1]! <= at) k++;
    const before = bs.slice(0, k).reduce((n, b) => n + b.entries.length, 0);
    const last = recovered.storage.lastIndex();
    t.ok(last >= before && last <= before + (bs[k]?.entries.length ?? 0), `damage at ${at}: kept ${last} entries (batches before hold ${before})`);
    if (!ends.includes(at) || i % 2 === 0) t.ok(recovered.truncatedAt !== undefined && recovered.truncatedAt >= ends[k]! && recovered.truncatedAt <= at, `cut at ${recovered.truncatedAt}`);
    wal.save({ entries: [{ index: last + 1, term: 99, type: 'normal', data: new Uint8Array([1]) }] });
    wal.close();
    const again = Wal.open(dir, c);
    again.wal.close();
    t.equal(again.recovered.truncatedAt, undefined, 'clean after the repair');
    t.equal(again.recovered.storage.lastIndex(), last + 1);
  }
});

t.test('snapshots and rewrites are sealed; a wrong key cannot open the snapshot', async (t) => {
  const c = xchacha(randomKey());
  const dir = fresh();
  const bs = batches(10, 3);
  write(dir, c, bs);
  const { wal, recovered } = Wal.open(dir, c);
  const s: MemoryStorage = recovered.storage;
  const snap = s.createSnapshot(8, { voters: ['a'], learners: [] }, Buffer.from(`${MARK} snapshot body`));
  wal.saveSnapshot(snap);
  s.compact(8);
  wal.rewrite(s);
  wal.close();
  for (const f of ['wal', 'snap']) t.notOk(fs.readFileSync(path.join(dir, f)).includes(MARK), `${f} holds no plaintext`);
  t.equal((fs.statSync(path.join(dir, 'snap')).mode & 0o777).toString(8), '600');
  const again = Wal.open(dir, c);
  again.wal.close();
  t.equal(Buffer.from(again.recovered.storage.snapshot().data).toString(), `${MARK} snapshot body`);
  t.equal(again.recovered.storage.firstIndex(), 9);
  t.throws(() => Wal.open(dir, xchacha(randomKey())), /does not decrypt/);
});
