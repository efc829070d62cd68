// The nftables backend's netlink path against the kernel, each test in its own throwaway namespace:
// what it programs (incrementally, change after change) lists exactly like the same state loaded
// from render.ts's text by nft itself; a refused transaction leaves the kernel as it was and says
// which request failed and why; bad input never reaches the kernel; a transaction larger than the
// socket's default send buffer still goes in as one.
import t from 'tap';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { frontendKey, plan, type Frontend, type LbState } from '../../../dataplane/lb/index.js';
import { NftBackend } from '../../../dataplane/lb/nft/backend.js';
import { addElements, changeMessages, delElements, dispatchKey, drainKey, flushChain } from '../../../dataplane/lb/nft/netlink-codec.js';
import { renderBase, renderFull } from '../../../dataplane/lb/nft/render.js';
import { NftSocket, NftTransactionError } from '../../../dataplane/lb/nft/transaction.js';
import { encodeBatch } from '../../../dataplane/lb/nft/nfnl.js';
import { tempNetns } from '../../helpers/netns.js';
import { arbState } from '../../unit/lb/arb.js';

const nftJson = (ns: string): string => {
  try {
    return execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'ip', 'meshd_lb'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return '{"nftables":[]}';
  }
};

/**
 * The listing as sets of facts, independent of creation order and handles: chains, each chain's
 * rules, each map's and set's elements.
 */
function facts(json: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const add = (k: string, v: unknown): void => { (out[k] ??= []).push(JSON.stringify(v)); };
  type Item = { chain?: { name: string }; rule?: { chain: string; expr: unknown }; map?: { name: string; elem?: unknown[] }; set?: { name: string; elem?: unknown[] } };
  for (const it of (JSON.parse(json) as { nftables: Item[] }).nftables) {
    if (it.chain) add('chains', it.chain.name);
    if (it.rule) add(`rules ${it.rule.chain}`, it.rule.expr);
    const m = it.map ?? it.set;
    if (m) { add('sets', m.name); for (const e of m.elem ?? []) add(`elements ${m.name}`, e); }
  }
  // Keys in a fixed order too: the listing's order follows creation (handles), which differs.
  return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]!.sort()]));
}

/** Loads a state into a fresh table with nft itself, from render.ts's text: the reference. */
function loadWithNft(ns: string, s: LbState): void {
  const lines = ['add table ip meshd_lb', 'delete table ip meshd_lb', ...renderBase(), ...renderFull(Object.values(s.frontends))];
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: lines.join('\n') + '\n' });
}

const canon = (s: LbState): string => JSON.stringify(Object.entries(s.frontends).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, f]) => [k, f.match, f.targetPort, f.snat ?? null, Object.entries(f.backends).sort()]));

const fe = (addr: string, backends: Record<string, number>): Frontend => ({ match: { addr, proto: 'tcp', port: 80 }, targetPort: 8080, backends });
const state = (...fs: Frontend[]): LbState => ({ frontends: Object.fromEntries(fs.map((f) => [frontendKey(f.match), f])) });

