import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Wal, type WalBatch } from '../../../control/raft/wal.js';
import { MemoryStorage } from '../../../control/raft/storage.js';
import { seededRandom } from '../../../control/raft/rand.js';
import type { Entry, HardState, Snapshot } from '../../../control/raft/types.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-wal-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirSeq = 0;
const freshDir = (): string => path.join(tmp, String(++dirSeq));

interface Mirror {
  hard: HardState;
  ents: Entry[];
}

/** A random history of batches like a follower would persist: appends, conflicting overwrites, votes. */
function genBatches(seed: number, n: number): WalBatch[] {
  const r = seededRandom(seed);
  const out: WalBatch[] = [];
  let last = 0;
  let term = 1;
  let commit = 0;
  for (let b = 0; b < n; b++) {
    if (r() < 0.2) term++;
    // overwrite an uncommitted suffix sometimes
    let from = last + 1;
    if (r() < 0.2 && last > commit) from = commit + 1 + Math.floor(r() * (last - commit));
    const count = 1 + Math.floor(r() * 5);
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) {
      const data = new Uint8Array(Math.floor(r() * 40));
      for (let j = 0; j < data.length; j++) data[j] = Math.floor(r() * 256);
      entries.push({ index: from + i, term, type: r() < 0.1 ? 'conf' : 'normal', data });
    }
    last = from + count - 1;
    commit = Math.max(commit, Math.floor(commit + r() * (last - commit)));
    out.push({ entries, hardState: { term, vote: r() < 0.5 ? 'n1' : 'n2', commit } });
  }
  return out;
}

function applyBatch(m: Mirror, b: WalBatch, upTo = b.entries.length, withHard = true): Mirror {
  let ents = m.ents.slice();
  for (const e of b.entries.slice(0, upTo)) {
    ents = ents.slice(0, e.index - 1);
    ents.push(e);
  }
  return { hard: withHard && b.hardState ? b.hardState : m.hard, ents };
}

function same(s: MemoryStorage, m: Mirror): boolean {
  const got = s.allEntries();
  if (got.length !== m.ents.length) return false;
  for (let i = 0; i < got.length; i++) {
    const a = got[i]!;
    const b = m.ents[i]!;
    if (a.index !== b.index || a.term !== b.term || a.type !== b.type || Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) !== 0) return false;
  }
  const h = s.hardState;
  return h.term === m.hard.term && h.vote === m.hard.vote && h.commit === Math.min(m.hard.commit, m.ents.length);
}

/** Write batches, returning the mirrors after each and the file offset after each batch. */
function writeAll(dir: string, batches: WalBatch[]): { mirrors: Mirror[]; ends: number[]; syncs: number } {
  const { wal } = Wal.open(dir);
  const mirrors: Mirror[] = [{ hard: { term: 0, vote: '', commit: 0 }, ents: [] }];
  const ends: number[] = [0];
  for (const b of batches) {
    wal.save(b);
    mirrors.push(applyBatch(mirrors[mirrors.length - 1]!, b));
    ends.push(wal.bytes());
  }
  const syncs = wal.syncs;
  wal.close();
  return { mirrors, ends, syncs };
}

t.test('round trip, one fsync per batch', async (t) => {
  const dir = freshDir();
  const batches = genBatches(1, 50);
  const { mirrors, syncs } = writeAll(dir, batches);
  t.equal(syncs, 50, 'group commit: one fsync per batch');
  const { wal, recovered } = Wal.open(dir);
  wal.close();
  t.equal(recovered.truncatedAt, undefined);
  t.ok(same(recovered.storage, mirrors[mirrors.length - 1]!), 'recovered state equals what was written');
});

/** After damage at `at`, the state must be: all batches before the damaged one, plus a prefix of its entries. */
function checkRecovery(t: Test, dir: string, mirrors: Mirror[], ends: number[], batches: WalBatch[], at: number, label: string, mustCut: boolean): void {
  const { wal, recovered } = Wal.open(dir);
  // batch k+1 holds the damaged byte
  let k = 0;
  while (k + 1 < ends.length && ends[k + 1]! <= at) k++;
  const base = mirrors[k]!;
  const b = batches[k];
  let ok = same(recovered.storage, base);
  if (!ok && b) for (let j = 1; j <= b.entries.length && !ok; j++) ok = same(recovered.storage, applyBatch(base, b, j, false));
  t.ok(ok, `${label}: state is batches < ${k + 1} plus a prefix of batch ${k + 1}`);
  // a cut on a record boundary leaves no torn record behind; a flipped byte always does
  const cut = recovered.truncatedAt;
  t.ok(cut === undefined ? !mustCut : cut >= ends[k]! && cut <= at, `${label}: cut at ${cut} in [${ends[k]}, ${at}]`);
  // the log continues cleanly after the cut
  const extra: WalBatch = { entries: [{ index: recovered.storage.lastIndex() + 1, term: 99, type: 'normal', data: new Uint8Array([7]) }], hardState: { term: 99, vote: '', commit: 0 } };
  wal.save(extra);
  wal.close();
  const again = Wal.open(dir);
  again.wal.close();
  t.equal(again.recovered.truncatedAt, undefined, `${label}: clean after repair`);
  t.equal(again.recovered.storage.lastIndex(), recovered.storage.lastIndex() + 1);
}

