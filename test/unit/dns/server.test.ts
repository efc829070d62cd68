// The server shell on real sockets opened through the addon (here in our own namespace, on
// 127.0.0.x and a high port, so no root is needed): UDP, TCP, hostile input, listener churn and fds.
import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import fs from 'node:fs';
import { Packet } from 'dns2';
import { DnsServer } from '../../../dns/server.js';
import { buildQuery, TYPE } from '../../../dns/wire.js';
import { fixtureTable, NET } from './fixture.js';
import { loopbackAddress } from './testresolver.js';
import { fuzzPacket, Rng } from './fuzzgen.js';

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

async function listen(server: DnsServer, id: string, networks: string[]): Promise<{ address: string; port: number }> {
  for (let i = 0; ; i++) {
    const address = loopbackAddress();
    const port = 20000 + Math.floor(Math.random() * 40000);
    try {
      await server.addListener(id, { nsPath: null, networks, address, port });
      return { address, port };
    } catch (e) {
      if (i > 20) throw e; // port taken: try another
    }
  }
}

function udpAsk(to: { address: string; port: number }, msg: Buffer, timeoutMs = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(msg, to.port, to.address);
  });
}

function tcpAsk(to: { address: string; port: number }, msgs: Buffer[], raw?: Buffer): Promise<{ replies: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(to.port, to.address);
    const replies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const finish = (closed: boolean) => {
      c.destroy();
      resolve({ replies, closed });
    };
    c.on('connect', () => {
      c.write(raw ?? Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]))));
    });
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (replies.length === msgs.length && msgs.length) finish(false);
    });
    c.on('close', () => finish(true));
    c.on('error', () => finish(true));
    setTimeout(() => finish(false), 2000);
  });
}

t.test('UDP and TCP on addon sockets', async (t) => {
  const server = new DnsServer({ table: fixtureTable(), forwarder: null });
  t.teardown(() => server.close());
  const at = await listen(server, 'task1', [NET.app, NET.bulk]);
  const r = await udpAsk(at, buildQuery({ id: 99, name: 'web', type: TYPE.A }));
  t.equal(Packet.parse(r!).answers[0]!.address, '10.0.1.2');
  const big = await udpAsk(at, buildQuery({ name: 'big', type: TYPE.A }));
  t.equal(Packet.parse(big!).header.tc, 1, 'UDP: truncated');
  const { replies } = await tcpAsk(at, [buildQuery({ id: 1, name: 'big', type: TYPE.A }), buildQuery({ id: 2, name: 'tasks.web', type: TYPE.A })]);
  t.equal(replies.length, 2, 'two pipelined queries on one connection');
  t.equal(Packet.parse(replies[0]!).answers.length, 100, 'TCP: all 100');
  t.equal(Packet.parse(replies[1]!).answers.length, 3);
  t.equal(server.counters.queries.udp, 2);
  t.equal(server.counters.queries.tcp, 2);
  t.equal(server.counters.truncated, 1);
  const fwd = await udpAsk(at, buildQuery({ name: 'example.com', type: TYPE.A }));
  t.equal(Packet.parse(fwd!).header.rcode, 2, 'no forwarder: SERVFAIL');
});

t.test('hostile input: garbage is dropped or FORMERR, the server keeps answering', async (t) => {
  const server = new DnsServer({ table: fixtureTable(), forwarder: null });
  t.teardown(() => server.close());
  const at = await listen(server, 'task1', [NET.app]);
  const s = dgram.createSocket('udp4');
  t.teardown(() => s.close());
  const r = new Rng(12345);
  // Paced in bursts: a flood beyond the socket buffer is dropped by the kernel, which is not the point here.
  for (let i = 0; i < 3000; i++) {
    s.send(fuzzPacket(r), at.port, at.address);
    if (i % 100 === 99) await new Promise((res) => setTimeout(res, 5));
  }
  s.send(Buffer.alloc(9000, 0x41), at.port, at.address); // oversized
  const ok = await udpAsk(at, buildQuery({ name: 'web', type: TYPE.A }));
  t.equal(Packet.parse(ok!).answers[0]!.address, '10.0.1.2', 'still answering');
  const formerr = await udpAsk(at, Buffer.from('abcd01000001000000000000037765', 'hex'));
  t.equal(formerr![3]! & 0xf, 1, 'FORMERR for a cut question');
  t.equal(await udpAsk(at, Buffer.from('abcd'), 200), null, 'shorter than a header: dropped');
  const bad = await tcpAsk(at, [], Buffer.from([0, 5, 1, 2, 3, 4, 5]));
  t.equal(bad.closed, true, 'TCP frame shorter than a header: connection closed');
  const fine = await tcpAsk(at, [buildQuery({ name: 'www', type: TYPE.A })]);
  t.equal(Packet.parse(fine.replies[0]!).answers[0]!.address, '10.0.1.2');
  t.equal(server.counters.errors, 0);
  t.ok(server.counters.dropped.oversized >= 1 || server.counters.dropped.short >= 1);
});

t.test('listeners come and go without leaking fds', async (t) => {
  const server = new DnsServer({ table: fixtureTable(), forwarder: null });
  t.teardown(() => server.close());
  const before = openFds();
  const ats: { address: string; port: number }[] = [];
  for (let i = 0; i < 20; i++) ats.push(await listen(server, `task${i}`, i % 2 ? [NET.back] : [NET.app]));
  t.equal(server.listenerIds().length, 20);
  t.ok(openFds() >= before + 40, 'a UDP and a TCP socket each');
  // Each listener answers with its own scope.
  t.equal(Packet.parse((await udpAsk(ats[0]!, buildQuery({ name: 'web', type: TYPE.A })))!).answers[0]!.address, '10.0.1.2');
  t.equal(Packet.parse((await udpAsk(ats[1]!, buildQuery({ name: 'web', type: TYPE.A })))!).answers[0]!.address, '10.0.2.2');
  // An open TCP connection is closed with its listener.
  const hanging = net.connect(ats[2]!.port, ats[2]!.address);
  await new Promise((r) => hanging.on('connect', r));
  const closed = new Promise((r) => hanging.on('close', r));
  for (let i = 0; i < 20; i++) t.ok(await server.removeListener(`task${i}`));
  await closed;
  t.equal(server.listenerIds().length, 0);
  t.notOk(await server.removeListener('task0'), 'removing twice is harmless');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(openFds(), before, 'every fd closed');
  // The same address can be bound again at once.
  await server.addListener('again', { nsPath: null, networks: [NET.app], ...ats[0]! });
  t.ok(await udpAsk(ats[0]!, buildQuery({ name: 'web', type: TYPE.A })));
  await server.removeListener('again');
});

t.test('failed adds leak nothing; duplicate IDs are refused', async (t) => {
  const server = new DnsServer({ table: fixtureTable(), forwarder: null });
  t.teardown(() => server.close());
  const at = await listen(server, 'a', [NET.app]);
  const before = openFds();
  await t.rejects(server.addListener('a', { nsPath: null, networks: [], address: loopbackAddress(), port: 30000 }), /already exists/);
  await t.rejects(server.addListener('b', { nsPath: null, networks: [], ...at }), { code: 'EADDRINUSE' });
  await t.rejects(server.addListener('c', { nsPath: '/run/netns/mt-dns-does-not-exist', networks: [] }), { code: 'ENOENT' });
  t.equal(openFds(), before);
  server.setNetworks('a', [NET.back]);
  t.equal(Packet.parse((await udpAsk(at, buildQuery({ name: 'web', type: TYPE.A })))!).answers[0]!.address, '10.0.2.2', 'scope follows setNetworks');
});
