// The strict query parser: what becomes FORMERR, NOTIMP or a drop, and that dns2 reads what we write.
import t from 'tap';
import { Packet } from 'dns2';
import { buildQuery, buildResponse, encodeRecord, parseQuery, RCODE, TYPE, truncateResponse, type ParsedQuery } from '../../../dns/wire.js';
import { reverseBytes, reverseName, presentName } from '../../../dns/names.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// id 0xabcd, RD, qd=1; question "web" A IN
const HDR = 'abcd 0100 0001 0000 0000 0000';
const QWEB = '03776562 00 0001 0001';

function rcodeOf(b: Buffer): number | string {
  const p = parseQuery(b);
  return p.kind === 'query' ? 'query' : p.kind === 'drop' ? `drop:${p.reason}` : p.rcode;
}

t.test('well-formed queries parse', async (t) => {
  const p = parseQuery(hex(HDR + QWEB));
  t.equal(p.kind, 'query');
  if (p.kind !== 'query') return;
  t.equal(p.query.id, 0xabcd);
  t.equal(p.query.name, 'web');
  t.equal(p.query.qtype, TYPE.A);
  t.equal(p.query.rd, true);
  t.equal(p.query.edns, null);
  const e = parseQuery(buildQuery({ name: 'Web.App.', type: TYPE.AAAA, edns: { payload: 1232, dnssecOk: true } }));
  t.equal(e.kind, 'query');
  if (e.kind === 'query') {
    t.equal(e.query.name, 'web.app', 'lower-cased, no trailing dot');
    t.same(e.query.edns, { payload: 1232, version: 0, dnssecOk: true });
    t.equal(e.query.question.toString('latin1').includes('Web'), true, 'raw question keeps the case');
  }
  const root = parseQuery(buildQuery({ name: '.', type: TYPE.NS }));
  t.ok(root.kind === 'query' && root.query.name === '');
  // An OPT with options, and a record whose owner is a pointer back to the question (legal).
  t.equal(rcodeOf(hex('abcd 0100 0001 0000 0000 0001' + QWEB + '00 0029 1000 00000000 0008 000a 0004 01020304')), 'query');
  t.equal(rcodeOf(hex('abcd 0100 0001 0000 0000 0002' + QWEB + 'c00c 0001 0001 00000000 0004 01020304' + '00 0029 1000 00000000 0000')), 'query');
});

t.test('malformed queries: FORMERR', async (t) => {
  const cases: Record<string, string> = {
    'qdcount 0': 'abcd 0100 0000 0000 0000 0000',
    'qdcount 2': 'abcd 0100 0002 0000 0000 0000' + QWEB + QWEB,
    'question missing': 'abcd 0100 0001 0000 0000 0000',
    'name cut short': 'abcd 0100 0001 0000 0000 0000 0377',
    'type/class missing': 'abcd 0100 0001 0000 0000 0000 03776562 00 0001',
    'pointer in question': 'abcd 0100 0001 0000 0000 0000 c000 0001 0001',
    'reserved label type': 'abcd 0100 0001 0000 0000 0000 4177 00 0001 0001',
    'label of 64': 'abcd 0100 0001 0000 0000 0000 40' + '61'.repeat(64) + '00 0001 0001',
    'name over 255': 'abcd 0100 0001 0000 0000 0000' + ('3f' + '61'.repeat(63)).repeat(4) + '00 0001 0001',
    'trailing bytes': 'abcd 0100 0001 0000 0000 0000' + QWEB + 'ff',
    'arcount with nothing': 'abcd 0100 0001 0000 0000 0001' + QWEB,
    'rdata past the end': 'abcd 0100 0001 0000 0000 0001' + QWEB + '00 0029 1000 00000000 0010 0001',
    'forward pointer': 'abcd 0100 0001 0000 0000 0001' + QWEB + 'c0ff 0001 0001 00000000 0000',
    'self pointer': 'abcd 0100 0001 0000 0000 0001' + QWEB + 'c015 0001 0001 00000000 0000',
    'two OPTs': 'abcd 0100 0001 0000 0000 0002' + QWEB + '00 0029 1000 00000000 0000'.repeat(2),
    'OPT not at the root': 'abcd 0100 0001 0000 0000 0001' + QWEB + 'c00c 0029 1000 00000000 0000',
    'OPT in the answer section': 'abcd 0100 0001 0001 0000 0000' + QWEB + '00 0029 1000 00000000 0000',
    'EDNS option overruns': 'abcd 0100 0001 0000 0000 0001' + QWEB + '00 0029 1000 00000000 0006 000a 0008 0102',
    'EDNS option header cut': 'abcd 0100 0001 0000 0000 0001' + QWEB + '00 0029 1000 00000000 0002 000a',
  };
  for (const [what, h] of Object.entries(cases)) t.equal(rcodeOf(hex(h)), RCODE.FORMERR, what);
});

