// The backend contract against the real kernel, for whichever backend MESH_LB_BACKEND names
// (nftables here, IPVS in the vm tier): random sequences of states are programmed and read back
// exactly; a one-backend change at scale is one small write; a tampered kernel is repaired.
import t from 'tap';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { frontendKey, openBackend, plan, type Frontend, type LbBackend, type LbState } from '../../../dataplane/lb/index.js';
import { NftBackend } from '../../../dataplane/lb/nft/backend.js';
import { IpvsBackend } from '../../../dataplane/lb/ipvs/backend.js';
import { tempNetns } from '../../helpers/netns.js';
import { arbState } from '../../unit/lb/arb.js';
import { backendKind } from './fixture.js';

const kind = backendKind();
const canon = (s: LbState): string => JSON.stringify(Object.entries(s.frontends).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, f]) => [k, f.match, f.targetPort, f.snat ?? null, Object.entries(f.backends).sort()]));

async function sync(be: LbBackend, d: LbState): Promise<number> {
  const r = await be.apply(plan(d, await be.observe()));
  return r.writes;
}

function bigState(n: number, m: number): LbState {
  const s: LbState = { frontends: {} };
  for (let i = 0; i < n; i++) {
    const f: Frontend = { match: { addr: `10.20.${i >> 8}.${i & 255}`, proto: 'any', port: 0 }, targetPort: 0, backends: {} };
    for (let j = 0; j < m; j++) f.backends[`10.30.${i >> 8}.${((i & 255) + j * 7) & 255}`] = 1;
    s.frontends[frontendKey(f.match)] = f;
  }
  return s;
}

t.test(`${kind}: random states are programmed and read back exactly`, async (t) => {
  const ns = tempNetns(t, 'lbp');
  const be = openBackend(kind, ns);
  t.teardown(() => be.close());
  const seq = fc.sample(arbState, { numRuns: kind === 'ipvs' ? 8 : 25, seed: 42 });
  let changed = 0;
  for (const d of [...seq, { frontends: {} }]) {
    await sync(be, d);
    const back = await openBackend(kind, ns).observe();
    if (canon(back) !== canon(d)) { t.same(back, d, 'read back what was programmed'); return; }
    changed++;
    const again = openBackend(kind, ns);
    t.equal(await sync(again, d), 0, 'programming the same state again writes nothing');
    again.close();
  }
  t.equal(changed, seq.length + 1, `${changed} states programmed and read back`);
});

t.test(`${kind}: one backend changed among many frontends is one small write`, async (t) => {
  const ns = tempNetns(t, 'lbs');
  const be = openBackend(kind, ns);
  t.teardown(() => be.close());
  const n = kind === 'ipvs' ? 100 : 300;
  const s = bigState(n, 5);
  await sync(be, s);
  const before = be instanceof NftBackend ? await be.listJson() : '';
  const key = Object.keys(s.frontends)[7]!;
  const next = structuredClone(s);
  next.frontends[key]!.backends['10.99.0.1'] = 2;
  const changes = plan(next, await be.observe());
  t.equal(changes.length, 1, 'one change');
  const r = await be.apply(changes);
  t.equal(r.writes, 1, kind === 'ipvs' ? 'one netlink message (NEW_DEST)' : 'one nft transaction');
  t.comment(`one-backend change among ${n} frontends: ${r.ms.toFixed(1)} ms`);
  t.equal(canon(await be.observe()), canon(next));
  if (be instanceof NftBackend) {
    // Outside check: no rule was touched (every handle as before), and of every map and set only
    // the changed frontend's backend map has other elements.
    type Item = { rule?: { chain: string; handle: number }; map?: { name: string; elem?: unknown }; set?: { name: string; elem?: unknown } };
    const items = (j: string): Item[] => (JSON.parse(j) as { nftables: Item[] }).nftables;
    const rules = (j: string): string => JSON.stringify(items(j).filter((x) => x.rule).map((x) => [x.rule!.chain, x.rule!.handle]));
    const elems = (j: string): Map<string, string> => new Map(items(j).map((x) => x.map ?? x.set).filter((m) => m !== undefined).map((m) => [m.name, JSON.stringify(m.elem ?? [])]));
    const after = await be.listJson();
    t.equal(rules(after), rules(before), 'every rule is the one that was there (same handles)');
    const a = elems(before);
    const b = elems(after);
    const moved = [...new Set([...a.keys(), ...b.keys()])].filter((m) => a.get(m) !== b.get(m));
    t.same(moved, [`be_${key.split(' ')[0]}_any_0_to_0`], 'only the changed frontend\'s backend map has other elements');
  }
});

