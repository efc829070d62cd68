// The node's overlay agent: turns (assignments from the dispatcher, the tasks running here, the
// network-scoped gossip tables) into kernel state, and publishes this node's endpoints.
//
//   local tasks + their addresses  -> veths into per-network sandboxes (dataplane/overlay)
//   remote endpoints (gossip "ep")  -> static FDB + permanent neighbour entries in those sandboxes
//   every local task                -> an egress interface through the node's gateway bridge
//   the node's ingress address      -> its ingress sandbox, from which overlay health is probed
//
// Everything is recomputed as desired state and applied as a diff (a pass with nothing new writes
// nothing), so meshd restarts, lost events and crashes all converge the same way.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { desiredState, macFromIp, observe, reconcile, sandboxName, type LocalAttachment, type OverlayNetwork, type RemoteEndpoint } from '../../dataplane/overlay/index.js';
import { EgressAddresses, reconcileEgress, removeEgress, type EgressConfig } from '../../dataplane/overlay/egress.js';
import { OverlayProber, type PeerHealth } from '../../dataplane/probe/overlay-health.js';
import { createNetns, deleteNetns, netnsExists, Rtnl } from '../../dataplane/netlink/index.js';
import type { Tables } from '../../mesh/tables.js';
import type { EndpointVip, NetworkObject, PortConfig, TaskObject } from '../store/objects.js';
import { decodeEndpoint, encodeEndpoint, endpointKey, ENDPOINT_TABLE, type EndpointRecord } from './endpoints.js';
import type { DnsFeed } from './dns-feed.js';
import { RoutingMesh, type HostPort, type PublishedService } from './routing-mesh.js';

/** How long other nodes get to stop sending new connections to a task before it is stopped. */
const DRAIN_MS = 1000;
/** How long after gossip starts the tables are taken as complete enough to program the kernel from. */
const SYNC_GRACE_MS = 1000;
/** ... and after a bulk sync with a peer of each network, time for its reply to arrive */
const SYNC_SETTLE_MS = 300;
/** ... or, for a network nobody else is known to be in, this long */
const SYNC_ALONE_MS = 4000;
const FULL_OBSERVE_MS = 30_000;
const ADOPT_MS = 10_000;
const READY_MAX_MS = 10_000;
/** a pass (or load-balancing sync) that failed is tried again this much later */
const RETRY_MS = 1000;

/** What the dispatcher tells a node about the services of its tasks. */
export interface ServiceInfo {
  name: string;
  mode: 'vip' | 'dnsrr';
  vips: EndpointVip[];
  /** network id -> the service's aliases there */
  aliases: Record<string, string[]>;
  /** its published ports (host-mode ones are programmed on the nodes that run it) */
  ports?: PortConfig[];
}

export interface NetworkingOptions {
  nodeId: string;
  hostname: string;
  /** prefix of our kernel objects: sandboxes are "<prefix>-ov-<vni>", the ingress sandbox "<prefix>-isbx" */
  prefix: string;
  /** this node's underlay address (its VTEP) */
  underlay: string;
  stateDir: string;
  log: (l: string) => void;
  tables: () => Tables | undefined;
  /** send queued gossip now rather than at the next gossip tick */
  pump?: () => void;
  /** running local tasks -> their network namespace */
  running: () => Map<string, string>;
  egress?: Partial<EgressConfig>;
  /** the node's embedded DNS: fed from every pass, a listener in every local task */
  dns?: DnsFeed;
  /** the node's load balancing (VIPs, the ingress routing mesh, host-mode ports) */
  mesh?: RoutingMesh;
}

export interface NetworkingStats {
  passes: number;
  writes: number;
  lastWrites: number;
  lastMs: number;
  errors: number;
  lastError?: string;
}