t.test('other failures: NOTIMP, BADVERS, drops', async (t) => {
  t.equal(rcodeOf(hex('abcd 2100 0001 0000 0000 0000' + QWEB)), RCODE.NOTIMP, 'opcode 4 (NOTIFY)');
  t.equal(rcodeOf(hex('abcd 2900 0001 0000 0000 0000' + QWEB)), RCODE.NOTIMP, 'opcode 5 (UPDATE)');
  t.equal(rcodeOf(buildQuery({ name: 'web', type: 1, edns: { payload: 1232, version: 2 } })), RCODE.BADVERS);
  t.equal(rcodeOf(hex('abcd 8100 0001 0000 0000 0000' + QWEB)), 'drop:response', 'never answer a response');
  t.equal(rcodeOf(hex('abcd 0100 0001 0000 0000')), 'drop:short');
  t.equal(rcodeOf(Buffer.alloc(0)), 'drop:short');
});

t.test('failure responses carry the ID, the question when readable, and parse in dns2', async (t) => {
  const p = parseQuery(hex('abcd 0100 0001 0000 0000 0001' + QWEB + 'ffff'));
  t.equal(p.kind, 'error');
  if (p.kind !== 'error') return;
  t.ok(p.question, 'question was readable');
  const { failureResponse } = await import('../../../dns/wire.js');
  const pkt = Packet.parse(failureResponse(p));
  t.equal(pkt.header.id, 0xabcd);
  t.equal(pkt.header.qr, 1);
  t.equal(pkt.header.rcode, RCODE.FORMERR);
  t.equal(pkt.questions[0]!.name, 'web');
});

t.test('buildResponse: limits, TC, rotation', async (t) => {
  const q = parseQuery(buildQuery({ name: 'x', type: TYPE.A }));
  if (q.kind !== 'query') throw new Error('bad');
  const pq: ParsedQuery = q.query;
  const head = { id: 1, opcode: 0, rd: true, cd: false, rcode: 0, aa: true, question: pq.question, edns: null };
  const rrs = [1, 2, 3].map((i) => encodeRecord(TYPE.A, 5, Uint8Array.from([10, 0, 0, i])));
  const full = Packet.parse(buildResponse(head, rrs, 512, 1).bytes);
  t.same(full.answers.map((a) => a.address), ['10.0.0.2', '10.0.0.3', '10.0.0.1'], 'starts at the rotation point');
  const small = buildResponse(head, rrs, 12 + pq.question.length + 20);
  t.equal(small.truncated, true);
  t.equal(Packet.parse(small.bytes).header.tc, 1);
  const partial = buildResponse(head, rrs, 12 + pq.question.length + 40, 0, false);
  t.equal(Packet.parse(partial.bytes).answers.length, 2, 'TCP: as many whole records as fit, no TC');
  t.equal(Packet.parse(partial.bytes).header.tc, 0);
  const cut = truncateResponse(buildResponse(head, rrs, 512).bytes, pq, 40);
  t.equal(Packet.parse(cut).header.tc, 1);
  t.ok(cut.length <= 40);
});

t.test('names: presentation escapes, reverse names', async (t) => {
  t.equal(presentName(Buffer.from('A.b\\c\x00'), 0, 6), 'a\\046b\\092c\\000', 'a dotted label stays one label');
  t.equal(reverseName('10.0.1.2'), '2.1.0.10.in-addr.arpa');
  t.equal(reverseName('fd00::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa');
  t.same(reverseBytes('2.1.0.10.in-addr.arpa'), { v6: false, bytes: [10, 0, 1, 2] });
  t.same(reverseBytes('1.0.10.in-addr.arpa'), { v6: false, bytes: [10, 0, 1] });
  t.equal(reverseBytes('256.1.0.10.in-addr.arpa'), null);
  t.equal(reverseBytes('01.1.0.10.in-addr.arpa'), null, 'no leading zeros');
  t.equal(reverseBytes('1.2.3.4.5.in-addr.arpa'), null);
  t.equal(reverseBytes('g.ip6.arpa'), null);
  t.equal(reverseBytes('example.com'), null);
});