t.test(`${kind}: a tampered kernel is read as it is and repaired`, async (t) => {
  const ns = tempNetns(t, 'lbr');
  const be = openBackend(kind, ns);
  t.teardown(() => be.close());
  const s = bigState(4, 3);
  await sync(be, s);
  const key = Object.keys(s.frontends)[1]!;
  const vip = key.split(' ')[0]!;
  if (be instanceof NftBackend) {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', 'flush', 'chain', 'ip', 'meshd_lb', `fe_${vip}_any_0_to_0`]);
    execFileSync('ip', ['netns', 'exec', ns, 'nft', 'add', 'chain', 'ip', 'meshd_lb', 'fe_stray']);
  } else {
    execFileSync('ip', ['netns', 'exec', ns, 'ipvsadm', '-d', '-f', '2', '-r', Object.keys(s.frontends[key]!.backends)[0]!]);
    execFileSync('ip', ['netns', 'exec', ns, 'ipvsadm', '-A', '-t', '10.1.2.3:80', '-s', 'rr']);
  }
  const seen = await be.observe();
  t.not(canon(seen), canon(s), 'the damage is seen');
  const changes = plan(s, seen);
  t.ok(changes.length >= 1, `repair planned: ${changes.map((c) => c.op).join(', ')}`);
  await be.apply(changes);
  t.equal(canon(await openBackend(kind, ns).observe()), canon(s), 'back to the desired state');
  const again = openBackend(kind, ns);
  t.equal(await sync(again, s), 0, 'and clean: nothing more to do');
  again.close();
});

t.test('IPVS: our messages agree with ipvsadm', { skip: kind !== 'ipvs' && 'IPVS runs in the vm tier (this kernel has no IPVS)' }, async (t) => {
  const ns = tempNetns(t, 'lbi');
  const be = new IpvsBackend(ns);
  t.teardown(() => be.close());
  await sync(be, {
    frontends: {
      '10.0.1.100 any 0': { match: { addr: '10.0.1.100', proto: 'any', port: 0 }, targetPort: 0, backends: { '10.0.1.3': 1, '10.0.1.4': 0 } },
      '0.0.0.0 tcp 8080': { match: { addr: '0.0.0.0', proto: 'tcp', port: 8080 }, targetPort: 80, snat: '10.255.0.2', backends: { '10.255.0.5': 3 } },
    },
  });
  const text = execFileSync('ip', ['netns', 'exec', ns, 'ipvsadm', '-Ln'], { encoding: 'utf8' });
  t.comment(text);
  // Marks are (target port << 16) | index, indexes handed out in key order: ingress first.
  t.match(text, /FWM\s+2 wrr\s*\n\s*->\s*10\.0\.1\.3:0\s+Masq\s+1\s/, 'fwmark 2: 10.0.1.3 weight 1, masquerade');
  t.match(text, /->\s*10\.0\.1\.4:0\s+Masq\s+0\s/, 'draining 10.0.1.4 weight 0');
  t.match(text, new RegExp(`FWM\\s+${(80 << 16) | 1} wrr\\s*\\n\\s*->\\s*10\\.255\\.0\\.5:80\\s+Masq\\s+3\\s`), 'ingress: fwmark carries target port 80, weight 3');
  // The other way: what ipvsadm encodes, our decoder reads.
  execFileSync('ip', ['netns', 'exec', ns, 'ipvsadm', '-A', '-u', '10.9.9.9:53', '-s', 'sh', '-p', '120']);
  execFileSync('ip', ['netns', 'exec', ns, 'ipvsadm', '-a', '-u', '10.9.9.9:53', '-r', '10.0.1.7:5353', '-g', '-w', '9']);
  const found = be.dumpServices().find((s) => s.service.addr === '10.9.9.9');
  t.match(found?.service, { protocol: 'udp', port: 53, scheduler: 'sh', timeout: 120 }, 'ipvsadm\'s service decoded');
  // Direct routing cannot change ports: ipvsadm sends the service's port for the destination.
  t.match(found?.dests, [{ addr: '10.0.1.7', port: 53, fwd: 3, weight: 9 }], 'ipvsadm\'s destination decoded (direct routing)');
  t.ok((await be.observe(), be.problems.some((p) => /not ours/.test(p))), 'a service that is not ours is reported');
});