t.test('changes through netlink list exactly like the same state loaded by nft', async (t) => {
  const ours = tempNetns(t, 'nfo');
  const ref = tempNetns(t, 'nfr');
  const be = new NftBackend(ours);
  t.teardown(() => be.close());
  const seq = fc.sample(arbState, { numRuns: 30, seed: 4242 });
  // Then wide frontends: more than 16 backends (an inexact split), weights up to 65535, a backend
  // whose share is under one slot (a single-slot element), then fewer backends again.
  const wide = (ws: number[], port = 80): Frontend => ({
    match: { addr: '10.9.0.50', proto: 'tcp', port }, targetPort: 8080,
    backends: Object.fromEntries(ws.map((w, i) => [`10.9.2.${i + 2}`, w])),
  });
  const wideStates: LbState[] = [
    state(wide([...Array(20).fill(1), 0])),
    state(wide([...Array(12).fill(65535), 1, 7, 0, 300])),
    state(wide([3, 0, 65535]), { ...wide([1, 1, 1, 1, 1, 1, 1]), match: { addr: '10.9.0.51', proto: 'any', port: 0 }, targetPort: 0 }),
  ];
  let n = 0;
  for (const d of [...seq, ...wideStates, { frontends: {} }]) {
    const known = be.known();
    const changes = plan(d, known ?? (await be.observe()));
    await be.apply(changes);
    loadWithNft(ref, d);
    const a = facts(nftJson(ours));
    const b = facts(nftJson(ref));
    if (JSON.stringify(a) !== JSON.stringify(b)) { t.same(a, b, `state ${n}: same chains, rules and elements as nft makes`); return; }
    const back = await new NftBackend(ours).observe();
    if (canon(back) !== canon(d)) { t.same(back, d, `state ${n}: observe reads back what was programmed`); return; }
    n++;
  }
  t.equal(n, seq.length + wideStates.length + 1, `${n} states, reached by ${n - 1} incremental transactions, list like nft's own`);
  t.ok(be.known(), 'the backend still trusts its model (no error along the way)');
});


t.test('one bad request aborts the whole transaction: the kernel is unchanged, the error names it', async (t) => {
  const ns = tempNetns(t, 'nfa');
  const be = new NftBackend(ns);
  t.teardown(() => be.close());
  const s = state(fe('10.0.0.1', { '10.0.1.3': 1, '10.0.1.4': 0 }), fe('10.0.0.2', { '10.0.1.5': 2 }));
  await be.apply(plan(s, await be.observe()));
  const before = nftJson(ns);
  const sock = new NftSocket(ns);
  t.teardown(() => sock.close());
  const f1 = s.frontends['10.0.0.1 tcp 80']!;
  const { map, key } = dispatchKey(f1.match);
  // Valid: flush a chain, add a drain element. Invalid: delete an element that is not there.
  const msgs = [
    flushChain('fe_10.0.0.1_tcp_80_to_8080'),
    ...addElements('drain', [{ key: drainKey(f1.match, '10.0.1.77') }], 'record draining backend 10.0.1.77'),
    ...delElements('drain', [drainKey(f1.match, '10.0.1.99')], 'forget draining backend 10.0.1.99 of 10.0.0.1 tcp 80'),
    ...delElements(map, [key], `delete 10.0.0.1 tcp 80 from ${map}`),
  ];
  const err = t.throws(() => sock.commit(msgs)) as unknown;
  t.ok(err instanceof NftTransactionError, 'an NftTransactionError');
  if (err instanceof NftTransactionError) {
    t.same(err.failures.map((f) => [f.what, f.code]), [['forget draining backend 10.0.1.99 of 10.0.0.1 tcp 80', 'ENOENT']], 'exactly the bad request, with its errno');
    t.match(err.message, /refused, nothing applied \(4 requests\): forget draining backend 10\.0\.1\.99 of 10\.0\.0\.1 tcp 80: ENOENT/);
  }
  t.equal(nftJson(ns), before, 'the table is exactly as before: the flush, the added element and the deletion were all rolled back');
  // The same socket goes on working after a refusal.
  sock.commit(addElements('drain', [{ key: drainKey(f1.match, '10.0.1.77') }], 'record'));
  t.match(nftJson(ns), /10\.0\.1\.77/, 'a good transaction after the refused one applies');
  sock.commit(delElements('drain', [drainKey(f1.match, '10.0.1.77')], 'forget'));
  t.equal(nftJson(ns), before);
});

