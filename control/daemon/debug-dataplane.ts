// `meshctl debug dataplane SERVICE`: what this node's kernel holds for a service (VIPs in the overlay
// sandboxes, the ingress sandbox's published ports, host-mode DNAT), read back from the kernel, and a
// plain-language reason wherever a published port or VIP would not reach a task from here.
import { spawnSync } from 'node:child_process';
import { frontendKey, type LbState } from '../../dataplane/lb/index.js';
import type { EndpointRecord } from './endpoints.js';
import type { NodeNetworking } from './networking.js';
import type { RoutingMesh } from './routing-mesh.js';
import { PUBLISH_TABLE } from './routing-mesh.js';

export interface DataplaneReport {
  service: string;
  node: string;
  backend: string;
  vips: { network: string; netns: string; vip: string; tasks: string[]; kernel: Record<string, number> | null }[];
  ingress: { port: string; netns: string; tasks: string[]; kernel: Record<string, number> | null }[];
  hostDnat: string[];
  problems: string[];
}

async function read(mesh: RoutingMesh, netns: string, rep?: DataplaneReport): Promise<LbState | undefined> {
  try {
    const be = mesh.lb.backend(netns);
    if (rep) rep.backend = be.kind;
    return await be.observe();
  } catch {
    return undefined;
  }
}

export async function debugDataplane(net: NodeNetworking, mesh: RoutingMesh, name: string, nodeName: string): Promise<DataplaneReport> {
  const seen = net.lastSeen;
  const records: { network: string; r: Extract<EndpointRecord, { kind: 'task' }> }[] = [];
  for (const [network, rs] of seen) for (const r of rs) if (r.kind === 'task' && (r.serviceName === name || r.service === name)) records.push({ network, r });
  const published = net.publishedServices().find((s) => s.name === name || s.id === name);
  const rep: DataplaneReport = { service: name, node: nodeName, backend: mesh.lb.kind, vips: [], ingress: [], hostDnat: [], problems: [] };
  const input = mesh.last;
  if (!records.length && !published) {
    rep.problems.push(`this node sees no running task of "${name}" on any network it takes part in (a node learns a network's endpoints only while it runs a task there), and no published port of it`);
    return rep;
  }
  const ingressNet = net.ingressNetworkId();
  for (const sbx of input?.networks ?? []) {
    for (const s of sbx.services) {
      const mine = records.filter((x) => x.r.vip === s.vip);
      if (!mine.length) continue;
      const st = await read(mesh, sbx.netns, rep);
      const fe = st ? Object.values(st.frontends).find((f) => f.match.addr === s.vip) : undefined;
      rep.vips.push({ network: mine[0]!.network, netns: sbx.netns, vip: s.vip, tasks: s.backends.map((b) => `${b.ip}${b.weight ? '' : ' (draining)'}`), kernel: fe ? fe.backends : null });
      if (!fe) rep.problems.push(`VIP ${s.vip}: not programmed in ${sbx.netns} (${mesh.lastError ?? 'no error recorded'})`);
      else if (!Object.values(fe.backends).some((w) => w > 0)) rep.problems.push(`VIP ${s.vip}: no task takes new connections (none running, or all draining)`);
    }
  }
  if (published) {
    const ing = input?.ingress;
    if (!ing) rep.problems.push(`published ports of "${name}": this node has no ingress sandbox yet (no ingress address from the managers, or the ingress network is missing)`);
    const st = ing ? await read(mesh, ing.netns, rep) : undefined;
    for (const p of published.ports) {
      const want = ing?.ports.find((x) => x.publishedPort === p.published && x.proto === p.protocol);
      const fe = st?.frontends[frontendKey({ addr: '0.0.0.0', proto: p.protocol, port: p.published })];
      rep.ingress.push({ port: `${p.published}/${p.protocol} -> ${p.target}`, netns: ing?.netns ?? '', tasks: (want?.backends ?? []).map((b) => `${b.ip}${b.weight ? '' : ' (draining)'}`), kernel: fe ? fe.backends : null });
      if (ing && !fe) rep.problems.push(`port ${p.published}/${p.protocol}: not programmed in ${ing.netns} (${mesh.lastError ?? 'no error recorded'})`);
      else if (fe && !Object.values(fe.backends).some((w) => w > 0)) rep.problems.push(`port ${p.published}/${p.protocol}: no task of "${name}" is running on the ingress network (on any node): connections are refused`);
    }
    const tbl = spawnSync('nft', ['list', 'table', 'ip', PUBLISH_TABLE], { encoding: 'utf8' });
    rep.hostDnat = tbl.stdout.split('\n').map((l) => l.trim()).filter((l) => l.includes('dnat to') && published.ports.some((p) => l.includes(`dport ${p.published} `)));
    for (const p of published.ports) if (!rep.hostDnat.some((l) => l.includes(`dport ${p.published} `))) rep.problems.push(`port ${p.published}/${p.protocol}: the node does not forward it to its ingress sandbox (table ip ${PUBLISH_TABLE})`);
  }
  const broken = net.health().filter((h) => h.state === 'broken' || h.state === 'mtu');
  const remoteTasks = records.filter((x) => x.network === ingressNet || rep.vips.some((v) => v.network === x.network));
  if (broken.length && remoteTasks.length) for (const h of broken) rep.problems.push(`overlay path to ${h.node}: ${h.detail}; its tasks cannot be reached from here`);
  return rep;
}
