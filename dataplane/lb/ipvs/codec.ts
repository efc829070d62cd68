// Encoder/decoder for the generic netlink family "IPVS" (linux/ip_vs.h, version 1): services and
// destinations as the kernel's attribute sets. Pure: the unit tests round-trip it and feed it
// malformed input, which must come back as an IpvsDecodeError naming what is wrong, never a crash
// or a silently wrong value.
import { be16, bytes, nest, str, u16, u32, type Attr } from '../../netlink/attrs.js';
import { ipToBytes, bytesToIp } from '../../netlink/address.js';
import { AF_INET, AF_INET6 } from '../../netlink/constants.js';

export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;

export const CMD = {
  NEW_SERVICE: 1, SET_SERVICE: 2, DEL_SERVICE: 3, GET_SERVICE: 4,
  NEW_DEST: 5, SET_DEST: 6, DEL_DEST: 7, GET_DEST: 8,
  SET_CONFIG: 12, GET_CONFIG: 13, GET_INFO: 15, FLUSH: 17,
} as const;

export const CMD_ATTR = { SERVICE: 1, DEST: 2, TIMEOUT_TCP: 4, TIMEOUT_TCP_FIN: 5, TIMEOUT_UDP: 6 } as const;
export const SVC_ATTR = { AF: 1, PROTOCOL: 2, ADDR: 3, PORT: 4, FWMARK: 5, SCHED_NAME: 6, FLAGS: 7, TIMEOUT: 8, NETMASK: 9, STATS: 10, PE_NAME: 11 } as const;
export const DEST_ATTR = { ADDR: 1, PORT: 2, FWD_METHOD: 3, WEIGHT: 4, U_THRESH: 5, L_THRESH: 6, ACTIVE_CONNS: 7, INACT_CONNS: 8, PERSIST_CONNS: 9, ADDR_FAMILY: 11 } as const;

/** IP_VS_CONN_F_FWD_MASK values */
export const FWD = { MASQ: 0, LOCALNODE: 1, TUNNEL: 2, DROUTE: 3, BYPASS: 4 } as const;
const IPPROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };
const PROTO_NAME = new Map(Object.entries(IPPROTO).map(([k, v]) => [v, k]));

/** A virtual service: by fwmark, or by (protocol, address, port). */
export interface IpvsService {
  af: number;
  fwmark?: number;
  protocol?: 'tcp' | 'udp' | 'sctp';
  addr?: string;
  port?: number;
  scheduler: string;
  flags: number;
  /** persistence timeout in seconds (0: none) */
  timeout: number;
  netmask: number;
}

export interface IpvsDest {
  addr: string;
  port: number;
  fwd: number;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  /** decoded only */
  activeConns?: number;
  inactiveConns?: number;
}

export class IpvsDecodeError extends Error {
  override name = 'IpvsDecodeError';
}

/** The attributes that identify a service (enough for DEL_SERVICE and for a dest's parent). */
export function serviceKeyAttrs(s: IpvsService): Attr[] {
  const a: Attr[] = [u16(SVC_ATTR.AF, s.af)];
  if (s.fwmark !== undefined) {
    if (!Number.isInteger(s.fwmark) || s.fwmark < 1 || s.fwmark > 0xffffffff) throw new TypeError(`IPVS fwmark ${s.fwmark} must be 1..4294967295`);
    a.push(u32(SVC_ATTR.FWMARK, s.fwmark));
    return a;
  }
  if (s.protocol === undefined || s.addr === undefined || s.port === undefined) throw new TypeError('an IPVS service needs a fwmark, or a protocol, address and port');
  const ip = ipToBytes(s.addr);
  if (ip.family !== s.af) throw new TypeError(`IPVS service address ${s.addr} is not of family ${s.af}`);
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) throw new TypeError(`IPVS service port ${s.port} is out of range`);
  a.push(u16(SVC_ATTR.PROTOCOL, IPPROTO[s.protocol]!), bytes(SVC_ATTR.ADDR, ip.bytes), be16(SVC_ATTR.PORT, s.port));
  return a;
}

