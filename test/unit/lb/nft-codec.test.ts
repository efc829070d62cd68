// The nf_tables netlink codec against the bytes nft 1.0.6 sends for render.ts's text of the same
// changes (fixtures/nft-capture.ts, made by fixtures/capture-nft.ts), then properties of the
// frontend rule encoding over random frontends, then refusals of bad input.
import t from 'tap';
import fc from 'fast-check';
import { cstr } from '../../../dataplane/netlink/attrs.js';
import { parseMessages } from '../../../dataplane/netlink/channel.js';
import { NLM_F_ACK } from '../../../dataplane/netlink/constants.js';
import { encodeBatch, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFT_MSG } from '../../../dataplane/lb/nft/nfnl.js';
import { changeMessages, dispatchKey, dnatRuleMessages, drainKey, liveBackends, NFT_SET } from '../../../dataplane/lb/nft/netlink-codec.js';
import { cmp, hton, lookup, meta, nat, numgen } from '../../../dataplane/lb/nft/expr.js';
import { NftTransactionError } from '../../../dataplane/lb/nft/transaction.js';
import { encodeAttrs } from '../../../dataplane/netlink/attrs.js';
import type { Frontend } from '../../../dataplane/lb/model.js';
import { arbFrontend } from './arb.js';
import { CAPTURES } from './fixtures/nft-capture.js';
import { CAPTURE_STEPS } from './fixtures/steps.js';

// ---- a generic attribute tree, to compare messages and read ours back ---------------------------
type Node = { type: number; nested: boolean; value: string | Node[] };

function tree(buf: Buffer): Node[] {
  const out: Node[] = [];
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    const raw = buf.readUInt16LE(off + 2);
    if (len < 4 || off + len > buf.length) throw new Error(`bad attribute at ${off}`);
    const v = buf.subarray(off + 4, off + len);
    const nested = (raw & 0x8000) !== 0;
    out.push({ type: raw & 0x3fff, nested, value: nested ? tree(v) : v.toString('hex') });
    off += (len + 3) & ~3;
  }
  return out;
}

const get = (ns: Node[], type: number): Node | undefined => ns.find((n) => n.type === type);
const hex = (n: Node | undefined): string => (typeof n?.value === 'string' ? n.value : '');
const kids = (n: Node | undefined): Node[] => (Array.isArray(n?.value) ? n.value : []);

interface Msg { type: number; flags: number; family: number; attrs: Node[] }

function messages(batch: Buffer): Msg[] {
  return parseMessages(batch).map((m) => ({ type: m.type, flags: m.flags, family: m.data.readUInt8(0), attrs: tree(m.data.subarray(4)) }));
}

const ANON = Buffer.from('__map%d\0').toString('hex');
/**
 * Transaction set ids are arbitrary (nft counts from its cache, we from 1): renumber by first
 * appearance. nft also sends a set id with a named set's elements, which the kernel ignores when
 * the name resolves: dropped.
 */
function normalize(ms: Msg[]): Msg[] {
  const ids = new Map<string, string>();
  const renum = (n: Node | undefined): void => {
    if (!n || typeof n.value !== 'string') return;
    if (!ids.has(n.value)) ids.set(n.value, `id${ids.size}`);
    n.value = ids.get(n.value)!;
  };
  for (const m of ms) {
    const sub = m.type & 0xff;
    if (sub === NFT_MSG.NEWSET) renum(get(m.attrs, 10));
    if (sub === NFT_MSG.NEWSETELEM || sub === NFT_MSG.DELSETELEM) {
      if (hex(get(m.attrs, 2)) === ANON) renum(get(m.attrs, 4));
      else m.attrs = m.attrs.filter((a) => a.type !== 4);
    }
    if (sub === NFT_MSG.NEWRULE) {
      for (const e of kids(get(m.attrs, 4))) {
        if (cstr(Buffer.from(hex(get(kids(e), 1)), 'hex')) === 'lookup') renum(get(kids(get(kids(e), 2)), 4));
      }
    }
    m.flags &= ~NLM_F_ACK;
  }
  return ms;
}

const drainedFn = (list: string[]) => (key: string, ip: string): boolean => list.includes(`${key} ${ip}`);

