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

// ---- asynchronous path: saveAsync, close during a write, and the RawNode rules that go with it ----

const saveAsync = (wal: Wal, b: WalBatch): Promise<void> => new Promise((res, rej) => wal.saveAsync(b, (err) => (err ? rej(err) : res())));

t.test('saveAsync: same records as save, one fsync per batch', async (t) => {
  const batches = genBatches(3, 40);
  const a = freshDir();
  writeAll(a, batches);
  const b = freshDir();
  const { wal } = Wal.open(b);
  for (const x of batches) await saveAsync(wal, x);
  t.equal(wal.syncs, 40);
  await saveAsync(wal, { entries: [] }); // nothing to write: completes without an fsync
  t.equal(wal.syncs, 40);
  wal.close();
  t.ok(fs.readFileSync(path.join(a, 'wal')).equals(fs.readFileSync(path.join(b, 'wal'))), 'byte-identical log');
  const { wal: w2, recovered } = Wal.open(b);
  w2.close();
  t.equal(recovered.truncatedAt, undefined);
});

t.test('saveAsync: one write in flight at a time; the event loop runs meanwhile', async (t) => {
  const { wal } = Wal.open(freshDir());
  const ent = (index: number): Entry => ({ index, term: 1, type: 'normal', data: new Uint8Array(4096) });
  let done = false;
  const p = new Promise<void>((res) => wal.saveAsync({ entries: [ent(1), ent(2)], hardState: { term: 1, vote: 'a', commit: 0 } }, (err) => {
    t.equal(err, null);
    done = true;
    res();
  }));
  t.ok(wal.busy(), 'busy until the fsync completes');
  t.notOk(done, 'the callback never runs synchronously');
  t.throws(() => wal.saveAsync({ entries: [ent(3)] }, () => undefined), /in flight/);
  t.throws(() => wal.save({ entries: [ent(3)] }), /in flight/);
  let ticks = 0;
  await new Promise<void>((res) => setImmediate(() => ((ticks++), res())));
  t.equal(ticks, 1, 'the loop turned while the write was pending');
  await p;
  t.notOk(wal.busy());
  wal.save({ entries: [ent(3)] });
  wal.close();
});

t.test('close during a write: closes after it, the batch is durable, later writes refused', async (t) => {
  const dir = freshDir();
  const { wal } = Wal.open(dir);
  const ent = (index: number): Entry => ({ index, term: 2, type: 'normal', data: new Uint8Array([index]) });
  let called = false;
  const p = new Promise<void>((res) => wal.saveAsync({ entries: [ent(1), ent(2), ent(3)], hardState: { term: 2, vote: 'b', commit: 1 } }, () => {
    called = true;
    res();
  }));
  wal.close();
  wal.close(); // idempotent
  t.throws(() => wal.save({ entries: [ent(4)] }), /after close/);
  t.throws(() => wal.saveAsync({ entries: [ent(4)] }, () => undefined), /after close/);
  await p;
  t.ok(called);
  t.throws(() => wal.save({ entries: [ent(4)] }), /after close/);
  const again = Wal.open(dir);
  again.wal.close();
  t.same(again.recovered.storage.allEntries().map((e) => e.index), [1, 2, 3]);
  t.same(again.recovered.storage.hardState, { term: 2, vote: 'b', commit: 1 });
});

t.test('async mode: a leader counts its own log towards the quorum only once it is durable', async (t) => {
  const { RawNode } = await import('../../../control/raft/node.js');
  const { bootstrapStorage } = await import('../../../control/raft/storage.js');
  const { msg } = await import('../../../control/raft/types.js');
  const { decodeConfChange } = await import('../../../control/raft/types.js');
  const persist = (s: MemoryStorage, rd: { entries: Entry[]; hardState?: HardState }): void => {
    s.append(rd.entries);
    if (rd.hardState) s.setHardState(rd.hardState);
  };
  /** Apply the bootstrap membership (the Progress objects for it are made after the cap is on). */
  const boot = (rn: InstanceType<typeof RawNode>): void => {
    const rd = rn.ready();
    for (const e of rd.committedEntries) if (e.type === 'conf') rn.applyConfChange(decodeConfChange(e.data));
    rn.advance(rd);
  };

  // single voter: nothing commits before the fsync, then the local ack commits it
  const s1 = new MemoryStorage();
  bootstrapStorage(s1, ['a']);
  const solo = new RawNode({ id: 'a', storage: s1, random: seededRandom(1) });
  solo.enableAsyncPersistence();
  boot(solo);
  solo.campaign();
  t.equal(solo.raft.state, 'leader');
  let rd = solo.ready();
  t.equal(rd.entries.length, 1, 'the empty entry of the new term');
  t.equal(solo.raft.log.committed, 1, 'not committed while unpersisted');
  t.equal(rd.committedEntries.length, 0);
  solo.propose(new Uint8Array([1])); // stepped while the write is in flight
  t.equal(solo.raft.log.committed, 1);
  persist(s1, rd);
  solo.advance(rd);
  t.equal(solo.durableIndex(), 2);
  solo.ackPersisted();
  t.equal(solo.raft.log.committed, 2, 'durable entry committed by the local ack');
  rd = solo.ready();
  t.same(rd.entries.map((e) => e.index), [3]);
  t.same(rd.committedEntries.map((e) => e.index), [2]);
  persist(s1, rd);
  solo.advance(rd);
  solo.ackPersisted();
  t.equal(solo.raft.log.committed, 3);

  // three voters: a follower's ack of entries the leader has not yet persisted does not commit them
  const s3 = new MemoryStorage();
  bootstrapStorage(s3, ['a', 'b', 'c']);
  const lead = new RawNode({ id: 'a', storage: s3, random: seededRandom(2) });
  lead.enableAsyncPersistence();
  boot(lead);
  lead.campaign(); // pre-vote, then vote
  const grant = (type: 'preVoteResp' | 'voteResp', term: number): void => lead.step(msg({ type, from: 'b', to: 'a', term }));
  grant('preVoteResp', 2);
  grant('voteResp', 2);
  t.equal(lead.raft.state, 'leader');
  rd = lead.ready();
  const last = rd.entries[rd.entries.length - 1]!.index;
  // b acknowledges the new entry while our write is still in flight
  lead.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index: last }));
  t.equal(lead.raft.log.committed, 3, 'b + our undurable log is not a quorum');
  t.equal(lead.status().progress.get('a'), 3, 'own match is capped at the durable log');
  persist(s3, rd);
  lead.advance(rd);
  lead.ackPersisted();
  t.equal(lead.raft.log.committed, last, 'committed once our own write completed');
  rd = lead.ready();
  t.ok(rd.messages.some((m) => m.type === 'app' && m.commit === last), 'followers learn the new commit index');
  // and the cap follows the Progress objects raft.ts replaces (a new term resets them all)
  lead.step(msg({ type: 'app', from: 'c', to: 'a', term: 3, index: last, logTerm: 2, entries: [], commit: last }));
  t.equal(lead.raft.state, 'follower');
});
