import t from 'tap';
import { ConstraintError, matchConstraint, parseConstraint } from '../../../control/scheduler/constraint.js';
import type { NodeObject } from '../../../control/store/objects.js';

const n: NodeObject = { id: 'abc', hostname: 'h1', role: 'worker', availability: 'active', labels: { zone: 'a', 'com.x/tier': 'db' }, addr: '', state: 'ready' };

t.test('parse and match the four keys with == and !=', async (t) => {
  const m = (s: string): boolean => matchConstraint(parseConstraint(s), n);
  t.ok(m('node.id==abc'));
  t.ok(m('node.hostname != h2'));
  t.ok(m('node.role==worker'));
  t.notOk(m('node.role!=worker'));
  t.ok(m('node.labels.zone==a'));
  t.notOk(m('node.labels.zone==b'));
  t.ok(m('node.labels.com.x/tier==db'));
  t.notOk(m('node.labels.missing==x'), 'missing label fails ==');
  t.ok(m('node.labels.missing!=x'), 'missing label satisfies !=');
  t.same(parseConstraint(' node.labels.zone == a ').text, 'node.labels.zone==a');
});

t.test('bad constraints are errors naming the constraint', async (t) => {
  for (const [s, why] of [
    ['node.labels.zone=a', /expected KEY==VALUE/],
    ['node.labels.zone==', /missing value/],
    ['==a', /missing key/],
    ['node.color==red', /unknown key "node.color"/],
    ['node.role==boss', /manager or worker/],
    ['node.labels.==a', /bad label key/],
    ['node.id==a==b', /more than one operator/],
    ['node.id==a!=b', /more than one operator/],
    ['node.id==a b', /whitespace/],
  ] as const) {
    let err: unknown;
    try {
      parseConstraint(s);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConstraintError, s);
    const ce = err as ConstraintError;
    t.equal(ce.constraint, s.trim());
    t.match(ce.message, why);
    t.ok(ce.message.includes(`"${s.trim()}"`), 'names the constraint');
  }
});
