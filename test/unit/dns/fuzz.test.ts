// Fuzz the server's packet path (everything but the socket): random and mutated packets must get a
// well-formed reply or a drop, never an exception; valid queries interleaved keep getting answers.
import t from 'tap';
import { Packet } from 'dns2';
import { DnsServer } from '../../../dns/server.js';
import { Forwarder } from '../../../dns/upstream.js';
import { buildQuery, TYPE, UDP_MAX_PAYLOAD } from '../../../dns/wire.js';
import { fixtureTable, NET } from './fixture.js';
import { fuzzPacket, Rng } from './fuzzgen.js';
import { checkReply } from './replycheck.js';

const COUNT = Number(process.env.DNS_FUZZ_COUNT ?? 50_000);

t.test(`${COUNT} random and mutated packets`, async (t) => {
  // Seeded: CI runs the same packets every time (DNS_FUZZ_SEED to try others).
  const seed = Number(process.env.DNS_FUZZ_SEED ?? 20240607);
  t.comment(`seed ${seed} (DNS_FUZZ_SEED to replay)`);
  const r = new Rng(seed);
  // No upstreams: forwarded names come back SERVFAIL without any I/O.
  const server = new DnsServer({ table: fixtureTable(), forwarder: new Forwarder({ upstreams: [] }) });
  const nets = [NET.app, NET.back, NET.bulk];
  let replies = 0, bad = 0, parsed = 0;
  let firstBad = '';
  const pending: Promise<void>[] = [];
  for (let i = 0; i < COUNT; i++) {
    const pkt = fuzzPacket(r);
    const transport = r.int(4) === 0 ? 'tcp' : 'udp';
    let done!: () => void;
    const p = new Promise<void>((res) => (done = res));
    let answered = false;
    server.handle(nets, pkt, transport, (reply) => {
      answered = true;
      replies++;
      const why = checkReply(pkt, reply, transport);
      if (why || (transport === 'udp' && reply.length > UDP_MAX_PAYLOAD)) {
        bad++;
        firstBad ||= `${why}: ${pkt.toString('hex')}`;
      }
      // dns2 is slow: check a sample with the reference decoder.
      if (i % 16 === 0) {
        const d = Packet.parse(reply);
        if (d.header.id === pkt.readUInt16BE(0)) parsed++;
      }
      done();
    });
    if (!answered) pending.push(Promise.race([p, new Promise<void>((res) => setTimeout(res, 50))]));
    // Every so often a real query must still be answered correctly.
    if (i % 1000 === 0) {
      let got: Buffer | null = null;
      server.handle([NET.app], buildQuery({ id: 7, name: 'web', type: TYPE.A }), 'udp', (b) => (got = b));
      t.ok(got && Packet.parse(got).answers[0]?.address === '10.0.1.2', `still answering after ${i}`);
    }
  }
  await Promise.all(pending);
  t.equal(server.counters.errors, 0, 'no exception inside the server');
  t.equal(bad, 0, `every reply well-formed ${firstBad}`);
  t.ok(replies > COUNT / 4, `${replies} replies`);
  const dropped = Object.values(server.counters.dropped).reduce((a, b) => a + b, 0);
  t.equal(replies + dropped, COUNT, 'every packet answered or counted as dropped');
  t.ok(parsed > 0);
  const c = server.counters;
  t.comment(JSON.stringify({ replies, responses: c.responses, dropped: c.dropped }));
});
