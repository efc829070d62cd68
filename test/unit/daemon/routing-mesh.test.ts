// The routing mesh's pure parts: how often it re-reads the kernel (at least every 30 s, never more
// than 2% of the time spent re-reading, never less often than hourly), and what a queued sync skips.
import t from 'tap';
import fc from 'fast-check';
import { REREAD_MS, RoutingMesh, rereadIntervalMs } from '../../../control/daemon/routing-mesh.js';
import type { LbInput } from '../../../dataplane/lb/index.js';

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

t.test('a sync skips sandboxes that do not exist when it runs, and keeps the rest as they were', async (t) => {
  const input: LbInput = {
    networks: [
      { netns: 'msh-ov-4096', services: [{ name: 'web', vip: '10.0.0.2', backends: [{ ip: '10.0.0.3', weight: 1 }] }] },
      { netns: 'msh-ov-4097', services: [{ name: 'api', vip: '10.0.1.2', backends: [{ ip: '10.0.1.3', weight: 0 }] }] },
    ],
    ingress: { netns: 'msh-isbx', snatAddress: '10.255.0.2', ports: [] },
  };
  const all = RoutingMesh.present(input, () => true);
  t.same(all, input, 'everything there: unchanged');
  const gone = RoutingMesh.present(input, (ns) => ns !== 'msh-ov-4097');
  t.same(gone.networks.map((n) => n.netns), ['msh-ov-4096'], 'the removed sandbox is skipped');
  t.same(gone.networks[0], input.networks[0], 'the others are untouched');
  t.same(gone.ingress, input.ingress);
  const noIsbx = RoutingMesh.present(input, (ns) => ns !== 'msh-isbx');
  t.notOk('ingress' in noIsbx, 'an ingress sandbox not made yet is skipped too');
  t.equal(noIsbx.networks.length, 2);
});
