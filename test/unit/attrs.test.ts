import t from 'tap';
import fc from 'fast-check';
import { decodeAttrs, encodeAttrs, u32, str, nest, cstr } from '../../dataplane/netlink/attrs.js';

t.test('round-trips flat attributes', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 0x3fff }), fc.uint8Array({ maxLength: 64 })), { maxLength: 20 }), (list) => {
      const uniq = new Map<number, Buffer>();
      for (const [ty, v] of list) uniq.set(ty, Buffer.from(v));
      const buf = encodeAttrs([...uniq].map(([type, value]) => ({ type, value })));
      t.equal(buf.length % 4, 0);
      const back = decodeAttrs(buf);
      for (const [ty, v] of uniq) if (!back.get(ty)?.equals(v)) return false;
      return back.size === uniq.size;
    }),
  );
});

t.test('nested attributes carry NLA_F_NESTED and decode level by level', async (t) => {
  const buf = encodeAttrs([str(1, 'vxlan'), nest(2, [u32(1, 4096)])]);
  const top = decodeAttrs(buf);
  t.equal(cstr(top.get(1)), 'vxlan');
  t.equal(buf.readUInt16LE(12 + 2) & 0x8000, 0x8000);
  t.equal(decodeAttrs(top.get(2)!).get(1)!.readUInt32LE(0), 4096);
});

t.test('garbage never throws', async () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => { decodeAttrs(Buffer.from(b)); }));
});
