// The node's load balancing, composed from what the networking pass knows:
//   - internal VIPs: per overlay sandbox here, each VIP-mode service's running tasks on that network
//     (from the gossip endpoint records; a task being stopped is drained: weight 0);
//   - the ingress routing mesh: every published ingress port in this node's ingress sandbox, balanced
//     over the service's tasks on the ingress network on any node, source-NATed to this node's
//     ingress address; the node itself DNATs the published port into the ingress sandbox;
//   - host mode: a published port DNATed straight to the local task (its egress address).
// The sandboxes' tables are dataplane/lb's (nftables or IPVS); the node's own DNAT is one small
// nftables table, `msh_publish`, rewritten atomically when the set of published ports changes.
import { spawnSync } from 'node:child_process';
import { LbReconciler, type BackendKind, type LbInput, type VipService, type IngressPort } from '../../dataplane/lb/index.js';
import { netnsExists } from '../../dataplane/netlink/index.js';
import type { EndpointRecord } from './endpoints.js';
import type { PortConfig } from '../store/objects.js';

export interface PublishedService {
  id: string;
  name: string;
  /** ingress-mode ports */
  ports: PortConfig[];
}

export interface HostPort {
  proto: 'tcp' | 'udp';
  published: number;
  /** the local task's egress address and port */
  addr: string;
  target: number;
}

export interface MeshInput {
  /** overlay sandboxes here: network id -> sandbox namespace */
  sandboxes: Map<string, string>;
  /** endpoint records per network, as gossip has them (ours included) */
  seen: ReadonlyMap<string, readonly EndpointRecord[]>;
  ingress?: { netId: string; netns: string; addr: string; gatewayAddr: string; services: PublishedService[] };
  hostPorts: HostPort[];
}

export const PUBLISH_TABLE = 'msh_publish';
/** How often a sync re-reads the kernel's load-balancing state (drift repair), at the least. */
export const REREAD_MS = 30_000;
const REREAD_MAX_MS = 3_600_000;

/**
 * The wait before the next re-read: 30 s, stretched so that re-reading costs at most 2% of the time
 * (50x what the last one took), and capped at an hour. Reading back 10,000 frontends through `nft -j`
 * takes seconds; every 30 s that would be a quarter of a core spent finding no drift.
 */
export function rereadIntervalMs(lastRereadMs: number): number {
  if (!Number.isFinite(lastRereadMs) || lastRereadMs <= 0) return REREAD_MS;
  return Math.min(REREAD_MAX_MS, Math.max(REREAD_MS, Math.ceil(lastRereadMs * 50)));
}

export class RoutingMesh {
  readonly lb: LbReconciler;
  private chain: Promise<void> = Promise.resolve();
  private lastRules = '';
  private lastInput = '';
  /** when the kernel was last re-read to repair drift (the networking's resync pass brings a sync every 30 s) */
  private rereadAt = Date.now();
  /** the wait after rereadAt: grows with what a re-read costs (rereadIntervalMs) */
  private rereadEveryMs = REREAD_MS;
  lastError: string | undefined;
  /** for `meshctl debug dataplane`: what was last programmed */
  last: LbInput | undefined;

  constructor(
    kind: BackendKind | 'auto',
    private readonly log: (l: string) => void,
  ) {
    this.lb = new LbReconciler(kind);
  }

  static input(m: MeshInput): LbInput {
    const networks = [...m.sandboxes].map(([netId, netns]) => {
      const bySvc = new Map<string, VipService>();
      for (const r of m.seen.get(netId) ?? []) {
        if (r.kind !== 'task' || r.mode !== 'vip' || !r.vip) continue;
        let s = bySvc.get(r.service);
        if (!s) bySvc.set(r.service, (s = { name: r.serviceName, vip: r.vip, backends: [] }));
        s.backends.push({ ip: r.ip, weight: r.draining ? 0 : 1 });
      }
      return { netns, services: [...bySvc.values()] };
    });
    const input: LbInput = { networks };
    if (m.ingress) {
      const recs = (m.seen.get(m.ingress.netId) ?? []).filter((r): r is Extract<EndpointRecord, { kind: 'task' }> => r.kind === 'task');
      const ports: IngressPort[] = [];
      for (const s of m.ingress.services) {
        const backends = recs.filter((r) => r.service === s.id).map((r) => ({ ip: r.ip, weight: r.draining ? 0 : 1 }));
        for (const p of s.ports) ports.push({ name: s.name, proto: p.protocol, publishedPort: p.published, targetPort: p.target, backends });
      }
      input.ingress = { netns: m.ingress.netns, snatAddress: m.ingress.addr, ports };
    }
    return input;
  }