t.test('torn tail at random offsets is cut off', async (t) => {
  const r = seededRandom(42);
  for (let i = 0; i < 40; i++) {
    const dir = freshDir();
    const batches = genBatches(100 + i, 20);
    const { mirrors, ends } = writeAll(dir, batches);
    const size = ends[ends.length - 1]!;
    const cut = Math.floor(r() * size);
    fs.truncateSync(path.join(dir, 'wal'), cut);
    if (ends.includes(cut)) continue; // cut on a batch boundary: nothing is torn
    checkRecovery(t, dir, mirrors, ends, batches, cut, `truncate at ${cut}`, false);
  }
});

t.test('corrupt byte at random offset is detected by the checksum', async (t) => {
  const r = seededRandom(7);
  for (let i = 0; i < 40; i++) {
    const dir = freshDir();
    const batches = genBatches(200 + i, 20);
    const { mirrors, ends } = writeAll(dir, batches);
    const file = path.join(dir, 'wal');
    const buf = fs.readFileSync(file);
    const at = Math.floor(r() * buf.length);
    buf[at] = buf[at]! ^ (1 + Math.floor(r() * 255));
    fs.writeFileSync(file, buf);
    checkRecovery(t, dir, mirrors, ends, batches, at, `flip byte ${at}`, true);
  }
});

function snapOf(index: number, term: number, tag: number): Snapshot {
  return { meta: { index, term, conf: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } }, data: new Uint8Array([tag, tag]) };
}

t.test('snapshot received from the leader resets the log', async (t) => {
  const dir = freshDir();
  const { wal } = Wal.open(dir);
  const ent = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index]) });
  wal.save({ entries: [ent(1, 1), ent(2, 1), ent(3, 1)], hardState: { term: 1, vote: 'n1', commit: 1 } });
  // leader of term 3 sends a snapshot at 10 whose history differs from ours
  wal.save({ snapshot: snapOf(10, 3, 1), entries: [ent(11, 3)], hardState: { term: 3, vote: '', commit: 10 } });
  wal.close();
  const { wal: w2, recovered } = Wal.open(dir);
  const s = recovered.storage;
  t.equal(s.snapshot().meta.index, 10);
  t.same(s.snapshot().meta.conf, { voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  t.same(s.allEntries().map((e) => [e.index, e.term]), [[11, 3]]);
  t.same(s.hardState, { term: 3, vote: '', commit: 10 });
  // compaction snapshot then rewrite keeps state identical
  w2.save({ entries: [ent(12, 3), ent(13, 3)], hardState: { term: 3, vote: '', commit: 13 } });
  s.append([ent(12, 3), ent(13, 3)]);
  s.setHardState({ term: 3, vote: '', commit: 13 });
  const snap = s.createSnapshot(12, { voters: ['n1'], learners: [] }, new Uint8Array([5]));
  w2.saveSnapshot(snap);
  s.compact(12);
  w2.rewrite(s);
  w2.close();
  const third = Wal.open(dir);
  third.wal.close();
  t.same(third.recovered.storage.allEntries().map((e) => [e.index, e.term]), [[13, 3]]);
  t.equal(third.recovered.storage.snapshot().meta.index, 12);
  t.same(third.recovered.storage.hardState, { term: 3, vote: '', commit: 13 });
});

t.test('crash between snapshot file and log record: conflicting old entries are dropped', async (t) => {
  const dir = freshDir();
  const { wal } = Wal.open(dir);
  const ent = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index]) });
  wal.save({ entries: [1, 2, 3, 4, 5, 6].map((i) => ent(i, 1)), hardState: { term: 2, vote: 'n1', commit: 2 } });
  // the snapshot (index 5, term 2) conflicts with our entry 5 of term 1; we "crash" before the batch
  wal.saveSnapshot(snapOf(5, 2, 9));
  wal.close();
  const { wal: w2, recovered } = Wal.open(dir);
  w2.close();
  t.equal(recovered.storage.snapshot().meta.index, 5);
  t.same(recovered.storage.allEntries(), [], 'entry 6 of the old history is not kept after the snapshot');
  t.equal(recovered.storage.hardState.commit, 5);
  t.equal(recovered.storage.hardState.vote, 'n1', 'vote survives');
});

t.test('log reset record without its snapshot file ends the log there', async (t) => {
  const dir = freshDir();
  const { wal } = Wal.open(dir);
  const ent = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index]) });
  wal.save({ entries: [ent(1, 1), ent(2, 1)], hardState: { term: 1, vote: 'n1', commit: 2 } });
  wal.save({ snapshot: snapOf(10, 3, 1), entries: [ent(11, 3)], hardState: { term: 3, vote: '', commit: 10 } });
  wal.close();
  fs.rmSync(path.join(dir, 'snap')); // as if the rename never happened
  const { wal: w2, recovered } = Wal.open(dir);
  w2.close();
  t.same(recovered.storage.allEntries().map((e) => e.index), [1, 2]);
  t.same(recovered.storage.hardState, { term: 1, vote: 'n1', commit: 2 });
  t.ok(recovered.truncatedAt !== undefined);
});

t.test('a corrupt snapshot file is an error, not silently ignored', async (t) => {
  const dir = freshDir();
  const { wal } = Wal.open(dir);
  wal.saveSnapshot(snapOf(3, 1, 4));
  wal.close();
  const f = path.join(dir, 'snap');
  const b = fs.readFileSync(f);
  b[b.length - 1] = b[b.length - 1]! ^ 0xff;
  fs.writeFileSync(f, b);
  t.throws(() => Wal.open(dir));
});
