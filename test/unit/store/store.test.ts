import t from 'tap';
import fc from 'fast-check';
import { Store, type StoreEvent } from '../../../control/store/store.js';
import { encodeCommand, type Command } from '../../../control/store/commands.js';
import type { NodeObject } from '../../../control/store/objects.js';

const node = (id: string, extra: Partial<NodeObject> = {}): NodeObject => ({
  id, hostname: `h-${id}`, role: 'worker', availability: 'active', labels: {}, addr: '198.18.0.11:2377', state: 'ready', ...extra,
});
const cmd = (ops: Command['ops'], at = '2026-01-01T00:00:00.000Z'): Command => ({ requestId: Math.random().toString(36), at, ops });

t.test('create, update with compare-and-set, delete; versions are Raft indexes', async (t) => {
  const s = new Store();
  t.same(s.apply(5, cmd([{ op: 'create', kind: 'node', object: node('a') }])), { ok: true, version: 5 });
  t.equal(s.get('node', 'a')?.meta.version, 5);
  t.match(s.apply(6, cmd([{ op: 'create', kind: 'node', object: node('a') }])), { ok: false, code: 'exists' });
  t.match(s.apply(7, cmd([{ op: 'update', kind: 'node', object: node('a', { availability: 'drain' }), version: 4 }])), { ok: false, code: 'conflict', error: /version 5, expected 4/ });
  t.equal(s.get('node', 'a')?.availability, 'active');
  t.match(s.apply(8, cmd([{ op: 'update', kind: 'node', object: node('a', { availability: 'drain' }), version: 5 }], '2026-01-02T00:00:00.000Z')), { ok: true });
  t.equal(s.get('node', 'a')?.availability, 'drain');
  t.equal(s.get('node', 'a')?.meta.createdAt, '2026-01-01T00:00:00.000Z');
  t.equal(s.get('node', 'a')?.meta.updatedAt, '2026-01-02T00:00:00.000Z');
  t.match(s.apply(9, cmd([{ op: 'delete', kind: 'node', id: 'zz' }])), { ok: false, code: 'not-found' });
  t.match(s.apply(10, cmd([{ op: 'delete', kind: 'node', id: 'a' }])), { ok: true });
  t.equal(s.list('node').length, 0);
  t.equal(s.appliedIndex, 10);
});

t.test('a transaction applies all of its ops or none', async (t) => {
  const s = new Store();
  s.apply(1, cmd([{ op: 'create', kind: 'node', object: node('a') }]));
  const r = s.apply(2, cmd([{ op: 'create', kind: 'node', object: node('b') }, { op: 'create', kind: 'node', object: node('a') }]));
  t.equal(r.ok, false);
  t.same(s.list('node').map((n) => n.id), ['a'], 'b was not created');
});

t.test('watchers see every change in order; restore emits the difference', async (t) => {
  const s = new Store();
  const seen: string[] = [];
  const stop = s.watch((e: StoreEvent) => seen.push(`${e.type}:${e.object.id}@${e.version}`), ['node']);
  s.apply(1, cmd([{ op: 'create', kind: 'node', object: node('a') }, { op: 'create', kind: 'cluster', object: { id: 'c', name: 'x', spec: { heartbeatPeriodMs: 1000, heartbeatGrace: 3, electionTickMs: 1000, heartbeatTickMs: 100 } } }]));
  s.apply(2, cmd([{ op: 'update', kind: 'node', object: node('a', { state: 'down' }) }]));
  const snap = s.encodeSnapshot();
  s.apply(3, cmd([{ op: 'create', kind: 'node', object: node('b') }]));
  s.apply(4, cmd([{ op: 'delete', kind: 'node', id: 'a' }]));
  t.same(seen, ['create:a@1', 'update:a@2', 'create:b@3', 'delete:a@4']);
  seen.length = 0;
  s.restore(snap);
  t.same(seen.sort(), ['create:a@2', 'delete:b@2']);
  t.equal(s.get('node', 'a')?.state, 'down');
  t.equal(s.list('cluster').length, 1);
  stop();
  s.apply(5, cmd([{ op: 'create', kind: 'node', object: node('c') }]));
  t.equal(seen.length, 2, 'no events after unsubscribing');
});

t.test('replicas applying the same log agree, whatever the commands', async () => {
  const opArb = fc.oneof(
    fc.record({ op: fc.constant('create' as const), id: fc.constantFrom('a', 'b', 'c') }),
    fc.record({ op: fc.constant('update' as const), id: fc.constantFrom('a', 'b', 'c'), version: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }) }),
    fc.record({ op: fc.constant('delete' as const), id: fc.constantFrom('a', 'b', 'c') }),
  );
  fc.assert(
    fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { maxLength: 30 }), (log) => {
      const r1 = new Store();
      const r2 = new Store();
      log.forEach((ops, i) => {
        const c = cmd(
          ops.map((o) => (o.op === 'delete' ? { op: 'delete' as const, kind: 'node' as const, id: o.id } : o.op === 'create' ? { op: 'create' as const, kind: 'node' as const, object: node(o.id) } : { op: 'update' as const, kind: 'node' as const, object: node(o.id, { labels: { i: String(i) } }), ...(o.version !== undefined ? { version: o.version } : {}) })),
        );
        const data = encodeCommand(c);
        r1.applyEntry(i + 1, data);
        r2.applyEntry(i + 1, data);
      });
      return JSON.stringify(r1.snapshot()) === JSON.stringify(r2.snapshot());
    }),
  );
});

t.test('garbage entries are reported, not thrown, and change nothing', async (t) => {
  const s = new Store();
  t.match(s.applyEntry(1, Buffer.from('{nope')), { ok: false, code: 'invalid' });
  t.match(s.applyEntry(2, Buffer.from('{"x":1}')), { ok: false, code: 'invalid' });
  t.match(s.applyEntry(3, new Uint8Array()), { ok: true });
  t.equal(s.appliedIndex, 3);
});

t.test('service and config names are unique at apply time (concurrent creates cannot race)', async (t) => {
  const s = new Store();
  const cfg = (id: string, name: string) => ({ op: 'create' as const, kind: 'config' as const, object: { id, name, data: '', labels: {} } });
  t.match(s.apply(1, cmd([cfg('a', 'greeting')])), { ok: true });
  t.match(s.apply(2, cmd([cfg('b', 'greeting')])), { ok: false, code: 'exists', error: /a config named "greeting" already exists/ });
  t.match(s.apply(3, cmd([cfg('c', 'x'), cfg('d', 'x')])), { ok: false, code: 'exists' });
  t.match(s.apply(4, cmd([{ op: 'delete', kind: 'config', id: 'a' }, cfg('e', 'greeting')])), { ok: true }, 'a name freed in the same transaction can be reused');
  t.same(s.list('config').map((c) => c.name), ['greeting']);
  const copy = new Store();
  copy.restore(s.encodeSnapshot());
  t.match(copy.apply(5, cmd([cfg('f', 'greeting')])), { ok: false, code: 'exists' }, 'the name index is rebuilt on restore');
  t.match(copy.apply(6, cmd([{ op: 'update', kind: 'config', object: { id: 'e', name: 'renamed', data: '', labels: {} } }])), { ok: true });
  t.match(copy.apply(7, cmd([cfg('g', 'greeting')])), { ok: true }, 'a rename frees the old name');
});
