// `npm run bench -- dns-fuzz`: at least 1,000,000 random and mutated packets (DNS_FUZZ_COUNT, seed
// DNS_FUZZ_SEED) through the server's whole packet path (DnsServer.handle: decoder, resolver,
// encoder; UDP and TCP limits), interleaved with valid queries whose answers must stay right. Every
// reply is checked by an independent structural walk; a sample is decoded with dns2 as well.
import { Packet } from 'dns2';
import { DnsServer } from '../../dns/server.js';
import { Forwarder } from '../../dns/upstream.js';
import { buildQuery, TYPE } from '../../dns/wire.js';
import { fixtureTable, NET } from '../unit/dns/fixture.js';
import { fuzzPacket, Rng } from '../unit/dns/fuzzgen.js';
import { checkReply } from '../unit/dns/replycheck.js';

const count = Number(process.env.DNS_FUZZ_COUNT ?? 1_000_000);
const seed = Number(process.env.DNS_FUZZ_SEED ?? Date.now() % 1e9);
const r = new Rng(seed);
// No upstream: forwarded names are SERVFAIL without I/O, so every packet is answered or dropped here.
const server = new DnsServer({ table: fixtureTable(), forwarder: new Forwarder({ upstreams: [] }) });
const nets = [NET.app, NET.back, NET.bulk];
const probe = buildQuery({ id: 7, name: 'web', type: TYPE.A });
let replies = 0, bad = 0, dns2Checked = 0, dns2Failed = 0, wrongAnswers = 0;
let firstBad = '';
const t0 = performance.now();
for (let i = 0; i < count; i++) {
  const pkt = fuzzPacket(r);
  const transport = r.int(4) === 0 ? 'tcp' : 'udp';
  server.handle(nets, pkt, transport, (reply) => {
    replies++;
    const why = checkReply(pkt, reply, transport);
    if (why) {
      bad++;
      firstBad ||= `${why}: query ${pkt.toString('hex')} reply ${reply.toString('hex')}`;
    }
    if (i % 64 === 0) {
      dns2Checked++;
      try {
        if (Packet.parse(reply).header.id !== pkt.readUInt16BE(0)) dns2Failed++;
      } catch {
        dns2Failed++;
      }
    }
  });
  if (i % 10_000 === 0) {
    // Forwarded names answer a turn later (SERVFAIL from the upstream-less forwarder): let them.
    await new Promise((res) => setImmediate(res));
    let ok = false;
    server.handle([NET.app], probe, 'udp', (b) => (ok = Packet.parse(b).answers[0]?.address === '10.0.1.2'));
    if (!ok) wrongAnswers++;
  }
}
await new Promise((res) => setImmediate(res));
const secs = (performance.now() - t0) / 1000;
const c = server.counters;
console.log(`dns fuzz: ${count.toLocaleString('en')} packets in ${secs.toFixed(1)} s = ${Math.round(count / secs).toLocaleString('en')} packets/s (seed ${seed}, DNS_FUZZ_SEED to replay)`);
const dropped = Object.values(server.counters.dropped).reduce((a, b) => a + b, 0);
const unaccounted = count - replies - dropped;
console.log(`  ${replies.toLocaleString('en')} replies, ${dropped.toLocaleString('en')} dropped, ${unaccounted} unaccounted, ${bad} malformed, ${c.errors} exceptions, dns2 decoded ${dns2Checked.toLocaleString('en')} (${dns2Failed} failed), ${wrongAnswers} wrong probe answers`);
console.log(`  responses ${JSON.stringify(c.responses)} dropped ${JSON.stringify(c.dropped)}`);
if (firstBad) console.log(`  first bad: ${firstBad}`);
process.exit(bad || c.errors || dns2Failed || wrongAnswers || unaccounted || count < 1 ? 1 : 0);
