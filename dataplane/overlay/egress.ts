// Egress for tasks (Docker's docker_gwbridge): a gateway bridge in the node's own namespace, one veth
// per task ("gw0" inside the task, with a default route through the bridge) and nftables masquerade
// out of the node. The ports of the bridge cannot talk to each other (a bridge-family drop between
// ports), so two tasks on different overlay networks do not meet through their egress interfaces.
//
// Desired state is (bridge, tasks with their egress address); what exists is read back from the
// kernel by name, so a restarted meshd adopts it and a stale veth (its task gone) is removed. Nothing
// to do writes nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { Rtnl, NetlinkError } from '../netlink/index.js';
import { vethName } from './desired.js';

export interface EgressConfig {
  /** gateway bridge name in the node's namespace, e.g. "msh-gw" */
  bridge: string;
  /** e.g. "172.18.0.0/16"; the bridge takes the first address */
  subnet: string;
  /** nftables table names (ip and bridge family) */
  table: string;
  mtu?: number;
}

export interface EgressTask {
  taskId: string;
  /** the task's network namespace (name under /run/netns) */
  netns: string;
  /** its egress address (no prefix) */
  addr: string;
}

export interface EgressResult {
  writes: number;
  errors: Error[];
}

export const EGRESS_IFNAME = 'gw0';

/** Host-side veth of a task's egress interface: "mg" + 8 hex, stable across restarts. */
export const egressVeth = (taskId: string): string => `mg${vethName(taskId, EGRESS_IFNAME).slice(2)}`;