export class NodeNetworking {
  private tasks = new Map<string, TaskObject>();
  private networks = new Map<string, NetworkObject>();
  private services = new Map<string, ServiceInfo>();
  private ingressAddr: string | undefined;
  private published: PublishedService[] = [];
  /** local tasks known to accept on their published TCP port (or that waited long enough) */
  private ready = new Set<string>();
  private probing = new Set<string>();
  private readySeeded = false;
  private preparing = new Map<string, string>();
  private joined = new Set<string>();
  /** networks bulk-synced with a peer since we joined them, and when */
  private synced = new Map<string, number>();
  private subscribed: Tables | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private prober: OverlayProber | undefined;
  private underlayMtu: number | undefined;
  private readonly egressCfg: EgressConfig;
  private readonly egressAddrs: EgressAddresses;
  private closed = false;
  /** no pass before the first assignments: until then "no tasks here" would tear everything down */
  private haveAssignments = false;
  /** the last view update() applied, serialized */
  private lastView = '';
  private tablesSince = 0;
  /** task namespace -> the attachments last applied to it (trusted until they change) */
  private applied = new Map<string, string>();
  private lastFullObserve = 0;
  /** until then (after a start), remote entries already in the kernel are kept even if gossip has not
   * brought them yet: a restart never removes an entry only to add it back */
  private readonly adoptUntil = Date.now() + ADOPT_MS;
  readonly stats: NetworkingStats = { passes: 0, writes: 0, lastWrites: 0, lastMs: 0, errors: 0 };
  /** the endpoint records of the last pass, per network (for `debug dataplane`) */
  lastSeen: ReadonlyMap<string, readonly EndpointRecord[]> = new Map();

  constructor(private readonly o: NetworkingOptions) {
    this.egressCfg = { bridge: 'msh-gw', subnet: '172.18.0.0/16', table: 'msh_egress', ...o.egress };
    this.egressAddrs = new EgressAddresses(path.join(o.stateDir, 'egress.json'), this.egressCfg.subnet);
    // a periodic pass: repairs drift (someone removed an entry by hand) even when nothing else happens
    this.resync = setInterval(() => this.schedule(), FULL_OBSERVE_MS);
    this.resync.unref();
    // once the adoption window closes, entries nobody vouched for go
    setTimeout(() => this.schedule(), ADOPT_MS + 50).unref();
  }
  private resync: NodeJS.Timeout;
  /** resolved at the end of the next pass (drain) */
  private passWaiters: (() => void)[] = [];
  /**
   * Nodes the managers marked down (missed heartbeats): their endpoints are ignored even before gossip
   * declares them dead. Whichever notices first wins: the heartbeat deadline is fixed (3 s by default),
   * while gossip suspicion stretches under load (Lifeguard), and a down node's tasks are being
   * replaced anyway.
   */
  private downNodes = new Set<string>();

  get isbx(): string {
    return `${this.o.prefix}-isbx`;
  }

  /** The dispatcher's view: this node's tasks, the networks and services they use, its ingress address. */
  update(u: { tasks: TaskObject[]; networks: NetworkObject[]; services: Record<string, ServiceInfo>; ingressAddr?: string; published?: PublishedService[]; downNodes?: string[] }): void {
    // Every session reply (a heartbeat, once a second) carries the whole view. The same view again
    // needs no pass: a pass dumps every sandbox over netlink, which at one a second was most of an
    // idle node's CPU (and seconds of blocked event loop on slow or emulated CPUs). Changes of what
    // runs here, and gossip, schedule their own passes.
    const sig = JSON.stringify(u);
    if (sig === this.lastView && this.haveAssignments) return;
    this.lastView = sig;
    this.published = u.published ?? [];
    this.downNodes = new Set(u.downNodes ?? []);
    this.tasks = new Map(u.tasks.map((t) => [t.id, t]));
    this.networks = new Map(u.networks.map((n) => [n.id, n]));
    this.services = new Map(Object.entries(u.services));
    this.ingressAddr = u.ingressAddr;
    this.haveAssignments = true;
    this.schedule();
  }

