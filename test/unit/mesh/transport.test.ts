// Real sockets: 3 members on 127.0.0.1-3 (different ports), a crash, and an intruder with the wrong key.
import t from 'tap';
import type { MeshConfig } from '../../../mesh/config.js';
import { generateKey, keyId, Keyring, sodiumReady } from '../../../mesh/keyring.js';
import { MeshTransport } from '../../../mesh/transport.js';

await sodiumReady();
const fast: Partial<MeshConfig> = { probeInterval: 200, probeTimeout: 80, gossipInterval: 100, pushPullInterval: 2000, reconnectInterval: 60_000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startOn(name: string, host: string, key: Uint8Array): Promise<MeshTransport> {
  for (let i = 0; ; i++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    try {
      return await MeshTransport.start({ name, host, port, keyring: new Keyring([key]), config: fast, networks: ['blue'] });
    } catch (e) {
      if (i > 10) throw e;
    }
  }
}

async function until(cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await sleep(20);
  return Date.now() - t0;
}

t.test('three members join over real UDP/TCP, one crashes, the others mark it dead', async (t) => {
  const key = generateKey();
  const a = await startOn('a', '127.0.0.1', key);
  const b = await startOn('b', '127.0.0.2', key);
  const c = await startOn('c', '127.0.0.3', key);
  t.teardown(() => { a.kill(); b.kill(); c.kill(); });
  b.join([a.addr]);
  c.join([b.addr]);
  const alive = (x: MeshTransport): number => x.node.members.allMembers().filter((m) => m.status === 'alive').length;
  const joinMs = await until(() => [a, b, c].every((x) => alive(x) === 3), 5000);
  t.ok([a, b, c].every((x) => alive(x) === 3), `all see 3 alive after ${joinMs} ms`);

  a.node.tables.put('blue', 'endpoints', 'task-a', new TextEncoder().encode('10.0.9.2'));
  a.pump();
  const tableMs = await until(() => c.node.tables.get('blue', 'endpoints', 'task-a') !== undefined, 3000);
  t.ok(c.node.tables.get('blue', 'endpoints', 'task-a'), `table entry reached c in ${tableMs} ms`);

  c.kill();
  const deadMs = await until(() => [a, b].every((x) => x.node.members.member('c')?.status === 'dead'), 8000);
  t.ok([a, b].every((x) => x.node.members.member('c')?.status === 'dead'), `a and b mark c dead ${deadMs} ms after the crash`);
  t.equal(a.node.members.member('b')?.status, 'alive');
  const s = a.status();
  t.equal(s.keyIds.length, 1);
  t.notOk(JSON.stringify(s).includes(Buffer.from(key).toString('hex')), 'status never shows the key');
  t.ok(s.counters.udpOut > 0 && s.counters.tcpOut > 0, 'both transports used');
  t.equal(Object.values(s.dropped).reduce((x, y) => x + y, 0), 0, 'nothing dropped among key holders');
});

t.test('a member with the wrong key cannot join; its packets are counted as dropped', async (t) => {
  const key = generateKey();
  const a = await startOn('a', '127.0.0.1', key);
  const b = await startOn('b', '127.0.0.2', key);
  const x = await startOn('intruder', '127.0.0.4', generateKey());
  t.teardown(() => { a.kill(); b.kill(); x.kill(); });
  b.join([a.addr]);
  await until(() => a.node.members.member('b')?.status === 'alive', 3000);
  x.join([a.addr, b.addr]);
  await sleep(1500);
  t.equal(x.node.members.allMembers().length, 1, 'the intruder knows only itself');
  t.equal(a.node.members.member('intruder'), undefined);
  t.equal(b.node.members.member('intruder'), undefined);
  const dropped = a.sealer.dropped['unknown-key'] + b.sealer.dropped['unknown-key'];
  t.ok(dropped >= 2, `${dropped} intruder packets dropped as unknown-key`);
});

t.test('rotating the key (add, use, remove on each member in turn) while table updates flow loses nothing', async (t) => {
  const k1 = generateKey(), k2 = generateKey();
  const a = await startOn('a', '127.0.0.1', k1);
  const b = await startOn('b', '127.0.0.2', k1);
  const c = await startOn('c', '127.0.0.3', k1);
  t.teardown(() => { a.kill(); b.kill(); c.kill(); });
  b.join([a.addr]);
  c.join([a.addr]);
  const all = [a, b, c];
  await until(() => all.every((x) => x.node.members.allMembers().filter((m) => m.status === 'alive').length === 3), 5000);
  let n = 0;
  const writer = setInterval(() => { a.node.tables.put('blue', 'stream', `k${n}`, new TextEncoder().encode(String(n))); n++; a.pump(); }, 10);
  for (const x of all) { x.sealer.ring.add(k2); await sleep(150); }
  for (const x of all) { x.sealer.ring.use(keyId(k2)); await sleep(150); }
  const old = keyId(k1);
  for (const x of all) { x.sealer.ring.remove(old); await sleep(150); }
  clearInterval(writer);
  await until(() => [b, c].every((x) => x.node.tables.entries('blue', 'stream').length === n), 3000);
  for (const x of [b, c]) t.equal(x.node.tables.entries('blue', 'stream').length, n, `${x.node.name} has all ${n} updates`);
  for (const x of all) {
    t.same(x.sealer.ring.ids(), [keyId(k2)], `${x.node.name} holds only the new key`);
    t.equal(Object.values(x.sealer.dropped).reduce((p, q) => p + q, 0), 0, `${x.node.name} dropped nothing`);
  }
  t.ok(all.every((x) => x.node.members.allMembers().every((m) => m.status === 'alive')), 'no one suspected during rotation');
});
