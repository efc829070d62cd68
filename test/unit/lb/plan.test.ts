import t from 'tap';
import fc from 'fast-check';
import { plan, simulate, flushTargets, describeChange, type LbState, type Frontend } from '../../../dataplane/lb/index.js';
import { arbState } from './arb.js';

const fe = (backends: Record<string, number>, extra: Partial<Frontend> = {}): Frontend => ({ match: { addr: '10.0.1.100', proto: 'any', port: 0 }, targetPort: 0, backends, ...extra });
const st = (f?: Frontend): LbState => ({ frontends: f ? { [`${f.match.addr} ${f.match.proto} ${f.match.port}`]: f } : {} });

t.test('by example', async (t) => {
  t.same(plan(st(fe({ '10.0.1.3': 1 })), st(fe({ '10.0.1.3': 1 }))), [], 'equal: nothing');
  t.same(plan(st(), st()), []);
  const add = plan(st(fe({ '10.0.1.3': 1 })), st());
  t.same(add.map((c) => c.op), ['add-frontend']);
  const one = plan(st(fe({ '10.0.1.3': 1, '10.0.1.4': 0, '10.0.1.6': 2 })), st(fe({ '10.0.1.3': 1, '10.0.1.4': 1, '10.0.1.5': 1 })));
  t.equal(one.length, 1, 'backend changes of one frontend are one change');
  t.match(one[0], { op: 'set-backends', added: { '10.0.1.6': 2 }, reweighted: { '10.0.1.4': 0 }, removed: ['10.0.1.5'] });
  t.equal(describeChange(one[0]!), 'set-backends 10.0.1.100 any 0 +10.0.1.6:2 ~10.0.1.4:0 -10.0.1.5');
  t.same(flushTargets(one), [{ key: '10.0.1.100 any 0', ip: '10.0.1.5' }], 'only the removed backend is flushed, not the draining one');
  const reshaped = plan(st(fe({ '10.0.1.3': 1 }, { snat: '10.255.0.2' })), st(fe({ '10.0.1.3': 1 })));
  t.same(reshaped.map((c) => c.op), ['del-frontend', 'add-frontend'], 'a changed target port or SNAT replaces the frontend');
  t.same(flushTargets(plan(st(), st(fe({ '10.0.1.3': 1, '10.0.1.4': 0 })))).map((x) => x.ip), ['10.0.1.3', '10.0.1.4'], 'a deleted frontend flushes all its backends');
  t.throws(() => simulate(st(), [{ op: 'del-frontend', key: 'x', frontend: fe({}) }]), /no frontend/);
  t.throws(() => simulate(st(fe({})), [{ op: 'add-frontend', key: '10.0.1.100 any 0', frontend: fe({}) }]), /exists/);
});

t.test('properties', async (t) => {
  fc.assert(fc.property(arbState, arbState, (d, o) => {
    const changes = plan(d, o);
    t.same(simulate(o, changes), d);
    return true;
  }), { numRuns: 300 });
  t.pass('simulate(o, plan(d, o)) == d');
  fc.assert(fc.property(arbState, (s) => plan(s, s).length === 0), { numRuns: 200 });
  t.pass('plan(x, x) is empty');
  const canon = (f?: Frontend): string => (f ? JSON.stringify([f.match, f.targetPort, f.snat ?? null, Object.entries(f.backends).sort()]) : '');
  fc.assert(fc.property(arbState, arbState, (d, o) => {
    const changes = plan(d, o);
    const touched = new Set(changes.map((c) => c.key));
    const keys = new Set([...Object.keys(d.frontends), ...Object.keys(o.frontends)]);
    const differ = new Set([...keys].filter((k) => canon(d.frontends[k]) !== canon(o.frontends[k])));
    // Minimal: exactly the frontends that differ, each by one change (two for a replacement).
    if ([...touched].some((k) => !differ.has(k)) || [...differ].some((k) => !touched.has(k))) return false;
    const perKey = new Map<string, number>();
    for (const c of changes) perKey.set(c.key, (perKey.get(c.key) ?? 0) + 1);
    return [...perKey.values()].every((n) => n <= 2);
  }), { numRuns: 300 });
  t.pass('only differing frontends are touched, each by one change (two for a replacement)');
  fc.assert(fc.property(arbState, arbState, (d, o) => {
    const changes = plan(d, o);
    // Every set-backends carries the final frontend; deletions come before additions.
    const firstAdd = changes.findIndex((c) => c.op !== 'del-frontend');
    return changes.every((c, i) => (c.op === 'del-frontend' ? firstAdd < 0 || i < firstAdd : true)) &&
      changes.every((c) => c.op !== 'set-backends' || canon(c.frontend) === canon(d.frontends[c.key]));
  }), { numRuns: 200 });
  t.pass('deletions first; set-backends carry the desired frontend');
  fc.assert(fc.property(arbState, arbState, (d, o) => JSON.stringify(plan(d, o)) === JSON.stringify(plan(structuredClone(d), structuredClone(o)))), { numRuns: 100 });
  t.pass('deterministic');
});
