// The nf_tables netlink codec against the bytes nft 1.0.6 sends for render.ts's text of the same
// changes (fixtures/nft-capture.ts, made by fixtures/capture-nft.ts), then properties of the
// frontend encoding over random frontends (fixed rule, backend map elements), then refusals of bad
// input.
import t from 'tap';
import fc from 'fast-check';
import { cstr } from '../../../dataplane/netlink/attrs.js';
import { parseMessages } from '../../../dataplane/netlink/channel.js';
import { NLM_F_ACK } from '../../../dataplane/netlink/constants.js';
import { encodeBatch, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFT_MSG } from '../../../dataplane/lb/nft/nfnl.js';
import { backendElementMessages, backendMapMessage, changeMessages, dispatchKey, dnatRuleMessage, drainKey, NFT_SET } from '../../../dataplane/lb/nft/netlink-codec.js';
import { liveBackends } from '../../../dataplane/lb/nft/render.js';
import { slotRanges, SLOTS } from '../../../dataplane/lb/nft/slots.js';
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

/**
 * Transaction set ids are arbitrary (nft counts from its cache, we from 1): renumbered by first
 * appearance. Elements: nft names the set and adds its set id, which the kernel ignores when the
 * name resolves; we name a map created in the same transaction by its id alone (see
 * changeMessages). Both become the name alone, in the name's place.
 */