function v4(s: string): number {
  const p = s.split('.').map(Number);
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0;
}
const ip = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export function subnetParts(cidr: string): { base: number; prefix: number; gateway: string; size: number } {
  const [a, b] = cidr.split('/');
  const prefix = Number(b);
  if (!a || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new TypeError(`egress subnet "${cidr}" must be an IPv4 CIDR between /8 and /30`);
  const size = 2 ** (32 - prefix);
  const base = (v4(a) & ~(size - 1)) >>> 0;
  return { base, prefix, gateway: ip(base + 1), size };
}

/**
 * Node-local egress addresses: the lowest free address for each new task, kept in a small file so a
 * restarted meshd gives adopted tasks the address they already have.
 */
export class EgressAddresses {
  private map: Record<string, string> = {};

  constructor(
    private readonly file: string,
    private readonly subnet: string,
  ) {
    try {
      this.map = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
    } catch {
      this.map = {};
    }
  }

  /** Addresses for exactly these tasks: keeps known ones, gives new ones, forgets the rest. */
  assign(taskIds: readonly string[]): Map<string, string> {
    const { base, size } = subnetParts(this.subnet);
    const want = new Set(taskIds);
    const next: Record<string, string> = {};
    const used = new Set<number>();
    for (const id of taskIds) {
      const a = this.map[id];
      if (a === undefined) continue;
      const n = v4(a);
      if (n > base + 1 && n < base + size - 1 && !used.has(n)) {
        next[id] = a;
        used.add(n);
      }
    }
    let cursor = base + 2;
    for (const id of [...want].sort()) {
      if (next[id] !== undefined) continue;
      while (used.has(cursor) && cursor < base + size - 1) cursor++;
      if (cursor >= base + size - 1) throw new Error(`egress subnet ${this.subnet} is exhausted (${size - 3} tasks on this node); configure a larger one`);
      next[id] = ip(cursor);
      used.add(cursor);
    }
    if (JSON.stringify(next) !== JSON.stringify(this.map)) {
      this.map = next;
      const tmp = `${this.file}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(next));
      fs.renameSync(tmp, this.file);
    }
    return new Map(Object.entries(next));
  }
}

function nftRuleset(cfg: EgressConfig): string {
  return [
    `table ip ${cfg.table} {`,
    `  chain post { type nat hook postrouting priority srcnat; policy accept; ip saddr ${cfg.subnet} oifname != "${cfg.bridge}" masquerade; }`,
    '}',
    `table bridge ${cfg.table} {`,
    `  chain forward_ports { type filter hook forward priority filter; policy accept; iifname "mg*" oifname "mg*" drop; }`,
    '}',
    '',
  ].join('\n');
}

// Checked once per process and table (spawning nft on every pass would cost more than the pass).
const nftChecked = new Set<string>();

function nftHasTables(table: string): boolean {
  if (nftChecked.has(table)) return true;
  const a = spawnSync('nft', ['list', 'table', 'ip', table], { encoding: 'utf8' });
  const b = spawnSync('nft', ['list', 'table', 'bridge', table], { encoding: 'utf8' });
  const ok = a.status === 0 && b.status === 0;
  if (ok) nftChecked.add(table);
  return ok;
}

export function removeEgress(cfg: EgressConfig): void {
  nftChecked.delete(cfg.table);
  for (const fam of ['ip', 'bridge']) spawnSync('nft', ['delete', 'table', fam, cfg.table], { encoding: 'utf8' });
  const r = Rtnl.open();
  try {
    for (const l of r.links()) if (/^mg[0-9a-f]{8}$/.test(l.name)) r.deleteLink(l.name);
    r.deleteLink(cfg.bridge);
  } finally {
    r.close();
  }
}

export function reconcileEgress(cfg: EgressConfig, tasks: readonly EgressTask[]): EgressResult {
  const errors: Error[] = [];
  let writes = 0;
  const { prefix, gateway } = subnetParts(cfg.subnet);
  const host = Rtnl.open();
  try {
    const attempt = (fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        errors.push(e instanceof Error ? e : new Error(String(e)));
      }
    };
    let br = host.link(cfg.bridge);
    if (!br) {
      attempt(() => {
        host.createBridge(cfg.bridge, cfg.mtu ? { mtu: cfg.mtu } : {});
        br = host.mustLink(cfg.bridge);
        host.addAddress(br.index, `${gateway}/${prefix}`);
        host.setLink(br.index, { up: true });
        writes += 3;
      });
    }
    if (!br) return { writes, errors };
    if (!nftHasTables(cfg.table)) {
      const r = spawnSync('nft', ['-f', '-'], { input: nftRuleset(cfg), encoding: 'utf8' });
      if (r.status !== 0) errors.push(new Error(`nft: egress tables ${cfg.table}: ${(r.stderr || r.error?.message || '').trim()}`));
      else {
        writes++;
        nftChecked.add(cfg.table);
      }
    }
    if (tasks.length && fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() !== '1') {
      attempt(() => fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1'));
      writes++;
    }
    const want = new Map(tasks.map((t) => [egressVeth(t.taskId), t]));
    const links = host.links();
    for (const l of links) {
      if (!/^mg[0-9a-f]{8}$/.test(l.name) || want.has(l.name)) continue;
      attempt(() => host.deleteLink(l.name)); // its task is gone (or no longer ours)
      writes++;
    }
    const have = new Set(links.filter((l) => l.master === br!.index && l.up).map((l) => l.name));
    for (const [veth, t] of want) {
      if (have.has(veth)) continue;
      attempt(() => {
        if (host.link(veth)) host.deleteLink(veth); // half-made by a crash: start over
        host.createVeth({ name: veth, peerName: EGRESS_IFNAME, peerNetns: t.netns, ...(cfg.mtu ? { mtu: cfg.mtu } : {}) });
        const l = host.mustLink(veth);
        host.setLink(l.index, { master: br!.index, up: true });
        const inside = Rtnl.open(t.netns);
        try {
          const g = inside.mustLink(EGRESS_IFNAME);
          inside.addAddress(g.index, `${t.addr}/${prefix}`);
          inside.setLink(g.index, { up: true });
          inside.addRoute({ dst: 'default', gateway });
        } finally {
          inside.close();
        }
        writes += 5;
      });
    }
  } finally {
    host.close();
  }
  return { writes, errors: errors.filter((e) => !(e instanceof NetlinkError && e.code === 'ENOENT')) };
}