  /** The input without the namespaces that do not exist now. */
  static present(input: LbInput, exists: (netns: string) => boolean = netnsExists): LbInput {
    const out: LbInput = { networks: input.networks.filter((n) => exists(n.netns)) };
    if (input.ingress && exists(input.ingress.netns)) out.ingress = input.ingress;
    return out;
  }

  /** The node's own DNAT: published ingress ports to the ingress sandbox, host ports to local tasks. */
  static rules(m: MeshInput): string {
    const lines: string[] = [];
    if (m.ingress) for (const s of m.ingress.services) for (const p of s.ports) lines.push(`${p.protocol} dport ${p.published} dnat to ${m.ingress.gatewayAddr}:${p.published}`);
    for (const h of m.hostPorts) lines.push(`${h.proto} dport ${h.published} dnat to ${h.addr}:${h.target}`);
    return [
      `table ip ${PUBLISH_TABLE} {`,
      '  chain publish {',
      ...lines.map((l) => `    ${l}`),
      '  }',
      '  chain prerouting { type nat hook prerouting priority dstnat; policy accept; fib daddr type local jump publish; }',
      '  chain output { type nat hook output priority -100; policy accept; fib daddr type local jump publish; }',
      '}',
      '',
    ].join('\n');
  }

  /**
   * Brings the kernel to `m`; calls are serialized, and a call equal to the last one costs nothing.
   * Resolves false when something failed (the caller retries: nothing else may call again soon).
   */
  sync(m: MeshInput): Promise<boolean> {
    const wanted = RoutingMesh.input(m);
    const rules = RoutingMesh.rules(m);
    const run = this.chain.then(async (): Promise<boolean> => {
      let ok = true;
      // Syncs queue behind each other: by the time this one runs, a pass may have removed a sandbox
      // (its last task left) or not made it yet (its overlay step failed and is retried). Neither is
      // the routing mesh's error; the pass that makes the sandbox brings another sync.
      const input = RoutingMesh.present(wanted);
      const key = JSON.stringify(input);
      if (rules !== this.lastRules) {
        // delete-and-recreate in one transaction: atomic for packets
        const exists = spawnSync('nft', ['list', 'table', 'ip', PUBLISH_TABLE], { encoding: 'utf8' }).status === 0;
        const r = spawnSync('nft', ['-f', '-'], { input: `${exists ? `delete table ip ${PUBLISH_TABLE}\n` : ''}${rules}`, encoding: 'utf8' });
        if (r.status !== 0) {
          this.lastError = `nft ${PUBLISH_TABLE}: ${(r.stderr || '').trim()}`;
          this.log(`routing mesh: ${this.lastError}`);
          ok = false;
        } else this.lastRules = rules;
      }
      // by time, not by count: passes no longer come with every heartbeat, so a count would make drift
      // repair rare on a quiet node
      const reread = Date.now() - this.rereadAt >= this.rereadEveryMs;
      if (reread) this.rereadAt = Date.now();
      if (key === this.lastInput && !reread) return ok;
      try {
        const r = await this.lb.sync(input, { reread });
        if (reread) {
          const every = rereadIntervalMs(r.ms);
          if (every !== this.rereadEveryMs) this.log(`routing mesh: re-reading the kernel every ${Math.round(every / 1000)} s (the last re-read took ${r.ms.toFixed(0)} ms)`);
          this.rereadEveryMs = every;
        }
        this.last = input;
        if (r.errors.length) {
          this.lastError = r.errors[0]!.message;
          this.log(`routing mesh: ${r.errors.length} errors, first: ${this.lastError}`);
          this.lastInput = '';
          ok = false;
        } else {
          this.lastInput = key;
          if (r.writes) this.log(`routing mesh: ${r.namespaces.filter((n) => n.changes.length).map((n) => `${n.netns} ${n.changes.length} changes`).join(', ') || 'sandbox settings'} (${r.writes} writes, ${r.ms.toFixed(1)} ms)`);
        }
      } catch (e) {
        this.lastError = (e as Error).message;
        this.lastInput = '';
        this.log(`routing mesh: ${this.lastError}`);
        ok = false;
      }
      return ok;
    });
    this.chain = run.then(() => undefined);
    return run;
  }

  /** Leaving the cluster: the node's DNAT goes (sandbox tables go with their namespaces). */
  static removeRules(): void {
    spawnSync('nft', ['delete', 'table', 'ip', PUBLISH_TABLE], { encoding: 'utf8' });
  }
}