/** A full service (NEW_SERVICE / SET_SERVICE). */
export function serviceAttrs(s: IpvsService): Attr {
  if (!/^[a-z]{1,15}$/.test(s.scheduler)) throw new TypeError(`IPVS scheduler "${s.scheduler}" is not a scheduler name`);
  const flags = Buffer.alloc(8);
  flags.writeUInt32LE(s.flags >>> 0, 0);
  flags.writeUInt32LE(0xffffffff, 4); // mask: every flag is as given
  const netmask = Buffer.alloc(4);
  netmask.writeUInt32BE(s.netmask >>> 0);
  return nest(CMD_ATTR.SERVICE, [
    ...serviceKeyAttrs(s),
    str(SVC_ATTR.SCHED_NAME, s.scheduler),
    bytes(SVC_ATTR.FLAGS, flags),
    u32(SVC_ATTR.TIMEOUT, s.timeout),
    bytes(SVC_ATTR.NETMASK, netmask),
  ]);
}

export function serviceKey(s: IpvsService): Attr {
  return nest(CMD_ATTR.SERVICE, serviceKeyAttrs(s));
}

export function destAttrs(d: IpvsDest, af = AF_INET): Attr {
  const ip = ipToBytes(d.addr);
  if (!Number.isInteger(d.port) || d.port < 0 || d.port > 65535) throw new TypeError(`IPVS destination port ${d.port} is out of range`);
  if (!Number.isInteger(d.weight) || d.weight < 0 || d.weight > 0x7fffffff) throw new TypeError(`IPVS destination weight ${d.weight} is out of range`);
  return nest(CMD_ATTR.DEST, [
    bytes(DEST_ATTR.ADDR, ip.bytes),
    be16(DEST_ATTR.PORT, d.port),
    u32(DEST_ATTR.FWD_METHOD, d.fwd),
    u32(DEST_ATTR.WEIGHT, d.weight),
    u32(DEST_ATTR.U_THRESH, d.upperThreshold),
    u32(DEST_ATTR.L_THRESH, d.lowerThreshold),
    u16(DEST_ATTR.ADDR_FAMILY, ip.family === AF_INET6 ? AF_INET6 : af),
  ]);
}

/** The attributes that identify a destination (DEL_DEST). */
export function destKey(d: Pick<IpvsDest, 'addr' | 'port'>): Attr {
  const ip = ipToBytes(d.addr);
  return nest(CMD_ATTR.DEST, [bytes(DEST_ATTR.ADDR, ip.bytes), be16(DEST_ATTR.PORT, d.port), u16(DEST_ATTR.ADDR_FAMILY, ip.family)]);
}

// ---- decoding ----------------------------------------------------------------------------------

/** Strict TLV walk: every attribute must fit and be padded; nested flag stripped from the type. */
export function strictAttrs(buf: Buffer, where: string): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  let off = 0;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new IpvsDecodeError(`${where}: ${buf.length - off} trailing bytes, too short for an attribute header`);
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4) throw new IpvsDecodeError(`${where}: attribute ${type} has length ${len} (< 4)`);
    if (off + len > buf.length) throw new IpvsDecodeError(`${where}: attribute ${type} of ${len} bytes runs past the end (${buf.length - off} left)`);
    m.set(type, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return m;
}

function need(m: Map<number, Buffer>, type: number, size: number, name: string, where: string): Buffer {
  const v = m.get(type);
  if (!v) throw new IpvsDecodeError(`${where}: ${name} is missing`);
  if (v.length < size) throw new IpvsDecodeError(`${where}: ${name} has ${v.length} bytes, needs ${size}`);
  return v;
}

