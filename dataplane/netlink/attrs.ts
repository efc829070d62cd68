// Minimal netlink attribute (TLV) codec for the nested payloads the `netlink` package leaves as raw
// buffers (IFLA_LINKINFO, extended acks). Host byte order, 4-byte alignment.
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const align4 = (n: number): number => (n + 3) & ~3;

export type AttrValue = Buffer | Attr[];
export interface Attr {
  type: number;
  value: AttrValue;
}

export const u8 = (type: number, v: number): Attr => ({ type, value: Buffer.from([v & 0xff]) });
export function u16(type: number, v: number): Attr {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return { type, value: b };
}
export function be16(type: number, v: number): Attr {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return { type, value: b };
}
export function u32(type: number, v: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return { type, value: b };
}
export function s32(type: number, v: number): Attr {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return { type, value: b };
}
export const str = (type: number, s: string): Attr => ({ type, value: Buffer.from(s + '\0') });
export const bytes = (type: number, b: Buffer): Attr => ({ type, value: b });
export const nest = (type: number, children: Attr[]): Attr => ({ type, value: children });

function attrLength(a: Attr): number {
  if (Buffer.isBuffer(a.value)) return 4 + a.value.length;
  let n = 4;
  for (const c of a.value) n += align4(attrLength(c));
  return n;
}

function writeAttr(a: Attr, out: Buffer, off: number): number {
  const len = attrLength(a);
  out.writeUInt16LE(len, off);
  const nested = !Buffer.isBuffer(a.value);
  out.writeUInt16LE((a.type & NLA_TYPE_MASK) | (nested ? NLA_F_NESTED : 0), off + 2);
  let p = off + 4;
  if (Buffer.isBuffer(a.value)) {
    a.value.copy(out, p);
    p += a.value.length;
  } else {
    for (const c of a.value) p = writeAttr(c, out, p);
  }
  return off + align4(len);
}

/** Encodes attributes back to back, each padded to 4 bytes. */
export function encodeAttrs(attrs: Attr[]): Buffer {
  let total = 0;
  for (const a of attrs) total += align4(attrLength(a));
  const out = Buffer.alloc(total);
  let off = 0;
  for (const a of attrs) off = writeAttr(a, out, off);
  return out;
}

/** Decodes one level of attributes; malformed lengths stop decoding instead of throwing. */
export function decodeAttrs(buf: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < 4 || off + len > buf.length) break;
    m.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return m;
}

export const cstr = (b: Buffer | undefined): string | undefined => {
  if (!b) return undefined;
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
};
