// The apportionment of a frontend's 720720 numgen slots to its live backends (slots.ts): exact for
// up to 16 equal backends, within one slot of the weights otherwise, every live backend at least one
// slot, contiguous, deterministic; and the weight comment's round trip.
import t from 'tap';
import fc from 'fast-check';
import { parseWeightComment, slotRanges, SLOTS, weightComment } from '../../../dataplane/lb/nft/slots.js';

const live = (ws: number[]): [string, number][] => ws.map((w, i) => [`10.9.${i >> 8}.${i & 255}`, w]);
const sizes = (ws: number[]): number[] => slotRanges(live(ws)).map((r) => r.end - r.start);

t.test('by example', async (t) => {
  t.equal(SLOTS, 720720, 'lcm(1..16)');
  for (let n = 1; n <= 16; n++) t.same(sizes(Array(n).fill(1)), Array(n).fill(SLOTS / n), `${n} equal backends split exactly`);
  t.same(sizes([1, 3]), [180180, 540540], '1:3 exactly');
  t.same(sizes([2, 2]), sizes([1, 1]), '2:2 splits like 1:1 (hence the weight comments)');
  t.same(sizes(Array(17).fill(1)), [...Array(5).fill(42396), ...Array(12).fill(42395)], '17 equal: the 5 slots left over go to the first addresses');
  const tiny = sizes([...Array(12).fill(65535), 1]);
  t.equal(tiny.at(-1), 1, 'a weight too small for a slot still gets one');
  t.equal(tiny.reduce((a, b) => a + b, 0), SLOTS);
  t.same(slotRanges([]), []);
  t.throws(() => slotRanges([['10.0.0.1', 0]]), /not a positive integer/);
});

t.test('properties', async (t) => {
  const arbWeights = fc.array(fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 65535 })), { minLength: 1, maxLength: 40 });
  fc.assert(fc.property(arbWeights, (ws) => {
    const rs = slotRanges(live(ws));
    const total = ws.reduce((a, b) => a + b, 0);
    if (rs.length !== ws.length || rs[0]!.start !== 0 || rs.at(-1)!.end !== SLOTS) throw new Error('not covering 0..SLOTS');
    rs.forEach((r, i) => {
      if (i > 0 && r.start !== rs[i - 1]!.end) throw new Error('gap or overlap');
      if (r.end - r.start < 1) throw new Error('a live backend without a slot');
      if (r.weight !== ws[i]) throw new Error('weight');
    });
    // Largest remainder: within one slot of the exact share, unless slots went to backends that
    // had none (at most one slot taken from each of the largest per such backend).
    const starved = ws.filter((w) => (w * SLOTS) / total < 1).length;
    rs.forEach((r, i) => {
      const exact = (ws[i]! * SLOTS) / total;
      if (Math.abs(r.end - r.start - exact) >= 1 + starved) throw new Error(`${r.end - r.start} slots for a share of ${exact}`);
    });
    if (JSON.stringify(slotRanges(live(ws))) !== JSON.stringify(rs)) throw new Error('not deterministic');
    return true;
  }), { numRuns: 500, seed: 11 });
  t.pass('500 weight lists apportioned');
});

t.test('the weight comment round-trips; anything else is not a weight', async (t) => {
  for (const w of [1, 2, 9, 10, 65535]) t.equal(parseWeightComment(weightComment(w)), w);
  for (const c of ['weight 0', 'weight 01', 'weight -1', 'weight', 'w 3', 'weight 3 ', 'weight 123456', 3, undefined]) t.equal(parseWeightComment(c), undefined, `${JSON.stringify(c)}`);
});
