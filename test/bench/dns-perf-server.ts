// The server side of the dnsperf bench, in its own process so that its CPU time can be read from
// /proc/<pid>/stat: an EmbeddedDns filled through the public API, attached to one task namespace.
// Usage: node dns-perf-server.js NETNS_PATH. Prints "ready" when serving; exits when stdin closes.
import { EmbeddedDns } from '../../dns/embedded.js';
import { BENCH_NET, benchTable } from './dns-perf-table.js';

const nsPath = process.argv[2];
if (!nsPath) throw new Error('usage: dns-perf-server NETNS_PATH');
const dns = new EmbeddedDns({ upstreams: [] });
const { networks, services, tasks } = benchTable();
dns.setTable(networks, services, tasks);
await dns.attach('bench-task', nsPath, [BENCH_NET]);
dns.table.snapshot(); // built before the first query, as a running node would have it
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  const s = dns.stats();
  process.stderr.write(`${JSON.stringify({ queries: s.server.queries, responses: s.server.responses, errors: s.server.errors })}\n`);
  void dns.close().then(() => process.exit(0));
});