t.test('the same batches as nft sends for the same changes', async (t) => {
  t.equal(CAPTURES.length, CAPTURE_STEPS.length, 'one capture per step');
  for (const [i, step] of CAPTURE_STEPS.entries()) {
    const theirs = Buffer.from(CAPTURES[i]!.hex, 'hex');
    const ours = encodeBatch(changeMessages(step.changes, drainedFn(step.drained)), 0, 2, false).data;
    const a = normalize(messages(ours));
    const b = normalize(messages(theirs));
    t.same(a.map((m) => m.type), b.map((m) => m.type), `${step.name}: message types in nft's order`);
    t.same(a, b, `${step.name}: every message's flags and attributes`);
    // Framing byte for byte where nothing is renumbered: batch begin and end, and every message
    // without set ids (chains, flushes, verdict map elements).
    const ma = parseMessages(ours);
    const mb = parseMessages(theirs);
    t.equal(ma[0]!.type, NFNL_MSG_BATCH_BEGIN);
    t.equal(ma.at(-1)!.type, NFNL_MSG_BATCH_END);
    let same = 0;
    for (let j = 0; j < Math.min(ma.length, mb.length); j++) {
      const sub = ma[j]!.type & 0xff;
      if ([NFT_MSG.NEWCHAIN, NFT_MSG.DELCHAIN, NFT_MSG.DELRULE].includes(sub as 3) || j === 0 || j === ma.length - 1) {
        t.same(ma[j]!.data.toString('hex'), mb[j]!.data.toString('hex'), `${step.name}: message ${j} byte for byte`);
        same++;
      }
    }
    t.ok(same >= 3, `${step.name}: ${same} messages compared byte for byte`);
  }
});

t.test('batch framing: seq numbers, ack on the last request only', async (t) => {
  const msgs = changeMessages(CAPTURE_STEPS[0]!.changes, () => false);
  const b = encodeBatch(msgs, 1000);
  const ms = parseMessages(b.data);
  t.equal(ms.length, msgs.length + 2);
  t.same(ms.map((m) => m.seq), ms.map((_, i) => 1000 + i), 'consecutive seq numbers from BATCH_BEGIN');
  t.equal(b.beginSeq, 1000);
  t.equal(b.lastSeq, 1000 + msgs.length);
  t.same(ms.map((m) => (m.flags & NLM_F_ACK) !== 0), ms.map((_, i) => i === msgs.length), 'only the last request asks for an ACK');
  t.equal(b.bySeq.get(1001)?.what, msgs[0]!.what, 'requests are found by seq for error messages');
  // nfgenmsg of BATCH_BEGIN: AF_UNSPEC, version 0, res_id NFNL_SUBSYS_NFTABLES in network order
  t.equal(ms[0]!.data.toString('hex'), '0000000a');
});

// ---- expressions: byte layouts from linux/netfilter/nf_tables.h ---------------------------------
t.test('expression encodings', async (t) => {
  const enc = (a: Parameters<typeof encodeAttrs>[0][number]): string => encodeAttrs([a]).toString('hex');
  // NFTA_LIST_ELEM(nested) { NFTA_EXPR_NAME "meta", NFTA_EXPR_DATA(nested) { KEY=16, DREG=1 } }
  t.equal(enc(meta(16, 1)), '24000180' + '09000100' + '6d65746100000000' + '14000280' + '0800020000000010' + '0800010000000001');
  t.equal(enc(cmp(1, 0, Buffer.from([17]))), '2c000180' + '08000100636d7000' + '20000280' + '0800010000000001' + '0800020000000000' + '0c000380' + '0500010011000000');
  t.equal(enc(numgen(1, 7)), '34000180' + '0b0001006e756d67656e0000' + '24000280' + '0800010000000001' + '0800020000000007' + '0800030000000001' + '0800040000000000');
  t.equal(enc(hton(1, 1, 4, 4)), '40000180' + '0e000100627974656f72646572000000' + '2c000280' + '0800010000000001' + '0800020000000001' + '0800030000000001' + '0800040000000004' + '0800050000000004');
  t.equal(enc(lookup(1, 'fe_all', undefined, 0)), '30000180' + '0b0001006c6f6f6b75700000' + '20000280' + '0800020000000001' + '0800030000000000' + '0b00010066655f616c6c0000');
  t.equal(enc(nat(1, 2, 1, 9)), '30000180' + '080001006e617400' + '24000280' + '0800010000000001' + '0800020000000002' + '0800030000000001' + '0800050000000009');
});

// ---- properties over random frontends -------------------------------------------------------------

