import t from 'tap';
import fc from 'fast-check';
import { encodeAttrs } from '../../../dataplane/netlink/attrs.js';
import { genlBody, parseGenl } from '../../../dataplane/netlink/genl.js';
import { CMD, decodeDest, decodeService, destAttrs, destKey, serviceAttrs, serviceKey, IpvsDecodeError, FWD, type IpvsDest, type IpvsService } from '../../../dataplane/lb/ipvs/codec.js';
import { markOf, targetPortOf, indexOf } from '../../../dataplane/lb/ipvs/marks.js';

const ip4 = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));
const arbService: fc.Arbitrary<IpvsService> = fc.oneof(
  fc.record({ fwmark: fc.integer({ min: 1, max: 0xffffffff }), scheduler: fc.constantFrom('rr', 'wrr', 'lc', 'sh'), flags: fc.nat(0xff), timeout: fc.nat(86400) })
    .map((s) => ({ af: 2, ...s, netmask: 0xffffffff })),
  fc.record({ protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'sctp' as const), addr: ip4, port: fc.nat(65535), scheduler: fc.constantFrom('rr', 'wrr'), flags: fc.nat(3), timeout: fc.nat(3600) })
    .map((s) => ({ af: 2, ...s, netmask: 0xffffffff })),
);
const arbDest: fc.Arbitrary<IpvsDest> = fc.record({ addr: ip4, port: fc.nat(65535), fwd: fc.constantFrom(FWD.MASQ, FWD.DROUTE, FWD.TUNNEL), weight: fc.nat(0x7fffffff), upperThreshold: fc.nat(100000), lowerThreshold: fc.nat(100000) });

t.test('round trips', async (t) => {
  fc.assert(fc.property(arbService, (s) => {
    const back = decodeService(encodeAttrs([serviceAttrs(s)]));
    t.same(back, s);
    return true;
  }), { numRuns: 300 });
  fc.assert(fc.property(arbDest, (d) => {
    t.same(decodeDest(encodeAttrs([destAttrs(d)])), d);
    return true;
  }), { numRuns: 300 });
  t.pass('services and destinations decode to what was encoded');
});

t.test('wire layout matches linux/ip_vs.h', async (t) => {
  const s: IpvsService = { af: 2, fwmark: 0x1f900002, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff };
  const body = genlBody(CMD.NEW_SERVICE, 1, [serviceAttrs(s)]);
  t.same([...body.subarray(0, 4)], [1, 1, 0, 0], 'genl header: cmd NEW_SERVICE, version 1');
  const hex = body.subarray(4).toString('hex');
  // nested IPVS_CMD_ATTR_SERVICE (type 1 | NLA_F_NESTED), then AF (1) = 2, FWMARK (5), SCHED_NAME (6) "wrr\0"
  t.equal(hex.slice(4, 8), '0180', 'service attribute is nested, type 1');
  t.match(hex, /0600010002000000/, 'AF u16 = AF_INET, padded');
  t.match(hex, /080005000200901f/, 'FWMARK u32 host order');
  t.match(hex, /0800060077727200/, 'SCHED_NAME "wrr\\0"');
  t.match(hex, /0c00070000000000ffffffff/, 'FLAGS {flags, mask}');
  t.match(hex, /08000900ffffffff/, 'NETMASK');
  const d = encodeAttrs([destAttrs({ addr: '10.0.1.3', port: 8080, fwd: FWD.MASQ, weight: 3, upperThreshold: 0, lowerThreshold: 0 })]).toString('hex');
  t.match(d, /080001000a000103/, 'dest ADDR 4 bytes');
  t.match(d, /060002001f900000/, 'dest PORT big-endian');
  t.match(d, /0800040003000000/, 'WEIGHT');
  t.equal(encodeAttrs([serviceKey(s)]).length < encodeAttrs([serviceAttrs(s)]).length, true, 'a key is shorter than the full service');
  t.match(encodeAttrs([destKey({ addr: '10.0.1.3', port: 0 })]).toString('hex'), /080001000a000103/);
  t.same(parseGenl(body).cmd, CMD.NEW_SERVICE);
});

t.test('malformed input: clear errors, never a crash', async (t) => {
  const good = encodeAttrs([serviceAttrs({ af: 2, fwmark: 7, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff })]);
  t.throws(() => decodeService(Buffer.alloc(0)), { name: 'IpvsDecodeError', message: /no service attribute/ });
  t.throws(() => decodeService(good.subarray(0, good.length - 3)), { name: 'IpvsDecodeError', message: /runs past the end/ });
  const short = Buffer.from(good);
  short.writeUInt16LE(2, 4); // first nested attribute claims 2 bytes
  t.throws(() => decodeService(short), { name: 'IpvsDecodeError', message: /length 2 \(< 4\)/ });
  const noSched = encodeAttrs([{ type: 1, value: [{ type: 1, value: Buffer.from([2, 0]) }] }]);
  t.throws(() => decodeService(noSched), { message: /scheduler is missing/ });
  const badProto = encodeAttrs([{ type: 1, value: [{ type: 1, value: Buffer.from([2, 0]) }, { type: 2, value: Buffer.from([99, 0]) }, { type: 6, value: Buffer.from('rr\0') }, { type: 7, value: Buffer.alloc(8) }, { type: 8, value: Buffer.alloc(4) }, { type: 9, value: Buffer.alloc(4) }] }]);
  t.throws(() => decodeService(badProto), { message: /protocol 99 is not tcp, udp or sctp/ });
  t.throws(() => decodeDest(encodeAttrs([{ type: 2, value: [{ type: 1, value: Buffer.from([10, 0]) }] }])), { message: /address has 2 bytes, needs 4/ });
  t.throws(() => parseGenl(Buffer.alloc(2)), /shorter than its header/);
  t.throws(() => serviceAttrs({ af: 2, fwmark: 0, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0 }), /fwmark 0 must be/);
  t.throws(() => serviceAttrs({ af: 2, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0 }), /needs a fwmark, or a protocol/);
  t.throws(() => serviceAttrs({ af: 2, fwmark: 1, scheduler: 'w r', flags: 0, timeout: 0, netmask: 0 }), /not a scheduler name/);
  t.throws(() => destAttrs({ addr: '10.0.0.1', port: 1, fwd: 0, weight: -1, upperThreshold: 0, lowerThreshold: 0 }), /weight -1/);
  // Random bytes never crash: they decode or throw IpvsDecodeError.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
    for (const f of [decodeService, decodeDest]) {
      try { f(Buffer.from(a)); } catch (e) { if (!(e instanceof IpvsDecodeError)) return false; }
    }
    return true;
  }), { numRuns: 2000 });
  // ... and neither do valid messages with bytes flipped.
  fc.assert(fc.property(fc.nat(good.length - 1), fc.nat(255), (i, v) => {
    const b = Buffer.from(good);
    b[i] = v;
    try { decodeService(b); } catch (e) { if (!(e instanceof IpvsDecodeError)) return false; }
    return true;
  }), { numRuns: 2000 });
  t.pass('fuzzed input decodes or fails with IpvsDecodeError');
});

t.test('marks carry the target port', async (t) => {
  t.equal(markOf(8080, 2), 0x1f900002);
  t.equal(targetPortOf(markOf(65535, 65535)), 65535);
  t.equal(indexOf(markOf(65535, 65535)), 65535);
  t.equal(markOf(0, 1), 1, 'all-ports frontends: just the index');
});
