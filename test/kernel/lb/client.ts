// A TCP/UDP client run inside a client namespace (nsenter ... node client.js), driven by JSON lines
// on stdin, answering JSON lines on stdout. It keeps connections open between commands, so a test
// can hold connections across a drain or a removal and then see what became of them.
//   {"op":"probe","addr","port","n","proto"?}  n short connections (or datagrams): who answered, as whom
//   {"op":"open","addr","port","n"}            n held connections: who answered each
//   {"op":"check"}                             each held connection: "alive" | "reset" | "timeout"
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';

interface Hello { backend: string; seenAs: string }
type Cmd =
  | { op: 'probe'; addr: string; port: number; n: number; proto?: 'tcp' | 'udp' }
  | { op: 'open'; addr: string; port: number; n: number }
  | { op: 'check' };

const held: { sock: net.Socket; backend: string; dead?: string }[] = [];

function connectOnce(addr: string, port: number, keep: boolean): Promise<Hello | { error: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: addr, port });
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); resolve({ error: 'timeout' }); }, 3000);
    s.on('data', (d) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      const [backend, seenAs] = buf.slice(0, i).split(' ');
      const hello = { backend: backend ?? '', seenAs: seenAs ?? '' };
      if (keep) {
        const h: (typeof held)[number] = { sock: s, backend: hello.backend };
        s.removeAllListeners('data');
        s.on('error', (e: NodeJS.ErrnoException) => { h.dead = e.code === 'ECONNRESET' ? 'reset' : e.code ?? e.message; });
        s.on('close', () => { h.dead ??= 'closed'; });
        held.push(h);
      } else s.destroy();
      resolve(hello);
    });
    s.on('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); resolve({ error: e.code ?? e.message }); });
  });
}

function udpOnce(addr: string, port: number): Promise<Hello | { error: string }> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => { s.close(); resolve({ error: 'timeout' }); }, 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      const [backend, seenAs] = m.toString().trim().split(' ');
      resolve({ backend: backend ?? '', seenAs: seenAs ?? '' });
    });
    s.on('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); s.close(); resolve({ error: e.code ?? e.message }); });
    s.send('hello', port, addr);
  });
}

async function check(): Promise<string[]> {
  return Promise.all(held.map((h) => new Promise<string>((resolve) => {
    if (h.dead) return resolve(h.dead);
    const timer = setTimeout(() => { resolve(h.dead ?? 'timeout'); }, 2500);
    h.sock.once('data', (d) => { clearTimeout(timer); resolve(d.toString().startsWith('pong') ? 'alive' : `odd:${d.toString()}`); });
    h.sock.once('close', () => { clearTimeout(timer); resolve(h.dead ?? 'closed'); });
    h.sock.write('ping\n');
  })));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const c = JSON.parse(line) as Cmd;
  let out: unknown;
  if (c.op === 'probe') {
    const res = [];
    // Sequential: each a new connection (new source port), as separate clients would be.
    for (let i = 0; i < c.n; i++) res.push(c.proto === 'udp' ? await udpOnce(c.addr, c.port) : await connectOnce(c.addr, c.port, false));
    out = res;
  } else if (c.op === 'open') {
    const res = [];
    for (let i = 0; i < c.n; i++) res.push(await connectOnce(c.addr, c.port, true));
    out = res;
  } else {
    out = await check();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
rl.on('close', () => process.exit(0));