/** Reads a frontend's rule messages back: weights by backend, target port, set flags, modulus. */
function readRule(f: Frontend): { weights: Record<string, number>; port: number; flags: number; mod: number; exprs: string[] } {
  const ms = messages(encodeBatch(dnatRuleMessages(f, 'c', 1), 0).data).slice(1, -1);
  const set = ms.find((m) => (m.type & 0xff) === NFT_MSG.NEWSET)!;
  const flags = parseInt(hex(get(set.attrs, 3)), 16);
  const interval = (flags & NFT_SET.INTERVAL) !== 0;
  const starts: { at: number; ip: string; port: number }[] = [];
  let end = -1;
  for (const m of ms.filter((x) => (x.type & 0xff) === NFT_MSG.NEWSETELEM)) {
    for (const el of kids(get(m.attrs, 3))) {
      const k = Buffer.from(hex(get(kids(get(kids(el), 1)), 1)), 'hex');
      const at = interval ? k.readUInt32BE(0) : k.readUInt32LE(0);
      const fl = get(kids(el), 3);
      if (fl) { end = at; continue; }
      const d = Buffer.from(hex(get(kids(get(kids(el), 2)), 1)), 'hex');
      starts.push({ at, ip: [...d.subarray(0, 4)].join('.'), port: d.length === 8 ? d.readUInt16BE(4) : 0 });
    }
  }
  const rule = ms.find((m) => (m.type & 0xff) === NFT_MSG.NEWRULE)!;
  const exprs = kids(get(rule.attrs, 4)).map((e) => cstr(Buffer.from(hex(get(kids(e), 1)), 'hex'))!);
  const ng = kids(get(rule.attrs, 4)).find((e) => exprs[kids(get(rule.attrs, 4)).indexOf(e)] === 'numgen')!;
  const mod = parseInt(hex(get(kids(get(kids(ng), 2)), 2)), 16);
  const weights: Record<string, number> = {};
  starts.sort((a, b) => a.at - b.at).forEach((s, i) => { weights[s.ip] = (starts[i + 1]?.at ?? (interval ? end : s.at + 1)) - s.at; });
  return { weights, port: starts[0]?.port ?? 0, flags, mod, exprs };
}

t.test('a frontend rule gives each live backend exactly its weight in slots', async (t) => {
  let n = 0;
  fc.assert(fc.property(arbFrontend, (f) => {
    const live = liveBackends(f);
    if (live.length === 0) { t.same(dnatRuleMessages(f, 'c', 1), []); return true; }
    const r = readRule(f);
    const total = live.reduce((s, [, w]) => s + w, 0);
    const interval = live.some(([, w]) => w > 1);
    if (r.mod !== total) throw new Error(`mod ${r.mod}, weights add up to ${total}`);
    t.same(r.weights, Object.fromEntries(live), 'weights read back');
    if (r.port !== f.targetPort) throw new Error('target port');
    if (((r.flags & NFT_SET.INTERVAL) !== 0) !== interval) throw new Error('interval flag');
    if ((r.flags & (NFT_SET.ANONYMOUS | NFT_SET.CONSTANT | NFT_SET.MAP)) !== 0xb) throw new Error('anonymous constant map');
    const want = [...(f.targetPort ? ['meta', 'cmp'] : []), 'numgen', ...(interval ? ['byteorder'] : []), 'lookup', 'nat'];
    t.same(r.exprs, want, 'expressions');
    n++;
    return true;
  }), { numRuns: 300, seed: 7 });
  t.ok(n > 100, `${n} frontends with live backends checked`);
});

t.test('large element lists are split under the 64 KiB attribute limit', async (t) => {
  const backends: Record<string, number> = {};
  for (let i = 0; i < 3000; i++) backends[`10.${40 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`] = 1 + (i % 3);
  const f: Frontend = { match: { addr: '10.0.0.1', proto: 'tcp', port: 80 }, targetPort: 8080, backends };
  const ms = dnatRuleMessages(f, 'c', 1);
  const elems = ms.filter((m) => m.msg === NFT_MSG.NEWSETELEM);
  t.ok(elems.length > 1, `${elems.length} element messages`);
  for (const m of elems) t.ok(encodeAttrs(m.attrs).length < 65535);
  t.same(readRule(f).weights, backends, 'every backend and weight still there');
});

