import t from 'tap';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, CodecError } from '../../../control/transport/raft-codec.js';
import { FrameReader, frame } from '../../../control/transport/framing.js';
import type { Message, MessageType } from '../../../control/raft/types.js';

const types: MessageType[] = ['app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'snap', 'heartbeat', 'heartbeatResp', 'transferLeader', 'timeoutNow', 'readIndex', 'readIndexResp', 'prop'];
const nat = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const id = fc.string({ maxLength: 30 });
const entry = fc.record({ index: nat, term: nat, type: fc.constantFrom('normal' as const, 'conf' as const), data: fc.uint8Array({ maxLength: 200 }) });
const message: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...types),
    from: id,
    to: id,
    term: nat,
    logTerm: nat,
    index: nat,
    commit: nat,
    reject: fc.boolean(),
    rejectHint: nat,
    context: fc.string({ maxLength: 40 }),
    entries: fc.array(entry, { maxLength: 5 }),
    snap: fc.option(fc.record({ index: nat, term: nat, voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }), data: fc.uint8Array({ maxLength: 300 }) }), { nil: undefined }),
  })
  .map(({ snap, ...m }) => (snap ? { ...m, snapshot: { meta: { index: snap.index, term: snap.term, conf: { voters: snap.voters, learners: snap.learners } }, data: snap.data } } : m));

t.test('every message survives encode/decode unchanged', async () => {
  fc.assert(
    fc.property(message, (m) => {
      const back = decodeMessage(encodeMessage(m));
      return JSON.stringify(back) === JSON.stringify(m);
    }),
    { numRuns: 2000 },
  );
});

t.test('hostile bytes: only CodecError, never anything else, never a hang', async (t) => {
  let errors = 0;
  const base = encodeMessage({ type: 'app', from: 'a', to: 'b', term: 3, logTerm: 2, index: 10, commit: 9, reject: false, rejectHint: 0, context: '', entries: [{ index: 11, term: 3, type: 'normal', data: new Uint8Array(64) }] });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => { const b = Buffer.from(base); b[i] = v; return b; }), fc.nat(base.length).map((n) => base.subarray(0, n))), (bytes) => {
      try {
        decodeMessage(Buffer.from(bytes));
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
        errors++;
      }
    }),
    { numRuns: 20_000 },
  );
  t.ok(errors > 0, `${errors} malformed inputs rejected with CodecError`);
});

t.test('frames reassemble whatever the chunking', async () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (payloads, cuts) => {
      const stream = Buffer.concat(payloads.map((p) => frame(Buffer.from(p))));
      const r = new FrameReader();
      const got: Buffer[] = [];
      let off = 0;
      let i = 0;
      while (off < stream.length) {
        const n = cuts[i++ % cuts.length]!;
        got.push(...r.push(stream.subarray(off, off + n)));
        off += n;
      }
      return got.length === payloads.length && got.every((g, j) => g.equals(Buffer.from(payloads[j]!)));
    }),
  );
});

t.test('an oversized frame is refused before it is buffered', async (t) => {
  const r = new FrameReader(1024);
  const h = Buffer.alloc(4);
  h.writeUInt32LE(1 << 30);
  t.throws(() => r.push(h), /exceeds the 1024-byte limit/);
});