function addrOf(raw: Buffer, af: number, where: string): string {
  if (af === AF_INET) return bytesToIp(raw.subarray(0, 4));
  if (af === AF_INET6 && raw.length >= 16) return bytesToIp(raw.subarray(0, 16));
  throw new IpvsDecodeError(`${where}: address family ${af} is not IPv4 or IPv6`);
}

/** Decodes the payload of a NEW_SERVICE reply (the attributes after the genl header). */
export function decodeService(payload: Buffer): IpvsService {
  const top = strictAttrs(payload, 'IPVS service message');
  const nested = top.get(CMD_ATTR.SERVICE);
  if (!nested) throw new IpvsDecodeError('IPVS service message: no service attribute');
  const w = 'IPVS service';
  const m = strictAttrs(nested, w);
  const af = need(m, SVC_ATTR.AF, 2, 'address family', w).readUInt16LE(0);
  const s: IpvsService = {
    af,
    scheduler: decodeString(need(m, SVC_ATTR.SCHED_NAME, 1, 'scheduler', w)),
    flags: need(m, SVC_ATTR.FLAGS, 8, 'flags', w).readUInt32LE(0),
    timeout: need(m, SVC_ATTR.TIMEOUT, 4, 'timeout', w).readUInt32LE(0),
    netmask: need(m, SVC_ATTR.NETMASK, 4, 'netmask', w).readUInt32BE(0),
  };
  const fw = m.get(SVC_ATTR.FWMARK);
  const mark = fw && fw.length >= 4 ? fw.readUInt32LE(0) : 0;
  if (mark !== 0) {
    s.fwmark = mark;
  } else {
    const proto = need(m, SVC_ATTR.PROTOCOL, 2, 'protocol', w).readUInt16LE(0);
    const name = PROTO_NAME.get(proto);
    if (!name) throw new IpvsDecodeError(`${w}: protocol ${proto} is not tcp, udp or sctp`);
    s.protocol = name as IpvsService['protocol'];
    s.addr = addrOf(need(m, SVC_ATTR.ADDR, af === AF_INET ? 4 : 16, 'address', w), af, w);
    s.port = need(m, SVC_ATTR.PORT, 2, 'port', w).readUInt16BE(0);
  }
  return s;
}

/** Decodes the payload of a NEW_DEST reply. */
export function decodeDest(payload: Buffer, serviceAf = AF_INET): IpvsDest {
  const top = strictAttrs(payload, 'IPVS destination message');
  const nested = top.get(CMD_ATTR.DEST);
  if (!nested) throw new IpvsDecodeError('IPVS destination message: no destination attribute');
  const w = 'IPVS destination';
  const m = strictAttrs(nested, w);
  const famRaw = m.get(DEST_ATTR.ADDR_FAMILY);
  const af = famRaw && famRaw.length >= 2 ? famRaw.readUInt16LE(0) : serviceAf;
  const d: IpvsDest = {
    addr: addrOf(need(m, DEST_ATTR.ADDR, af === AF_INET ? 4 : 16, 'address', w), af, w),
    port: need(m, DEST_ATTR.PORT, 2, 'port', w).readUInt16BE(0),
    fwd: need(m, DEST_ATTR.FWD_METHOD, 4, 'forwarding method', w).readUInt32LE(0) & 0x7,
    weight: need(m, DEST_ATTR.WEIGHT, 4, 'weight', w).readInt32LE(0),
    upperThreshold: need(m, DEST_ATTR.U_THRESH, 4, 'upper threshold', w).readUInt32LE(0),
    lowerThreshold: need(m, DEST_ATTR.L_THRESH, 4, 'lower threshold', w).readUInt32LE(0),
  };
  const ac = m.get(DEST_ATTR.ACTIVE_CONNS);
  if (ac && ac.length >= 4) d.activeConns = ac.readUInt32LE(0);
  const ic = m.get(DEST_ATTR.INACT_CONNS);
  if (ic && ic.length >= 4) d.inactiveConns = ic.readUInt32LE(0);
  return d;
}

function decodeString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
}
