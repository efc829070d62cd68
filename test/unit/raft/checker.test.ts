// The checks must be able to fail: hand-made bad histories, and deliberately broken clusters.
import t from 'tap';
import { checkHistory, type Op } from './linearizability.js';
import { optionsForSeed, runSim } from './sim.js';

const put = (id: string, key: string, value: string, call: number, ret: number): Op => ({ id, kind: 'put', key, value, call, ret });
const get = (id: string, key: string, value: string, call: number, ret: number): Op => ({ id, kind: 'get', key, value, call, ret });

t.test('linearizability checker: accepts valid and rejects invalid histories', async (t) => {
  t.ok(checkHistory([put('1', 'k', 'x', 1, 2), get('2', 'k', 'x', 3, 4)]).ok, 'read after write');
  t.notOk(checkHistory([put('1', 'k', 'x', 1, 2), get('2', 'k', '', 3, 4)]).ok, 'stale read after a completed write');
  t.ok(checkHistory([put('1', 'k', 'x', 1, 4), get('2', 'k', '', 2, 3)]).ok, 'concurrent read may see the old value');
  t.ok(checkHistory([put('1', 'k', 'x', 1, 4), get('2', 'k', 'x', 2, 3)]).ok, '... or the new one');
  t.notOk(
    checkHistory([put('1', 'k', 'x', 1, 10), get('2', 'k', 'x', 2, 3), get('3', 'k', '', 4, 5)]).ok,
    'no going back: once a read saw x, a later read cannot see the old value',
  );
  t.ok(checkHistory([put('1', 'k', 'x', 1, Infinity), get('2', 'k', 'x', 5, 6)]).ok, 'unacknowledged write may take effect');
  t.ok(checkHistory([put('1', 'k', 'x', 1, Infinity), get('2', 'k', '', 5, 6)]).ok, '... or not');
  t.notOk(checkHistory([get('2', 'k', 'y', 5, 6)]).ok, 'value never written');
  t.notOk(
    checkHistory([put('1', 'k', 'x', 1, 2), put('2', 'k', 'y', 3, 4), get('3', 'k', 'x', 5, 6)]).ok,
    'lost update',
  );
  t.ok(checkHistory([put('1', 'a', 'x', 1, 2), get('2', 'b', '', 3, 4)]).ok, 'keys are independent');
});

// A fixed seed list keeps this deterministic; each variant must be caught in at least one schedule.
for (const broken of ['staleReads', 'amnesia'] as const) {
  t.test(`simulator catches a broken cluster: ${broken}`, async (t) => {
    let caught = 0;
    let first = '';
    for (let seed = 1; seed <= 60 && caught < 3; seed++) {
      const r = runSim({ ...optionsForSeed(seed), crashes: true, broken });
      if (!r.ok) {
        caught++;
        first ||= `seed ${seed}: ${r.error?.split('\n')[0]}`;
      }
    }
    t.ok(caught > 0, `detected (${first})`);
  });
}
