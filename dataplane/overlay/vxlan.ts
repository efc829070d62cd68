// VXLAN pieces dataplane/netlink does not offer (worked around here, without editing it):
//  - IFLA_VXLAN_PROXY (ARP proxy), which Rtnl.createVxlan neither sets nor Rtnl.links() reports;
//  - creating the device straight into another namespace (IFLA_NET_NS_FD in the create request).
// Created from the underlay namespace, the device's UDP socket lives there (the kernel binds it in
// the namespace the request came from) while the device itself appears in the sandbox under its
// final name: one atomic step, unlike Swarm's create-then-move that leaves "vxlan: file exists"
// leftovers in the host namespace when it dies in between.
import fs from 'node:fs';
import nl from 'netlink';
import { C, Rtnl, ipToBytes, netnsPath } from '../netlink/index.js';
import { be16, bytes, cstr, decodeAttrs, encodeAttrs, nest, str, u32, u8 } from '../netlink/attrs.js';
import type { VxlanParams } from './model.js';

const IFLA_VXLAN_PROXY = 11;

function linkBody(msg: nl.rt.LinkMessage): Buffer {
  const out = new nl.AttrStream();
  nl.rt.formatLinkMessage(msg, out);
  return Buffer.concat(out.bufs);
}

export function createVxlanInto(host: Rtnl, netns: string, name: string, mtu: number, p: VxlanParams): void {
  const fd = fs.openSync(netnsPath(netns), 'r');
  try {
    const info = [
      u32(C.IFLA_VXLAN_ID, p.vni),
      be16(C.IFLA_VXLAN_PORT, p.port),
      u8(C.IFLA_VXLAN_LEARNING, p.learning ? 1 : 0),
      u8(IFLA_VXLAN_PROXY, p.proxy ? 1 : 0),
      bytes(C.IFLA_VXLAN_LOCAL, ipToBytes(p.local).bytes),
    ];
    const linkinfo = encodeAttrs([str(C.IFLA_INFO_KIND, 'vxlan'), nest(C.IFLA_INFO_DATA, info)]);
    host.ch.request({
      type: C.RTM_NEWLINK,
      flags: C.NLM_F_CREATE | C.NLM_F_EXCL,
      body: linkBody({ kind: 'link', data: { family: C.AF_UNSPEC }, attrs: { ifname: name, mtu, linkinfo, netNsFd: fd } }),
      op: 'create vxlan',
      object: `${name} (VNI ${p.vni}) into netns ${netns}`,
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** ifindex -> ARP proxy flag, for the vxlan devices of a namespace (one extra link dump). */
export function vxlanProxyFlags(r: Rtnl): Map<number, boolean> {
  const out = new Map<number, boolean>();
  const msgs = r.ch.dump(C.RTM_GETLINK, linkBody({ kind: 'link', data: { family: C.AF_UNSPEC }, attrs: {} }), 'list links', r.netns ?? 'host');
  for (const m of msgs) {
    const l = nl.rt.parseLinkMessage(m.data);
    if (!l.attrs.linkinfo) continue;
    const info = decodeAttrs(l.attrs.linkinfo);
    const data = info.get(C.IFLA_INFO_DATA);
    if (!data || cstr(info.get(C.IFLA_INFO_KIND)) !== 'vxlan') continue;
    const proxy = decodeAttrs(data).get(IFLA_VXLAN_PROXY);
    if (proxy) out.set(l.data.index ?? 0, proxy.readUInt8(0) !== 0);
  }
  return out;
}
