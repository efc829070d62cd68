// The addon opens sockets inside another namespace; the daemon (here: this process, in the root
// namespace) accepts and answers on them from its own event loop.
import t from 'tap';
import net from 'node:net';
import { native, netnsPath } from '../../native/index.js';
import { tempNetns, inNetns } from '../helpers/netns.js';

t.test('UDP 127.0.0.11:53 inside a namespace, answered from the root namespace', async (t) => {
  const ns = tempNetns(t, 'u');
  const fd = native.socketOpen(netnsPath(ns), 'udp', '127.0.0.11', 53, 0);
  let received = 0;
  const handle = native.watchReadable(fd, () => {
    for (let d = native.udpRecv(fd); d; d = native.udpRecv(fd)) {
      received++;
      native.udpSend(fd, Buffer.from(`echo:${d.data.toString()}`), d.address, d.port);
    }
  });
  t.teardown(() => {
    native.unwatch(handle);
    native.close(fd);
  });
  // A client inside the namespace: node's dgram, run there with `ip netns exec`.
  const client = `
    const s = require('dgram').createSocket('udp4');
    let got = [];
    s.on('message', (m) => { got.push(m.toString()); if (got.length === 3) { console.log(JSON.stringify(got.sort())); process.exit(0); } });
    for (const w of ['a', 'b', 'c']) s.send(w, 53, '127.0.0.11');
    setTimeout(() => { console.log('timeout ' + JSON.stringify(got)); process.exit(1); }, 5000);`;
  const out = await new Promise<string>((resolve, reject) => {
    // Run asynchronously so this process's loop keeps serving the socket meanwhile.
    import('node:child_process').then(({ execFile }) =>
      execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', client], { timeout: 10_000 }, (err, stdout) => (err ? reject(new Error(`${err.message}\n${stdout}`)) : resolve(stdout))),
    );
  });
  t.same(JSON.parse(out), ['echo:a', 'echo:b', 'echo:c']);
  t.equal(received, 3);
});

t.test('the socket really is inside the namespace, not in ours', async (t) => {
  const ns = tempNetns(t, 'v');
  const fd = native.socketOpen(netnsPath(ns), 'udp', '127.0.0.11', 53, 0);
  t.teardown(() => native.close(fd));
  // In the namespace, ss sees the socket bound to 127.0.0.11:53 ...
  t.match(inNetns(ns, ['ss', '-uln']), /127\.0\.0\.11:53/);
  // ... and a second bind to the same address there fails with EADDRINUSE, naming the namespace.
  t.throws(() => native.socketOpen(netnsPath(ns), 'udp', '127.0.0.11', 53, 0), { code: 'EADDRINUSE', message: new RegExp(ns) });
});

t.test('TCP listener inside a namespace, served by net.Server from our loop', async (t) => {
  const ns = tempNetns(t, 't');
  const fd = native.socketOpen(netnsPath(ns), 'tcp', '127.0.0.11', 53, 16);
  const server = net.createServer((sock) => {
    sock.once('data', (d) => sock.end(`tcp-echo:${d.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen({ fd }, resolve));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = `
    const c = require('net').connect(53, '127.0.0.11', () => c.write('hello'));
    let b = ''; c.on('data', (d) => b += d); c.on('end', () => { console.log(b); process.exit(0); });
    c.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });`;
  const out = await new Promise<string>((resolve, reject) => {
    import('node:child_process').then(({ execFile }) =>
      execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', client], { timeout: 10_000 }, (err, stdout) => (err ? reject(new Error(`${err.message}\n${stdout}`)) : resolve(stdout))),
    );
  });
  t.equal(out.trim(), 'tcp-echo:hello');
});

t.test('bad input gets clear errors', async (t) => {
  t.throws(() => native.socketOpen('/run/netns/mt-does-not-exist', 'udp', '127.0.0.1', 53, 0), { code: 'ENOENT', message: /open namespace/ });
  t.throws(() => native.socketOpen(null, 'udp', 'not-an-ip', 53, 0), TypeError);
  t.throws(() => native.socketOpen(null, 'udp', '127.0.0.1', 70000, 0), TypeError);
  t.throws(() => native.netnsCreate('a/b'), TypeError);
  const fd = native.socketOpen(null, 'udp', '127.0.0.1', 0, 0);
  const h = native.watchReadable(fd, () => undefined);
  native.unwatch(h);
  native.unwatch(h); // idempotent
  native.close(fd);
  t.pass('unwatch twice is harmless');
  // A file cannot be watched (epoll refuses regular files): a clear error, not a crash.
  const { openSync, closeSync } = await import('node:fs');
  const file = openSync('/proc/self/status', 'r');
  t.throws(() => native.watchReadable(file, () => undefined), { code: 'EPERM', message: /uv_poll_init/ });
  closeSync(file);
});

t.test('a namespace given as /proc/PID/ns/net (how a container is reached)', async (t) => {
  const ns = tempNetns(t, 'p');
  const { spawn } = await import('node:child_process');
  const child = spawn('ip', ['netns', 'exec', ns, 'sleep', '30'], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  // `ip netns exec` execs sleep in place, so the child's pid is in the namespace once it has started.
  const pidNs = `/proc/${child.pid}/ns/net`;
  const { readlinkSync } = await import('node:fs');
  for (let i = 0; i < 50 && readlinkSync(pidNs) === readlinkSync('/proc/self/ns/net'); i++) await new Promise((r) => setTimeout(r, 20));
  const fd = native.socketOpen(pidNs, 'udp', '127.0.0.11', 5353, 0);
  t.teardown(() => native.close(fd));
  t.match(inNetns(ns, ['ss', '-uln']), /127\.0\.0\.11:5353/);
  const { Rtnl } = await import('../../dataplane/netlink/index.js');
  const r = Rtnl.open(pidNs);
  t.teardown(() => r.close());
  r.createBridge('brp');
  t.match(inNetns(ns, ['ip', '-br', 'link', 'show', 'brp']), /^brp/);
});

t.test('files read inside a namespace: its own sysctls, null for a missing one, clear errors', async (t) => {
  const ns = tempNetns(t);
  const fwd = '/proc/sys/net/ipv4/ip_forward';
  const root = native.readFilesInNetns(null, [fwd])[0];
  t.match(root, /^[01]\n$/, 'our own namespace');
  // The opposite of ours: proof that the read is the namespace's, not the caller's.
  const other = root === '1\n' ? '0' : '1';
  native.writeFileInNetns(netnsPath(ns), fwd, other);
  t.same(native.readFilesInNetns(netnsPath(ns), [fwd, '/proc/sys/net/ipv4/no_such_sysctl']), [`${other}\n`, null], 'the namespace\'s value; null for a missing file');
  t.same(native.readFilesInNetns(null, [fwd]), [root], 'ours is unchanged');
  t.same(native.readFilesInNetns(netnsPath(ns), []), [], 'no files, no reads');
  t.throws(() => native.readFilesInNetns(netnsPath(ns), Array(33).fill(fwd)), TypeError, 'more than 32 files is refused');
  t.throws(() => native.readFilesInNetns('/run/netns/mt-no-such-ns', [fwd]), /open namespace \/run\/netns\/mt-no-such-ns/, 'a missing namespace is named');
});