t.test('keys of our maps', async (t) => {
  t.same(dispatchKey({ addr: '10.0.0.1', proto: 'tcp', port: 80 }), { map: 'fe_port', key: Buffer.from('0a000001' + '06000000' + '00500000', 'hex') });
  t.same(dispatchKey({ addr: '10.0.0.1', proto: 'any', port: 0 }), { map: 'fe_all', key: Buffer.from('0a000001', 'hex') });
  t.same(dispatchKey({ addr: '0.0.0.0', proto: 'udp', port: 53 }), { map: 'fe_ingress', key: Buffer.from('11000000' + '00350000', 'hex') });
  t.same(drainKey({ addr: '10.0.0.2', proto: 'any', port: 0 }, '10.0.1.9'), Buffer.from('0a000002' + '00000000' + '00000000' + '0a000109', 'hex'));
});

t.test('bad input is refused before anything is sent', async (t) => {
  const f = (over: Partial<Frontend>): Frontend => ({ match: { addr: '10.0.0.1', proto: 'tcp', port: 80 }, targetPort: 8080, backends: { '10.0.1.3': 1 }, ...over });
  t.throws(() => dnatRuleMessages(f({ backends: { 'not-an-ip': 1 } }), 'c', 1), /not an IP address/);
  t.throws(() => dnatRuleMessages(f({ backends: { 'fd00::1': 1 } }), 'c', 1), /not an IPv4 address/);
  t.throws(() => dnatRuleMessages(f({ backends: { '10.0.1.3': 1.5 } }), 'c', 1), /weight 1.5/);
  t.throws(() => dnatRuleMessages(f({ targetPort: 70000 }), 'c', 1), /70000 is not a port/);
  t.throws(() => dnatRuleMessages(f({ match: { addr: '10.0.0.1', proto: 'any', port: 0 } }), 'c', 1), /target port needs a protocol/);
  t.throws(() => dispatchKey({ addr: '0.0.0.0', proto: 'any', port: 0 }), /needs a protocol/);
  t.throws(() => changeMessages([{ op: 'add-frontend', key: 'k', frontend: f({ snat: '10.255.0.2' }) }], () => false), /source NAT is only for published/);
});

t.test('a refused transaction names each failing request', async (t) => {
  const e = new NftTransactionError('mtx', [
    { what: 'add 10.0.0.1 tcp 80 to fe_port', errno: 17, code: 'EEXIST' },
    { what: 'flush chain fe_x', errno: 2, code: 'ENOENT', kernelMessage: 'chain not found' },
  ], 7);
  t.match(e.message, /namespace mtx refused, nothing applied \(7 requests\): add 10\.0\.0\.1 tcp 80 to fe_port: EEXIST \(already exists.*\); flush chain fe_x: ENOENT \(chain not found\)/);
});

t.test('literal anonymous map names change nothing but the name', async (t) => {
  const step = CAPTURE_STEPS[0]!;
  const a = messages(encodeBatch(changeMessages(step.changes, () => false), 0).data);
  const names: string[] = [];
  const b = messages(encodeBatch(changeMessages(step.changes, () => false, { name: (id) => { names.push(`__mapx_${id}`); return `__mapx_${id}`; } }), 0).data);
  t.same(names, ['__mapx_1', '__mapx_2', '__mapx_3'], 'one name per frontend rule');
  const swap = (ms: Msg[]): string => JSON.stringify(ms).replace(/5f5f6d6170785f3[0-9]00/g, 'NAME').replace(new RegExp(ANON, 'g'), 'NAME');
  t.ok(swap(b).includes('NAME') && !swap(b).includes(ANON), 'the literal names are used');
  t.equal(swap(b), swap(a), 'same messages with the name swapped');
});

t.test('elements by transaction id: the anonymous map name is left out of NEWSETELEM only', async (t) => {
  const step = CAPTURE_STEPS[0]!;
  const a = messages(encodeBatch(changeMessages(step.changes, () => false), 0).data);
  const b = messages(encodeBatch(changeMessages(step.changes, () => false, { elementsById: true }), 0).data);
  const anonElems = (ms: Msg[]): Msg[] => ms.filter((m) => (m.type & 0xff) === NFT_MSG.NEWSETELEM && (hex(get(m.attrs, 2)) === ANON || !get(m.attrs, 2)));
  t.equal(anonElems(b).length, 3, 'three anonymous maps filled');
  for (const m of anonElems(b)) {
    t.notOk(get(m.attrs, 2), 'no set name');
    t.ok(get(m.attrs, 4), 'the set id');
  }
  const strip = (ms: Msg[]): Msg[] => ms.map((m) => ((m.type & 0xff) === NFT_MSG.NEWSETELEM && hex(get(m.attrs, 2)) === ANON ? { ...m, attrs: m.attrs.filter((x) => x.type !== 2) } : m));
  t.same(b, strip(a), 'everything else the same');
});