function normalize(ms: Msg[]): Msg[] {
  const ids = new Map<string, string>();
  const names = new Map<string, Node>();
  const renum = (n: Node | undefined): void => {
    if (!n || typeof n.value !== 'string') return;
    if (!ids.has(n.value)) ids.set(n.value, `id${ids.size}`);
    n.value = ids.get(n.value)!;
  };
  for (const m of ms) {
    const sub = m.type & 0xff;
    if (sub === NFT_MSG.NEWSET) { names.set(hex(get(m.attrs, 10)), get(m.attrs, 2)!); renum(get(m.attrs, 10)); }
    if (sub === NFT_MSG.NEWSETELEM || sub === NFT_MSG.DELSETELEM) {
      const byId = get(m.attrs, 2) ? undefined : names.get(hex(get(m.attrs, 4)));
      m.attrs = m.attrs.flatMap((a) => (a.type !== 4 ? [a] : byId ? [byId] : []));
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

/**
 * nft 1.0.6 sends the elements of a map created in the same batch twice, the same NEWSETELEM back
 * to back (the second changes nothing): the repeats are left out of its batch, and counted.
 */
function dropRepeats<T extends { type: number; data: Buffer }>(ms: T[]): { kept: T[]; dropped: number } {
  const kept: T[] = [];
  for (const m of ms) {
    const prev = kept.at(-1);
    if (prev && (m.type & 0xff) === NFT_MSG.NEWSETELEM && prev.type === m.type && prev.data.subarray(4).equals(m.data.subarray(4))) continue;
    kept.push(m);
  }
  return { kept, dropped: ms.length - kept.length };
}

const drainedFn = (list: string[]) => (key: string, ip: string): boolean => list.includes(`${key} ${ip}`);

t.test('the same batches as nft sends for the same changes', async (t) => {
  t.equal(CAPTURES.length, CAPTURE_STEPS.length, 'one capture per step');
  for (const [i, step] of CAPTURE_STEPS.entries()) {
    const theirs = Buffer.from(CAPTURES[i]!.hex, 'hex');
    const ours = encodeBatch(changeMessages(step.changes, drainedFn(step.drained)), 0, 2, false).data;
    const ma = parseMessages(ours);
    const { kept: mb, dropped } = dropRepeats(parseMessages(theirs));
    const newMaps = step.changes.filter((c) => c.op === 'add-frontend' && liveBackends(c.frontend).length > 0).length;
    t.equal(dropped, newMaps, `${step.name}: nft repeated the elements of each new map with backends (${dropped}), nothing else`);
    const decode = (m: ReturnType<typeof parseMessages>[number]): Msg => ({ type: m.type, flags: m.flags, family: m.data.readUInt8(0), attrs: tree(m.data.subarray(4)) });
    const a = normalize(ma.map(decode));
    const b = normalize(mb.map(decode));
    t.same(a.map((m) => m.type), b.map((m) => m.type), `${step.name}: message types in nft's order`);
    t.same(a, b, `${step.name}: every message's flags and attributes`);
    // Framing byte for byte where nothing is renumbered: batch begin and end, and every message
    // without set ids (chains, flushes of chains and maps, map deletions, verdict map elements).
    t.equal(ma[0]!.type, NFNL_MSG_BATCH_BEGIN);
    t.equal(ma.at(-1)!.type, NFNL_MSG_BATCH_END);
    let same = 0;
    for (let j = 0; j < Math.min(ma.length, mb.length); j++) {
      const sub = ma[j]!.type & 0xff;
      const flush = sub === NFT_MSG.DELSETELEM && !get(a[j]!.attrs, 3);
      if ([NFT_MSG.NEWCHAIN, NFT_MSG.DELCHAIN, NFT_MSG.DELRULE, NFT_MSG.DELSET].includes(sub as 3) || flush || j === 0 || j === ma.length - 1) {
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

const msgsOf = (ms: Parameters<typeof encodeBatch>[0]): Msg[] => messages(encodeBatch(ms, 0).data).slice(1, -1);

/** Reads a frontend's map elements back: each backend's slots [start, end), weight and port. */
function readElements(f: Frontend): { ranges: { ip: string; start: number; end: number; weight: number }[]; port: number } {
  const ranges: { ip: string; start: number; end: number; weight: number }[] = [];
  let port = 0;
  const ends: number[] = [];
  for (const m of msgsOf(backendElementMessages(f))) {
    if ((m.type & 0xff) !== NFT_MSG.NEWSETELEM) throw new Error('only elements');
    for (const el of kids(get(m.attrs, 3))) {
      const at = Buffer.from(hex(get(kids(get(kids(el), 1)), 1)), 'hex').readUInt32BE(0);
      if (get(kids(el), 3)) { ends.push(at); continue; }
      const d = Buffer.from(hex(get(kids(get(kids(el), 2)), 1)), 'hex');
      const comment = Buffer.from(hex(get(kids(el), 6)), 'hex');
      if (comment[0] !== 0 || comment[1] !== comment.length - 2) throw new Error('comment TLV');
      const weight = Number(/^weight (\d+)\0$/.exec(comment.subarray(2).toString())![1]);
      ranges.push({ ip: [...d.subarray(0, 4)].join('.'), start: at, end: -1, weight });
      port = d.length === 8 ? d.readUInt16BE(4) : 0;
    }
  }
  // Each start is followed by its own end element.
  if (ends.length !== ranges.length) throw new Error(`${ranges.length} starts, ${ends.length} ends`);
  ranges.forEach((r, i) => { r.end = ends[i]!; });
  return { ranges, port };
}

t.test('the map elements give each live backend one range, its share of the slots, and its weight', async (t) => {
  let n = 0;
  fc.assert(fc.property(arbFrontend, (f) => {
    const live = liveBackends(f);
    if (live.length === 0) { t.same(backendElementMessages(f), []); return true; }
    const { ranges, port } = readElements(f);
    if (port !== f.targetPort) throw new Error('target port');
    t.same(ranges.map((r) => [r.ip, r.weight]), live, 'every live backend, in address order, with its weight');
    t.same(ranges, slotRanges(live).map((r) => ({ ip: r.ip, start: r.start, end: r.end, weight: r.weight })), 'the apportioned ranges');
    if (ranges[0]!.start !== 0 || ranges.at(-1)!.end !== SLOTS || ranges.some((r, i) => i > 0 && r.start !== ranges[i - 1]!.end)) throw new Error('not contiguous over the slots');
    n++;
    return true;
  }), { numRuns: 300, seed: 7 });
  t.ok(n > 100, `${n} frontends with live backends checked`);
});

t.test('the rule and the map do not depend on the backends', async (t) => {
  fc.assert(fc.property(arbFrontend, arbFrontend, (f, g) => {
    const h: Frontend = { ...f, backends: g.backends };
    const a = JSON.stringify([msgsOf([dnatRuleMessage(f, 1)]), msgsOf([backendMapMessage(f, 1)])]);
    const b = JSON.stringify([msgsOf([dnatRuleMessage(h, 1)]), msgsOf([backendMapMessage(h, 1)])]);
    if (a !== b) throw new Error('rule or map changed with the backends');
    return true;
  }), { numRuns: 200, seed: 8 });
  const rule = msgsOf([dnatRuleMessage(CAPTURE_STEPS[0]!.changes[0]!.frontend)])[0]!;
  const exprs = kids(get(rule.attrs, 4));
  t.same(exprs.map((e) => cstr(Buffer.from(hex(get(kids(e), 1)), 'hex'))), ['meta', 'cmp', 'numgen', 'byteorder', 'lookup', 'nat']);
  t.equal(parseInt(hex(get(kids(get(kids(exprs[2]!), 2)), 2)), 16), SLOTS, 'numgen mod 720720');
  const set = msgsOf([backendMapMessage(CAPTURE_STEPS[0]!.changes[0]!.frontend, 1)])[0]!;
  t.equal(parseInt(hex(get(set.attrs, 3)), 16), NFT_SET.MAP | NFT_SET.INTERVAL, 'a named interval data map (not anonymous, not constant)');
});

t.test('a backend change is map elements only', async (t) => {
  fc.assert(fc.property(arbFrontend, arbFrontend, (f, g) => {
    const to: Frontend = { ...f, backends: g.backends };
    const ms = changeMessages([{ op: 'set-backends', key: 'k', frontend: to, added: {}, reweighted: {}, removed: [] }], () => false);
    const kinds = ms.map((m) => m.msg);
    const flush = ms.findIndex((m) => m.msg === NFT_MSG.DELSETELEM && m.attrs.every((a) => a.type !== 3));
    if (flush < 0 || kinds.some((k) => k !== NFT_MSG.NEWSETELEM && k !== NFT_MSG.DELSETELEM)) throw new Error(`not elements only: ${kinds.join(',')}`);
    if (ms.slice(flush + 1).filter((m) => m.what.startsWith('backends')).length !== (liveBackends(to).length ? 1 : 0)) throw new Error('elements after the flush');
    return true;
  }), { numRuns: 200, seed: 9 });
  t.pass('a flush of the map and its new elements (and drain set elements), nothing else');
});

t.test('a new map\'s elements name it by transaction id, existing maps by name', async (t) => {
  const f = CAPTURE_STEPS[0]!.changes[0]!.frontend;
  const ms = changeMessages([{ op: 'add-frontend', key: 'k', frontend: f }], () => false);
  const set = ms.find((m) => m.msg === NFT_MSG.NEWSET)!;
  const elems = ms.filter((m) => m.what.startsWith('backends of'));
  t.equal(elems.length, 1);
  t.same(elems[0]!.attrs.map((a) => a.type), [1, 4, 3], 'table, set id, elements: no name');
  t.same(elems[0]!.attrs[1]!.value, set.attrs.find((a) => a.type === 10)!.value, 'the id of the NEWSET before it');
  const change = changeMessages([{ op: 'set-backends', key: 'k', frontend: f, added: {}, reweighted: {}, removed: [] }], () => false);
  t.same(change.filter((m) => m.what.startsWith('backends of'))[0]!.attrs.map((a) => a.type), [1, 2, 3], 'a change names the existing map');
});

t.test('large element lists are split under the 64 KiB attribute limit', async (t) => {
  const backends: Record<string, number> = {};
  for (let i = 0; i < 3000; i++) backends[`10.${40 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`] = 1 + (i % 3);
  const f: Frontend = { match: { addr: '10.0.0.1', proto: 'tcp', port: 80 }, targetPort: 8080, backends };
  const elems = backendElementMessages(f);
  t.ok(elems.length > 1, `${elems.length} element messages`);
  for (const m of elems) t.ok(encodeAttrs(m.attrs).length < 65535);
  t.same(Object.fromEntries(readElements(f).ranges.map((r) => [r.ip, r.weight])), backends, 'every backend and weight still there');
});

t.test('keys of our maps', async (t) => {
  t.same(dispatchKey({ addr: '10.0.0.1', proto: 'tcp', port: 80 }), { map: 'fe_port', key: Buffer.from('0a000001' + '06000000' + '00500000', 'hex') });
  t.same(dispatchKey({ addr: '10.0.0.1', proto: 'any', port: 0 }), { map: 'fe_all', key: Buffer.from('0a000001', 'hex') });
  t.same(dispatchKey({ addr: '0.0.0.0', proto: 'udp', port: 53 }), { map: 'fe_ingress', key: Buffer.from('11000000' + '00350000', 'hex') });
  t.same(drainKey({ addr: '10.0.0.2', proto: 'any', port: 0 }, '10.0.1.9'), Buffer.from('0a000002' + '00000000' + '00000000' + '0a000109', 'hex'));
});

t.test('bad input is refused before anything is sent', async (t) => {
  const f = (over: Partial<Frontend>): Frontend => ({ match: { addr: '10.0.0.1', proto: 'tcp', port: 80 }, targetPort: 8080, backends: { '10.0.1.3': 1 }, ...over });
  const add = (fr: Frontend): unknown => changeMessages([{ op: 'add-frontend', key: 'k', frontend: fr }], () => false);
  t.throws(() => add(f({ backends: { 'not-an-ip': 1 } })), /not an IP address/);
  t.throws(() => add(f({ backends: { 'fd00::1': 1 } })), /not an IPv4 address/);
  t.throws(() => add(f({ backends: { '10.0.1.3': 1.5 } })), /weight 1.5/);
  t.throws(() => add(f({ backends: { '10.0.1.3': 70000 } })), /weight 70000/);
  t.throws(() => add(f({ targetPort: 70000 })), /70000 is not a port/);
  t.throws(() => add(f({ match: { addr: '10.0.0.1', proto: 'any', port: 0 } })), /target port needs a protocol/);
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
