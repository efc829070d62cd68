// Connection cleanup over ctnetlink against conntrack(8): the same real conntrack entries (inserted
// by conntrack -I) in two namespaces; one cleaned by conntrack -D with conntrackFilter()'s
// arguments (what the backends ran before), the other by deleteConnections. The same entries must
// go, the rest stay, and the counts agree.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { conntrackFilter } from '../../../dataplane/lb/conntrack.js';
import { deleteConnections } from '../../../dataplane/lb/ctnetlink.js';
import { tempNetns } from '../../helpers/netns.js';

const ct = (ns: string, args: string[]): string => execFileSync('ip', ['netns', 'exec', ns, 'conntrack', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** client -> frontend (addr:port) answered by backend (ip:port) */
function insert(ns: string, proto: 'tcp' | 'udp', client: string, sport: number, dst: string, dport: number, backend: string, bport: number): void {
  const args = ['-I', '-p', proto, '-s', client, '-d', dst, '--sport', String(sport), '--dport', String(dport), '--reply-src', backend, '--reply-dst', client, '--reply-port-src', String(bport), '--reply-port-dst', String(sport), '-t', '300'];
  if (proto === 'tcp') args.push('--state', 'ESTABLISHED', '-u', 'SEEN_REPLY');
  ct(ns, args);
}

/** The table as sorted lines without timers (they tick). */
const list = (ns: string): string[] => ct(ns, ['-L']).split('\n').filter(Boolean).map((l) => l.replace(/^(\w+\s+\d+)\s+\d+/, '$1')).sort();

t.test('deleteConnections deletes what conntrack -D deletes for the same filters', async (t) => {
  const a = tempNetns(t, 'cta');
  const b = tempNetns(t, 'ctb');
  const fill = (ns: string): void => {
    let sport = 40000;
    for (const client of ['10.0.0.5', '10.0.0.6']) {
      insert(ns, 'tcp', client, sport++, '10.0.0.1', 80, '10.0.1.3', 8080); // VIP tcp 80 -> .3: goes
      insert(ns, 'tcp', client, sport++, '10.0.0.1', 80, '10.0.1.4', 8080); // other backend: stays
      insert(ns, 'tcp', client, sport++, '10.0.0.1', 443, '10.0.1.3', 8443); // other port: stays
      insert(ns, 'udp', client, sport++, '10.0.0.1', 80, '10.0.1.3', 8080); // other protocol: stays
      insert(ns, 'tcp', client, sport++, '10.0.0.2', 22, '10.0.1.9', 22); // VIP, every port -> .9: goes
      insert(ns, 'udp', client, sport++, '10.0.0.2', 53, '10.0.1.9', 53); // (udp too): goes
      insert(ns, 'tcp', client, sport++, '10.0.0.3', 22, '10.0.1.9', 22); // other VIP, same backend: stays
      insert(ns, 'udp', client, sport++, '172.31.0.2', 5353, '10.255.0.5', 53); // ingress udp 5353 -> .5: goes
      insert(ns, 'udp', client, sport++, '172.31.0.2', 5354, '10.255.0.5', 53); // other published port: stays
    }
  };
  fill(a);
  fill(b);
  t.same(list(a), list(b), 'the same entries in both');
  t.equal(list(a).length, 18);
  const targets = [
    { key: '10.0.0.1 tcp 80', ip: '10.0.1.3' },
    { key: '10.0.0.2 any 0', ip: '10.0.1.9' },
    { key: '0.0.0.0 udp 5353', ip: '10.255.0.5' },
    { key: '10.0.0.7 tcp 80', ip: '10.0.1.3' }, // matches nothing
  ];
  let theirs = 0;
  for (const x of targets) {
    // conntrack(8) reports "N flow entries have been deleted" on stderr (and exits 1 for none).
    const r = spawnSync('ip', ['netns', 'exec', a, 'conntrack', ...conntrackFilter(x.key, x.ip)], { encoding: 'utf8' });
    theirs += Number(/(\d+) flow entries have been deleted/.exec(r.stdout + r.stderr)?.[1] ?? NaN);
  }
  const ours = deleteConnections(b, targets);
  t.equal(ours, 8, '8 entries deleted');
  t.equal(ours, theirs, 'as many as conntrack -D deleted');
  t.same(list(b), list(a), 'the same 10 entries left');
  t.equal(deleteConnections(b, targets), 0, 'a second run finds nothing to delete');
  t.equal(deleteConnections(b, []), 0, 'no targets: nothing asked of the kernel');
});

t.test('many entries: one dump, deletions in several datagrams', async (t) => {
  const ns = tempNetns(t, 'ctm');
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const client = `10.1.${i >> 8}.${i & 255}`;
    lines.push(`-I -p udp -s ${client} -d 10.0.0.1 --sport 5000 --dport 53 --reply-src 10.0.1.${3 + (i % 2)} --reply-dst ${client} --reply-port-src 53 --reply-port-dst 5000 -t 300`);
  }
  execFileSync('ip', ['netns', 'exec', ns, 'sh', '-s'], { input: lines.map((l) => `conntrack ${l} 2>/dev/null`).join('\n') + '\n' });
  t.equal(list(ns).length, 3000);
  const t0 = performance.now();
  const n = deleteConnections(ns, [{ key: '10.0.0.1 udp 53', ip: '10.0.1.3' }]);
  t.comment(`deleted ${n} of 3,000 in ${(performance.now() - t0).toFixed(1)} ms`);
  t.equal(n, 1500, 'every connection answered by 10.0.1.3');
  t.ok(list(ns).every((l) => l.includes('src=10.0.1.4')), 'and only those');
});
