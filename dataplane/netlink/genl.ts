// Generic netlink (NETLINK_GENERIC) in a chosen namespace: family ids resolved by name through the
// controller (CTRL_CMD_GETFAMILY), messages = genlmsghdr (cmd, version) + attributes, sent through
// the same batched NetlinkChannel as rtnetlink. Families are per kernel, ids are not stable across
// boots, so they are always resolved, never hard-coded.
import { NetlinkChannel, type NetlinkRequest, type BatchResult } from './channel.js';
import * as C from './constants.js';
import { cstr, decodeAttrs, encodeAttrs, str, type Attr } from './attrs.js';
import { NetlinkError } from './errors.js';
import { netnsPath } from './netns.js';

export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const GENL_HDRLEN = 4;

export interface GenlMessage {
  cmd: number;
  version: number;
  /** the attributes after the genl header, undecoded */
  payload: Buffer;
}

export function genlBody(cmd: number, version: number, attrs: Attr[]): Buffer {
  const a = encodeAttrs(attrs);
  const b = Buffer.alloc(GENL_HDRLEN + a.length);
  b.writeUInt8(cmd, 0);
  b.writeUInt8(version, 1);
  a.copy(b, GENL_HDRLEN);
  return b;
}

export function parseGenl(data: Buffer): GenlMessage {
  if (data.length < GENL_HDRLEN) throw new NetlinkError('parse generic netlink message', `${data.length} bytes`, 71, 'shorter than its header');
  return { cmd: data.readUInt8(0), version: data.readUInt8(1), payload: data.subarray(GENL_HDRLEN) };
}

export class Genl {
  readonly ch: NetlinkChannel;
  private families = new Map<string, number | null>();

  private constructor(readonly netns: string | undefined) {
    const file = netns === undefined ? null : netns.startsWith('/') ? netns : netnsPath(netns);
    this.ch = new NetlinkChannel(C.NETLINK_GENERIC, { netns: file, label: netns ?? 'host' });
  }

  static open(netns?: string): Genl {
    return new Genl(netns);
  }

  close(): void {
    this.ch.close();
  }

  get writes(): number {
    return this.ch.writes;
  }

  /** The family's id, or undefined when this kernel does not have it (not built, not loadable). */
  familyId(name: string): number | undefined {
    const cached = this.families.get(name);
    if (cached !== undefined) return cached ?? undefined;
    let id: number | null = null;
    try {
      const [m] = this.ch.dump(GENL_ID_CTRL, genlBody(CTRL_CMD_GETFAMILY, 1, [str(CTRL_ATTR_FAMILY_NAME, name)]), 'resolve generic netlink family', name, 0);
      const attrs = m ? decodeAttrs(parseGenl(m.data).payload) : undefined;
      const raw = attrs?.get(CTRL_ATTR_FAMILY_ID);
      if (raw && raw.length >= 2 && cstr(attrs?.get(CTRL_ATTR_FAMILY_NAME)) === name) id = raw.readUInt16LE(0);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'ENOENT')) throw e;
    }
    this.families.set(name, id);
    return id ?? undefined;
  }

  mustFamily(name: string): number {
    const id = this.familyId(name);
    if (id === undefined) throw new NetlinkError('resolve generic netlink family', name, 2, `this kernel has no "${name}" generic netlink family (module not built or not loadable)`);
    return id;
  }

  request(family: number, cmd: number, version: number, attrs: Attr[], op: string, object: string | (() => string), flags = 0): NetlinkRequest {
    return { type: family, flags, body: genlBody(cmd, version, attrs), op, object };
  }

  batch(reqs: NetlinkRequest[]): BatchResult {
    return this.ch.batch(reqs);
  }

  dump(family: number, cmd: number, version: number, attrs: Attr[], op: string, object: string): GenlMessage[] {
    return this.ch.dump(family, genlBody(cmd, version, attrs), op, object).map((m) => parseGenl(m.data));
  }
}
