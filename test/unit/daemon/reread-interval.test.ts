// How often the routing mesh re-reads the kernel: at least every 30 s, never more than 2% of the
// time spent re-reading, never less often than hourly.
import t from 'tap';
import fc from 'fast-check';
import { REREAD_MS, rereadIntervalMs } from '../../../control/daemon/routing-mesh.js';

t.test('small tables are re-read every 30 s', async (t) => {
  for (const ms of [0.5, 10, 150, 600]) t.equal(rereadIntervalMs(ms), REREAD_MS, `${ms} ms`);
});

t.test('a slow re-read stretches the interval to 50x its cost, capped at an hour', async (t) => {
  t.equal(rereadIntervalMs(8_600), 430_000, '10,000 frontends through nft -j: every 7 min 10 s');
  t.equal(rereadIntervalMs(200_000), 3_600_000, 'capped');
});

t.test('nonsense durations fall back to 30 s', async (t) => {
  for (const ms of [NaN, -1, 0, Infinity]) t.equal(rereadIntervalMs(ms), REREAD_MS, String(ms));
});

t.test('property: within [30 s, 1 h], and re-reading costs at most 2% unless capped', async (t) => {
  fc.assert(fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (ms) => {
    const iv = rereadIntervalMs(ms);
    return iv >= REREAD_MS && iv <= 3_600_000 && (iv === 3_600_000 || ms <= 0 || ms / iv <= 0.02 + 1e-12);
  }));
  t.pass('holds');
});