t.test('a kernel changed behind the model: the apply is refused whole, the backend reads the kernel again', async (t) => {
  const ns = tempNetns(t, 'nfb');
  const be = new NftBackend(ns);
  t.teardown(() => be.close());
  const s = state(fe('10.0.0.1', { '10.0.1.3': 1 }), fe('10.0.0.2', { '10.0.1.5': 1 }));
  await be.apply(plan(s, await be.observe()));
  // Someone removes a frontend (its dispatch element, chain and backend map) behind our back.
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: 'delete element ip meshd_lb fe_port { 10.0.0.2 . tcp . 80 }\nflush chain ip meshd_lb fe_10.0.0.2_tcp_80_to_8080\ndelete chain ip meshd_lb fe_10.0.0.2_tcp_80_to_8080\ndelete map ip meshd_lb be_10.0.0.2_tcp_80_to_8080\n' });
  const before = nftJson(ns);
  // The model still has it: a change to both frontends is one transaction, refused as a whole.
  const next = structuredClone(s);
  next.frontends['10.0.0.1 tcp 80']!.backends['10.0.1.9'] = 1;
  next.frontends['10.0.0.2 tcp 80']!.backends['10.0.1.9'] = 1;
  const changes = plan(next, be.known()!);
  t.equal(changes.length, 2);
  await t.rejects(be.apply(changes), /flush map be_10\.0\.0\.2_tcp_80_to_8080: ENOENT/, 'the error names the missing map');
  t.equal(nftJson(ns), before, 'the change to the intact frontend was not applied either');
  t.equal(be.known(), undefined, 'the model is dropped: the next sync reads the kernel');
  await be.apply(plan(next, await be.observe()));
  t.equal(canon(await new NftBackend(ns).observe()), canon(next), 'and the next sync brings it to the desired state');
});

t.test('bad input is refused before anything is sent', async (t) => {
  const ns = tempNetns(t, 'nfi');
  const be = new NftBackend(ns);
  t.teardown(() => be.close());
  const s = state(fe('10.0.0.1', { '10.0.1.3': 1 }));
  await be.apply(plan(s, await be.observe()));
  const before = nftJson(ns);
  const writes = be.writes;
  const bad = structuredClone(s);
  bad.frontends['10.0.0.1 tcp 80']!.backends['10.0.1.300'] = 1;
  await t.rejects(be.apply(plan(bad, be.known()!)), /"10\.0\.1\.300" is not an IP address/);
  const heavy = structuredClone(s);
  heavy.frontends['10.0.0.1 tcp 80']!.backends['10.0.1.3'] = 70000;
  await t.rejects(be.apply(plan(heavy, (await be.observe()))), /weight 70000/);
  t.equal(be.writes, writes, 'no transaction was sent');
  t.equal(nftJson(ns), before, 'the kernel is unchanged');
  t.throws(() => changeMessages([{ op: 'add-frontend', key: 'x', frontend: { ...fe('10.0.0.9', {}), snat: '10.255.0.2' } }], () => false), /source NAT is only for published/);
});

t.test('a transaction larger than the default send buffer goes in as one', { timeout: 100_000 }, async (t) => {
  const ns = tempNetns(t, 'nfl');
  const be = new NftBackend(ns);
  t.teardown(() => be.close());
  const s: LbState = { frontends: {} };
  for (let i = 0; i < 4200; i++) {
    const f = fe(`10.20.${i >> 8}.${i & 255}`, {});
    for (let j = 0; j < 10; j++) { const k = i * 10 + j; f.backends[`10.${30 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`] = 1 + (j % 2); }
    s.frontends[frontendKey(f.match)] = f;
  }
  const msgs = changeMessages(plan(s, { frontends: {} }), () => false);
  const bytes = encodeBatch(msgs, 1).data.length;
  t.ok(bytes > 4 << 20, `${(bytes / 2 ** 20).toFixed(1)} MiB in one datagram (the socket starts with 4 MiB)`);
  const r = await be.apply(plan(s, await be.observe()));
  t.comment(`4,200 frontends x 10 backends (half of them weight 2): ${r.ms.toFixed(0)} ms (kernel ${r.commitMs?.toFixed(0)} ms)`);
  t.equal(canon(await new NftBackend(ns).observe()), canon(s), 'read back whole');
});
