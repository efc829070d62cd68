import t from 'tap';
import { generateKey, keyId, Keyring, SEAL_OVERHEAD, Sealer, sodiumReady } from '../../../mesh/keyring.js';
import { ReplayGuard, ReplayWindow } from '../../../mesh/replay.js';

await sodiumReady();
const msg = new TextEncoder().encode('hello mesh');

t.test('seal/open with the primary; header names the key; overhead is fixed', async (t) => {
  const k = generateKey();
  const a = new Sealer(new Keyring([k])), b = new Sealer(new Keyring([k]));
  const p = a.seal(msg, 1000);
  t.equal(p.length, msg.length + SEAL_OVERHEAD);
  t.equal(new DataView(p.buffer, p.byteOffset).getUint32(1), keyId(k));
  const r = b.open(p, 1000);
  t.ok(r.ok);
  if (r.ok) t.same(r.plain, msg);
});

t.test('any key in the ring opens; unknown keys, tampering, short and bad version are dropped by reason', async (t) => {
  const k1 = generateKey(), k2 = generateKey(), k3 = generateKey(), stranger = generateKey();
  const ring = new Keyring([k1, k2, k3]);
  const rx = new Sealer(ring);
  for (const k of [k1, k2, k3]) t.ok(rx.open(new Sealer(new Keyring([k])).seal(msg, 5), 5).ok);
  t.equal(rx.open(new Sealer(new Keyring([stranger])).seal(msg, 5), 5).ok, false);
  const p = new Sealer(new Keyring([k1])).seal(msg, 5);
  const flipped = p.slice(); flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
  t.equal(rx.open(flipped, 5).ok, false);
  const hdr = p.slice(); hdr[20] = (hdr[20] as number) ^ 1; // nonce byte: part of the AD and nonce
  t.equal(rx.open(hdr, 5).ok, false);
  t.equal(rx.open(p.subarray(0, 10), 5).ok, false);
  const v = p.slice(); v[0] = 2;
  t.equal(rx.open(v, 5).ok, false);
  t.same(rx.dropped, { short: 1, version: 1, 'unknown-key': 1, auth: 2, replay: 0, 'too-old': 0, 'too-new': 0, decode: 0 });
  t.throws(() => ring.add(generateKey()), 'at most 3 keys');
  t.throws(() => ring.remove(ring.primaryId), 'primary cannot be removed');
});

t.test('replayed, too-old and too-new packets are dropped', async (t) => {
  const k = generateKey();
  const tx = new Sealer(new Keyring([k])), rx = new Sealer(new Keyring([k]), { maxAge: 10_000, maxSkew: 5_000 });
  const p = tx.seal(msg, 100_000);
  t.ok(rx.open(p, 100_000).ok);
  t.equal(rx.open(p, 100_000).ok, false, 'replay');
  t.equal(rx.open(tx.seal(msg, 80_000), 100_000).ok, false, 'too old');
  t.equal(rx.open(tx.seal(msg, 120_000), 100_000).ok, false, 'too new');
  t.ok(rx.open(tx.seal(msg, 95_000), 100_000).ok, 'within age');
  t.same([rx.dropped.replay, rx.dropped['too-old'], rx.dropped['too-new']], [1, 1, 1]);
});

t.test('rotation add -> use -> remove loses no packet in flight', async (t) => {
  const old = generateKey(), fresh = generateKey();
  const nodes = [0, 1, 2].map(() => new Sealer(new Keyring([old])));
  let sent = 0, lost = 0, now = 1;
  const exchange = (): void => {
    for (const a of nodes) for (const b of nodes) if (a !== b) { sent++; if (!b.open(a.seal(msg, now), now).ok) lost++; }
    now++;
  };
  // Step 1: add everywhere, one node at a time, traffic between each change.
  for (const n of nodes) { n.ring.add(fresh); exchange(); }
  for (const n of nodes) { n.ring.use(keyId(fresh)); exchange(); }
  for (const n of nodes) { n.ring.remove(keyId(old)); exchange(); }
  t.equal(lost, 0, `${sent} packets, none lost`);
  t.same(nodes[0]?.ring.ids(), [keyId(fresh)]);
});

t.test('replay window: out-of-order within the window is fine, duplicates and ancient are not', async (t) => {
  const w = new ReplayWindow(64);
  for (const s of [5, 3, 9, 4, 70]) { t.ok(w.fresh(s), `fresh ${s}`); w.mark(s); }
  for (const s of [5, 3, 9, 70, 6]) if (s !== 6) t.notOk(w.fresh(s), `dup ${s}`);
  t.ok(w.fresh(8));
  t.notOk(w.fresh(6), 'beyond the window behind the top');
  t.ok(w.fresh(200));
  const g = new ReplayGuard(2, 64);
  t.ok(g.accept('a', 1)); t.ok(g.accept('b', 1)); t.notOk(g.accept('a', 1));
  t.ok(g.accept('c', 1));
  t.equal(g.size, 2, 'bounded');
});