  /**
   * Agent hook, before a task is stopped: its endpoints go out as draining (weight 0, out of DNS)
   * and the other nodes get DRAIN_MS to apply that, so no new connection is sent to a process that
   * is about to exit (a rolling update or scale-down then fails no request). Tasks that take no
   * service traffic stop at once.
   */
  async drain(t: TaskObject): Promise<void> {
    if (this.closed || t.attachment || !t.networks.length || !this.services.has(t.serviceId)) return;
    const known = this.tasks.get(t.id);
    if (!known || known.desiredState === 'running') this.tasks.set(t.id, t); // the pass must see it as stopping
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DRAIN_MS);
      this.passWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.schedule();
    });
    await new Promise((r) => setTimeout(r, DRAIN_MS));
  }

  /** Agent hook: a task's namespace exists and its command has not run yet. Attach it now. */
  async prepare(t: TaskObject, netns: string): Promise<void> {
    if (!this.tasks.has(t.id)) this.tasks.set(t.id, t);
    this.preparing.set(t.id, netns);
    try {
      const errs = this.pass();
      const mine = errs.filter((e) => e.includes(netns) || e.includes(t.id.slice(0, 12)));
      if (mine.length) throw new Error(`attaching networks: ${mine.join('; ')}`);
      // DNS answers from the first query the task makes
      await this.o.dns?.attach(t.id, netns, this.dnsNetworks(t));
    } finally {
      this.preparing.delete(t.id);
    }
  }

  /** Something changed (tasks, gossip): one pass soon, coalescing bursts. */
  schedule(delayMs = 2): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pass();
    }, delayMs);
  }

  health(): PeerHealth[] {
    return this.prober?.status() ?? [];
  }

  private mtu(): number {
    if (this.underlayMtu !== undefined) return this.underlayMtu;
    const r = Rtnl.open();
    try {
      const a = r.addresses().find((x) => x.address === this.o.underlay);
      this.underlayMtu = (a && r.links().find((l) => l.index === a.index)?.mtu) || 1500;
    } finally {
      r.close();
    }
    return this.underlayMtu;
  }

  private overlayNet(n: NetworkObject): OverlayNetwork | undefined {
    if (!n.allocated) return undefined;
    return { id: n.id, vni: n.allocated.vni, subnet: n.allocated.subnet, gateway: n.allocated.gateway, ...(n.spec.mtu ? { mtu: n.spec.mtu } : {}), ...(n.spec.encrypted ? { encrypted: true } : {}) };
  }

  private ingressNetwork(): NetworkObject | undefined {
    return [...this.networks.values()].find((n) => n.spec.ingress && n.allocated);
  }

  /** One reconcile pass; returns the error messages (also logged). */
  pass(): string[] {
    if (this.closed || (!this.haveAssignments && !this.preparing.size)) return [];
    const t0 = performance.now();
    const errors: string[] = [];
    this.stats.passes++;
    let writes = 0;
    const local = new Map([...this.o.running(), ...this.preparing]);
    if (!this.readySeeded) {
      // tasks a restarted meshd adopts were serving already: no readiness wait (and no churn)
      this.readySeeded = true;
      for (const id of this.o.running().keys()) this.ready.add(id);
    }

    // 1. local attachments
    const attachments: LocalAttachment[] = [];
    const records = new Map<string, EndpointRecord[]>(); // what we publish, per network
    const publish = (net: string, r: EndpointRecord): void => void (records.get(net) ?? records.set(net, []).get(net)!).push(r);
    for (const [taskId, netns] of local) {
      const t = this.tasks.get(taskId);
      if (!t) continue;
      // a task being stopped keeps its interfaces until it exits, and is drained meanwhile
      const draining = t.desiredState !== 'running';
      const svc = this.services.get(t.serviceId);
      t.networks.forEach((e, i) => {
        const n = this.networks.get(e.network);
        const addr = e.addresses[0];
        if (!n?.allocated || !addr) return;
        attachments.push({ taskId, networkId: n.id, netns, ifname: `eth${i}`, cidr: `${addr}/${n.allocated.subnet.split('/')[1]}` });
        if (t.attachment) {
          // a standalone task: its name resolves to it (as a container name does on an attachable network)
          publish(n.id, { kind: 'task', task: taskId, service: taskId, serviceName: t.attachment.name, mode: 'dnsrr', slot: 0, node: this.o.nodeId, ip: addr, vtep: this.o.underlay, aliases: [] });
          return;
        }
        if (!svc) return;
        // a task of a service with published TCP ports joins load balancing once it accepts there
        if (!draining && this.readinessPort(svc) !== undefined && !this.ready.has(taskId)) return;
        const vip = svc.vips.find((v) => v.network === n.id)?.addr;
        publish(n.id, {
          kind: 'task', task: taskId, service: t.serviceId, serviceName: svc.name, mode: svc.mode,
          slot: t.slot || (t.nodeId ?? this.o.nodeId), node: this.o.nodeId, ip: addr, vtep: this.o.underlay,
          ...(vip ? { vip } : {}), aliases: svc.aliases[n.id] ?? [], ...(draining ? { draining: true } : {}),
        });
      });
    }
    const ingress = this.ingressNetwork();
    if (ingress?.allocated && this.ingressAddr) {
      if (!netnsExists(this.isbx)) {
        try {
          createNetns(this.isbx);
          const r = Rtnl.open(this.isbx);
          try {
            r.setLink(r.mustLink('lo').index, { up: true });
          } finally {
            r.close();
          }
          writes++;
        } catch (e) {
          errors.push(`ingress sandbox ${this.isbx}: ${(e as Error).message}`);
        }
      }
      attachments.push({ taskId: `isbx-${this.o.nodeId}`, networkId: ingress.id, netns: this.isbx, ifname: 'eth0', cidr: `${this.ingressAddr}/${ingress.allocated.subnet.split('/')[1]}` });
      publish(ingress.id, { kind: 'node', node: this.o.nodeId, hostname: this.o.hostname, ip: this.ingressAddr, vtep: this.o.underlay });
    }

    // 2. gossip: take part in exactly the networks we have attachments on; publish; read the peers
    const tables = this.o.tables();
    const seen = new Map<string, EndpointRecord[]>();
    const remotes: RemoteEndpoint[] = [];
    if (tables) {
      if (this.subscribed !== tables) {
        this.unsubscribe?.();
        this.subscribed = tables;
        this.tablesSince = Date.now();
        this.synced.clear();
        // a pass once the first syncs have had time to arrive (see the grace below)
        setTimeout(() => this.schedule(), SYNC_GRACE_MS + 10).unref();
        this.joined.clear();
        this.unsubscribe = tables.subscribe({ table: ENDPOINT_TABLE }, () => this.schedule());
      }
      const want = new Set(attachments.map((a) => a.networkId));
      for (const n of want) {
        if (!this.joined.has(n)) {
          tables.joinNetwork(n);
          this.joined.add(n);
        }
      }
      for (const n of want) {
        if (!this.synced.has(n) && tables.syncNetwork(n)) {
          this.synced.set(n, Date.now());
          setTimeout(() => this.schedule(), SYNC_SETTLE_MS + 10).unref();
        }
      }
      for (const n of [...this.joined]) {
        if (want.has(n)) continue;
        this.synced.delete(n);
        for (const e of tables.entries(n, ENDPOINT_TABLE)) if (e.owner === this.o.nodeId) tables.delete(n, ENDPOINT_TABLE, e.key);
        tables.leaveNetwork(n);
        this.joined.delete(n);
      }
      for (const n of want) {
        const mine = new Map((records.get(n) ?? []).map((r) => [endpointKey(r), r]));
        const list: EndpointRecord[] = [];
        for (const e of tables.entries(n, ENDPOINT_TABLE)) {
          if (e.owner === this.o.nodeId) {
            const w = mine.get(e.key);
            if (!w) tables.delete(n, ENDPOINT_TABLE, e.key); // a previous incarnation's, or a task gone
            else if (Buffer.compare(Buffer.from(e.value), Buffer.from(encodeEndpoint(w))) === 0) mine.delete(e.key);
            continue;
          }
          const r = decodeEndpoint(e.value);
          if (!r || this.downNodes.has(r.node)) continue;
          list.push(r);
          if (r.vtep !== this.o.underlay) remotes.push({ networkId: n, ip: r.ip, mac: macFromIp(r.ip), vtep: r.vtep });
        }
        for (const [k, r] of mine) {
          try {
            tables.put(n, ENDPOINT_TABLE, k, encodeEndpoint(r));
          } catch (e) {
            errors.push(`gossip: publish ${k} on ${n}: ${(e as Error).message}`);
          }
        }
        seen.set(n, [...list, ...(records.get(n) ?? [])]);
      }
      tables.gossip();
      this.o.pump?.();
    }

    // 3. the overlay: sandboxes, veths, FDB and neighbours. Right after (re)start the gossip tables
    //    are still filling: programming them now would remove remote entries only to add them back a
    //    moment later. So the overlay waits out a short grace (unless a task needs its interfaces
    //    now), and a restarted meshd with nothing changed writes nothing.
    const now = Date.now();
    const settled =
      tables !== undefined &&
      now - this.tablesSince >= SYNC_GRACE_MS &&
      // every network synced with a peer a moment ago, or nobody else known in it for a while
      [...this.joined].every((n) => {
        const at = this.synced.get(n);
        return at !== undefined ? now - at >= SYNC_SETTLE_MS : now - this.tablesSince >= SYNC_ALONE_MS;
      });
    if (!settled && !this.preparing.size) {
      // Look again soon: a peer to sync with may be known by then, or the alone-timeout over. (This
      // lasts at most SYNC_ALONE_MS after gossip starts; nothing else may schedule a pass meanwhile.)
      this.schedule(tables ? SYNC_SETTLE_MS : SYNC_GRACE_MS);
      this.finish(t0, writes, errors, seen);
      return errors;
    }
    const nets = [...this.networks.values()].map((n) => this.overlayNet(n)).filter((n): n is OverlayNetwork => n !== undefined);
    if (now < this.adoptUntil) {
      try {
        remotes.push(...this.kernelRemotes(nets, remotes));
      } catch (e) {
        errors.push(`overlay: reading existing entries: ${(e as Error).message}`);
      }
    }
    try {
      const desired = desiredState({ node: { underlayAddress: this.o.underlay, underlayMtu: this.mtu(), prefix: this.o.prefix }, networks: nets, attachments, remotes });
      // Task namespaces whose attachments did not change since a clean pass are not dumped again;
      // every 30 s a full pass re-reads everything to catch drift.
      const sig = new Map<string, string>();
      for (const a of attachments) sig.set(a.netns, `${sig.get(a.netns) ?? ''}|${a.networkId}/${a.ifname}/${a.cidr}`);
      const full = now - this.lastFullObserve > FULL_OBSERVE_MS;
      const trusted = new Set(full ? [] : [...sig].filter(([ns, s]) => this.applied.get(ns) === s).map(([ns]) => ns));
      const r = reconcile(desired, { prefix: this.o.prefix, trusted });
      if (full) this.lastFullObserve = now;
      writes += r.writes + r.netnsOps;
      this.applied = r.errors.length ? new Map() : sig;
      if (r.steps.length) {
        const counts = new Map<string, number>();
        for (const st of r.steps) counts.set(st.op, (counts.get(st.op) ?? 0) + 1);
        this.o.log(`overlay: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')} (${r.writes} writes, ${r.ms.toFixed(1)} ms)`);
      }
      for (const e of r.errors) errors.push(e.message);
    } catch (e) {
      errors.push(`overlay: ${(e as Error).message}`);
    }

    // 4. egress for every local task, and the ingress sandbox (published ports arrive that way)
    let addrs = new Map<string, string>();
    const isbxId = `isbx-${this.o.nodeId}`;
    try {
      const ids = [...local.keys()].filter((id) => this.tasks.has(id));
      const withIsbx = ingress?.allocated && this.ingressAddr && netnsExists(this.isbx);
      const nsOf = new Map(ids.map((id) => [id, local.get(id)!]));
      if (withIsbx) nsOf.set(isbxId, this.isbx);
      addrs = this.egressAddrs.assign([...nsOf.keys()]);
      const r = reconcileEgress(this.egressCfg, [...nsOf].map(([id, netns]) => ({ taskId: id, netns, addr: addrs.get(id)! })));
      writes += r.writes;
      if (r.writes) this.o.log(`egress: ${r.writes} writes for ${ids.length} tasks`);
      for (const e of r.errors) errors.push(`egress: ${e.message}`);
    } catch (e) {
      errors.push(`egress: ${(e as Error).message}`);
    }

    // 5. the ingress sandbox goes when the node has no ingress address (left, or ingress removed)
    if (!(ingress?.allocated && this.ingressAddr) && netnsExists(this.isbx)) {
      deleteNetns(this.isbx);
      writes++;
    }
    this.probe(ingress, seen);
    for (const [id] of local) {
      const t = this.tasks.get(id);
      const svc = t && this.services.get(t.serviceId);
      const port = svc && this.readinessPort(svc);
      const a = addrs.get(id);
      if (port !== undefined && a && !this.ready.has(id) && !this.probing.has(id)) this.waitReady(id, a, port);
    }
    for (const id of [...this.ready]) if (!local.has(id)) this.ready.delete(id);

    // 6. load balancing: VIPs in each sandbox here, the ingress routing mesh, host-mode ports
    if (this.o.mesh) {
      const sandboxes = new Map<string, string>();
      for (const a of attachments) {
        const n = this.networks.get(a.networkId);
        if (!n?.allocated || n.spec.ingress) continue;
        const sbx = sandboxName(this.o.prefix, n.allocated.vni);
        sandboxes.set(n.id, sbx);
      }
      const hostPorts: HostPort[] = [];
      for (const [id] of local) {
        const t = this.tasks.get(id);
        const addr = addrs.get(id);
        if (!t || !addr || t.desiredState !== 'running') continue;
        for (const p of this.services.get(t.serviceId)?.ports ?? []) if (p.mode === 'host') hostPorts.push({ proto: p.protocol, published: p.published, addr, target: p.target });
      }
      const isbxAddr = addrs.get(isbxId);
      void this.o.mesh
        .sync({
          sandboxes,
          seen,
          hostPorts,
          ...(ingress && this.ingressAddr && isbxAddr ? { ingress: { netId: ingress.id, netns: this.isbx, addr: this.ingressAddr, gatewayAddr: isbxAddr, services: this.published } } : {}),
        })
        .then((ok) => ok || this.schedule(RETRY_MS));
    }
    // A failed step is retried by the next pass, and passes no longer come with every heartbeat.
    if (errors.length) this.schedule(RETRY_MS);
    this.finish(t0, writes, errors, seen);
    return errors;
  }

  /** Remote endpoints the kernel already holds that gossip has not (yet) told us about. */
  private kernelRemotes(nets: readonly OverlayNetwork[], known: readonly RemoteEndpoint[]): RemoteEndpoint[] {
    const have = new Set(known.map((r) => `${r.networkId}/${r.ip}`));
    const byNs = new Map(nets.map((n) => [sandboxName(this.o.prefix, n.vni), n.id]));
    const host = Rtnl.open();
    const opened: Rtnl[] = [];
    try {
      const seen = observe({ prefix: this.o.prefix, host, taskNetns: [], open: (ns) => { const r = Rtnl.open(ns); opened.push(r); return r; } });
      const out: RemoteEndpoint[] = [];
      for (const [ns, st] of Object.entries(seen.state.netns)) {
        const netId = byNs.get(ns);
        if (!netId) continue;
        const vtepOf = new Map(Object.entries(st.fdb));
        for (const [ip, mac] of Object.entries(st.neigh)) {
          const vtep = vtepOf.get(mac);
          if (vtep && !have.has(`${netId}/${ip}`)) out.push({ networkId: netId, ip, mac, vtep });
        }
      }
      return out;
    } finally {
      for (const r of opened) r.close();
      host.close();
    }
  }

  /** The target port to check before a task takes traffic: its first published TCP port, if any. */
  private readinessPort(svc: ServiceInfo): number | undefined {
    return svc.ports?.find((p) => p.protocol === 'tcp')?.target;
  }

  /**
   * Connects to the task's port over its egress address until it accepts (at most READY_MAX_MS,
   * then it is let in anyway): a new or restarted replica gets no connections it would refuse.
   */
  private waitReady(id: string, addr: string, port: number): void {
    this.probing.add(id);
    const until = Date.now() + READY_MAX_MS;
    const attempt = (): void => {
      if (this.closed || !this.probing.has(id)) return;
      const s = net.connect({ host: addr, port, timeout: 500 });
      const done = (okay: boolean): void => {
        s.destroy();
        if (okay || Date.now() > until) {
          this.probing.delete(id);
          this.ready.add(id);
          this.schedule();
        } else setTimeout(attempt, 50).unref();
      };
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
      s.once('timeout', () => done(false));
    };
    attempt();
  }

  /** The networks a task resolves names on: its own, in order, without the ingress network. */
  private dnsNetworks(t: TaskObject): string[] {
    return t.networks.map((e) => e.network).filter((id) => this.networks.get(id)?.spec.ingress !== true);
  }

  publishedServices(): readonly PublishedService[] {
    return this.published;
  }

  ingressNetworkId(): string | undefined {
    return this.ingressNetwork()?.id;
  }

  private finish(t0: number, writes: number, errors: string[], seen: Map<string, EndpointRecord[]>): void {
    this.lastSeen = seen;
    for (const w of this.passWaiters.splice(0)) w();
    this.stats.lastWrites = writes;
    this.stats.writes += writes;
    this.stats.lastMs = performance.now() - t0;
    if (errors.length) {
      this.stats.errors += errors.length;
      this.stats.lastError = errors[0];
      this.o.log(`networking: ${errors.length} errors, first: ${errors[0]}`);
    }
    if (this.o.dns) {
      this.o.dns.sync(seen, this.networks);
      const local = new Map<string, { netns: string; networks: string[] }>();
      // every task still running here keeps its listener, also while it is being stopped
      for (const [id, netns] of this.o.running()) {
        const t = this.tasks.get(id);
        if (t) local.set(id, { netns, networks: this.dnsNetworks(t) });
      }
      for (const [id, netns] of this.preparing) {
        const t = this.tasks.get(id);
        if (t) local.set(id, { netns, networks: this.dnsNetworks(t) });
      }
      void this.o.dns.ensure(local);
    }
  }

  private probe(ingress: NetworkObject | undefined, seen: Map<string, EndpointRecord[]>): void {
    if (!ingress?.allocated || !this.ingressAddr || !netnsExists(this.isbx)) {
      this.prober?.close();
      this.prober = undefined;
      return;
    }
    const mtu = ingress.spec.mtu ?? this.mtu() - 50;
    if (!this.prober) {
      try {
        this.prober = new OverlayProber({ netns: this.isbx, source: this.ingressAddr, mtu });
      } catch (e) {
        this.o.log(`overlay health: cannot probe from ${this.isbx}: ${(e as Error).message}`);
        return;
      }
    }
    this.prober.setMtu(mtu);
    const peers = (seen.get(ingress.id) ?? []).filter((r) => r.kind === 'node' && r.node !== this.o.nodeId).map((r) => ({ node: r.kind === 'node' ? r.hostname : r.node, addr: r.ip }));
    this.prober.setPeers(peers);
  }

  /** meshd stops: leave the kernel as it is, for the next meshd to adopt. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.resync);
    this.unsubscribe?.();
    this.prober?.close();
    this.prober = undefined;
  }

  /** The node leaves the cluster: every sandbox, the ingress sandbox and the egress path go. */
  teardown(): void {
    this.close();
    try {
      reconcile(desiredState({ node: { underlayAddress: this.o.underlay, underlayMtu: 1500, prefix: this.o.prefix }, networks: [], attachments: [], remotes: [] }), { prefix: this.o.prefix });
    } catch (e) {
      this.o.log(`networking: teardown: ${(e as Error).message}`);
    }
    if (netnsExists(this.isbx)) deleteNetns(this.isbx);
    RoutingMesh.removeRules();
    try {
      removeEgress(this.egressCfg);
    } catch (e) {
      this.o.log(`networking: egress teardown: ${(e as Error).message}`);
    }
    fs.rmSync(path.join(this.o.stateDir, 'egress.json'), { force: true });
  }
}
