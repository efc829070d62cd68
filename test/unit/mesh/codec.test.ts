import t from 'tap';
import fc from 'fast-check';
import { decodePacket, encodeMessage, encodePacket, LIMITS, messageSize, packetSize } from '../../../mesh/codec.js';
import { fuzzDecoder, message } from '../../bench/mesh-fuzz.js';

/** Stable text form: bytes as arrays, keys sorted, prototypes ignored. */
function canon(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return Array.from(v);
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)));
    return v;
  });
}

t.test('every message kind round-trips', async (t) => {
  fc.assert(fc.property(fc.array(message, { minLength: 0, maxLength: 8 }), (msgs) => {
    return canon(decodePacket(encodePacket(msgs))) === canon({ ok: true, msgs });
  }), { numRuns: 500 });
  t.pass('500 random packets round-tripped');
});

t.test('sizes without encoding: packetSize and messageSize are exactly the encoded lengths', async (t) => {
  fc.assert(fc.property(fc.array(message, { minLength: 0, maxLength: 8 }), (msgs) => {
    return packetSize(msgs) === encodePacket(msgs).length && msgs.every((m) => messageSize(m) === encodeMessage(m).length);
  }), { numRuns: 500 });
  // Non-ASCII names and hosts take the TextEncoder path in the writer and Buffer.byteLength in the sizes.
  const uni = fc.string({ unit: 'binary', maxLength: 20 });
  fc.assert(fc.property(uni, uni, uni, (node, from, host) => {
    const msgs = [{ t: 'suspect' as const, node, inc: 7, from }, { t: 'alive' as const, node, inc: 1, addr: { host, port: 1 }, meta: new Uint8Array(3) }];
    const pkt = encodePacket(msgs);
    const back = decodePacket(pkt);
    return packetSize(msgs) === pkt.length && back.ok && (back.msgs[0] as { node: string }).node === node && (back.msgs[1] as { addr: { host: string } }).addr.host === host;
  }), { numRuns: 300 });
  t.throws(() => packetSize([{ t: 'suspect', node: 'x'.repeat(256), inc: 1, from: 'y' }]), 'sizes refuse what the encoder refuses');
  t.throws(() => packetSize([{ t: 'net', node: 'x', network: 'n', ltime: 2 ** 48, leave: false }]));
  t.pass('sizes match');
});

t.test('strict: truncation, trailing bytes, bad version, bad enum values are rejected', async (t) => {
  const pkt = encodePacket([{ t: 'alive', node: 'n1', inc: 3, addr: { host: '10.0.0.1', port: 7946 }, meta: new Uint8Array(0) }]);
  for (let i = 0; i < pkt.length; i++) t.equal(decodePacket(pkt.subarray(0, i)).ok, false, `truncated at ${i}`);
  t.equal(decodePacket(Uint8Array.from([...pkt, 0])).ok, false, 'trailing byte');
  const v = pkt.slice(); v[0] = 9;
  t.same(decodePacket(v), { ok: false, reason: 'version' });
  const k = pkt.slice(); k[3] = 200;
  t.equal(decodePacket(k).ok, false, 'unknown kind');
  const bad = encodePacket([{ t: 'push-pull', join: false, reply: false, source: 'a', sourceAddr: { host: 'h', port: 1 }, members: [{ name: 'x', addr: { host: 'h', port: 1 }, inc: 1, status: 'alive', meta: new Uint8Array(0) }], nets: [], entries: [] }]);
  const statusAt = bad.length - 4; // status byte precedes meta length(1) + nets count(1) + entries count(1)
  t.equal(bad[statusAt], 0);
  const b2 = bad.slice(); b2[statusAt] = 7;
  t.same(decodePacket(b2), { ok: false, reason: 'bad status' });
});

t.test('counts and lengths cannot make the decoder allocate beyond its input', async (t) => {
  // A push-pull claiming 2^28-1 members in a 30-byte packet.
  const hdr = encodePacket([{ t: 'push-pull', join: false, reply: false, source: 'a', sourceAddr: { host: 'h', port: 1 }, members: [], nets: [], entries: [] }]);
  const body = Array.from(hdr.subarray(3, hdr.length - 3));
  const evil = [...body, 0xff, 0xff, 0xff, 0x7f, 0, 0];
  const pkt = Uint8Array.from([1, 1, evil.length, ...evil]);
  t.same(decodePacket(pkt), { ok: false, reason: 'count exceeds input' });
  // A value length over the limit.
  t.equal(LIMITS.value, 65536);
});

t.test('encoder refuses what the decoder would refuse', async (t) => {
  t.throws(() => encodePacket([{ t: 'suspect', node: 'x'.repeat(256), inc: 1, from: 'y' }]));
  t.throws(() => encodePacket([{ t: 'net', node: 'x', network: 'n', ltime: 2 ** 48, leave: false }]));
});

t.test('fuzz: random and mutated packets never throw, never hang', async (t) => {
  const r = fuzzDecoder(Number(process.env.MESH_FUZZ_RUNS ?? 40_000), 42);
  t.equal(r.runs, Number(process.env.MESH_FUZZ_RUNS ?? 40_000));
  // A shared CI box can pause for GC or scheduling; anything near a second would be a real hang.
  t.ok(r.maxMs < 1000, `slowest decode ${r.maxMs.toFixed(2)} ms`);
  t.ok(r.retimedMs < 5, `slowest packet re-timed: ${r.retimedMs.toFixed(3)} ms`);
  t.comment(`fuzz: ${r.runs} packets, ${r.ok} decoded as valid, slowest ${r.maxMs.toFixed(3)} ms`);
});
