import t from 'tap';
import fc from 'fast-check';
import { Bitmap } from '../../../control/allocator/bitmap.js';
import { formatCidr, intToIp, ipToInt, overlaps, parseCidr, within, type Cidr } from '../../../control/allocator/ipv4.js';
import { AddressSpace } from '../../../control/allocator/address-space.js';
import ipaddr from 'ipaddr.js';

const cidr = (s: string): Cidr => {
  const c = parseCidr(s);
  if (typeof c === 'string') throw new Error(c);
  return c;
};

t.test('parse and format', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { base: 10 * 2 ** 24, prefix: 8 });
  t.equal(formatCidr(cidr('192.168.1.0/24')), '192.168.1.0/24');
  t.equal(intToIp(ipToInt('255.255.255.255')!), '255.255.255.255');
  t.equal(ipToInt('1.2.3'), undefined);
  t.equal(ipToInt('1.2.3.256'), undefined);
  t.match(parseCidr('10.0.0.1/24'), /host bits set \(did you mean 10\.0\.0\.0\/24\?\)/);
  t.match(parseCidr('10.0.0.0'), /CIDR form/);
  t.match(parseCidr('10.0.0.0/33'), /prefix/);
  t.match(parseCidr('fe80::/64'), /not an IPv4/);
  t.ok(overlaps(cidr('10.0.0.0/16'), cidr('10.0.3.0/24')));
  t.notOk(overlaps(cidr('10.0.0.0/24'), cidr('10.0.1.0/24')));
  t.ok(within(cidr('10.0.0.128/25'), cidr('10.0.0.0/24')));
  t.notOk(within(cidr('10.0.0.0/23'), cidr('10.0.0.0/24')));
});

t.test('round trip of any address', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n) => ipToInt(intToIp(n)) === n));
});

t.test('bitmap firstClear equals a naive scan', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.nat(299)), fc.nat(299), fc.nat(299), (len, sets, a, b) => {
      const bm = new Bitmap(len);
      const naive = new Array<boolean>(len).fill(false);
      for (const s of sets) if (s < len) (bm.set(s), (naive[s] = true));
      const from = Math.min(a, len - 1);
      const to = Math.min(b, len - 1);
      let want = -1;
      for (let i = from; i <= to; i++) if (!naive[i]) { want = i; break; }
      return bm.firstClear(from, to) === want;
    }),
  );
  const bm = new Bitmap(64);
  for (let i = 0; i < 64; i++) bm.set(i);
  t.equal(bm.firstClear(0, 63), -1);
  bm.clear(63);
  t.equal(bm.firstClear(0, 63), 63);
  t.notOk(bm.has(63));
});

t.test('address space: skips network, broadcast and gateway; honours the range; counts free', async (t) => {
  const s = new AddressSpace(cidr('10.0.0.0/29'), undefined, ipToInt('10.0.0.1')!);
  t.equal(s.free, 5);
  t.same([s.take(), s.take(), s.take()], ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  t.match(s.reserve('10.0.0.4'), /already in use/);
  t.match(s.reserve('10.0.1.4'), /outside/);
  t.match(s.reserve('nope'), /not an IPv4/);
  t.equal(s.reserve('10.0.0.6'), undefined);
  t.equal(s.take(), '10.0.0.5');
  t.equal(s.take(), undefined, 'exhausted');
  t.equal(s.free, 0);
  const r = new AddressSpace(cidr('10.0.0.0/24'), cidr('10.0.0.128/30'), ipToInt('10.0.0.1')!);
  t.same([r.take(), r.take(), r.take(), r.take(), r.take()], ['10.0.0.128', '10.0.0.129', '10.0.0.130', '10.0.0.131', undefined]);
});

t.test('the fast canonical parser agrees with ipaddr.js on every form', async (t) => {
  const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '010', '', 'a', '0x1', ' 1', '1 '));
  fc.assert(
    fc.property(fc.array(octet, { minLength: 1, maxLength: 5 }), (parts) => {
      const s = parts.join('.');
      const strict = ipaddr.IPv4.isValidFourPartDecimal(s) ? ipaddr.IPv4.parse(s).toByteArray().reduce((n, b) => n * 256 + b, 0) : undefined;
      return ipToInt(s) === strict;
    }),
    { numRuns: 2000 },
  );
  t.equal(ipToInt('010.0.0.1'), undefined, 'leading zeros (octal in some parsers) are refused');
  t.equal(ipToInt('1.2.3.4.'), undefined);
  t.equal(ipToInt('1..3.4'), undefined);
});
