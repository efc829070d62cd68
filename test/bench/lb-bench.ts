// Load-balancer programming at scale: N services x M backends from empty (full sync), one backend
// changed at that size (incremental), and a restart with nothing to do (observe + plan, zero
// writes). nftables here, with `nft -f` of the same rules by hand as the peer (what the tool alone
// costs); IPVS inside the vm tier's VM (this kernel has none), with `ipvsadm-restore` of the same
// services as the peer. Sizes: LB_BENCH_SERVICES (10,000), LB_BENCH_BACKENDS (10),
// LB_BENCH_IPVS_SERVICES (1,000: the VM emulates its CPU, so it runs at a tenth of the size; the
// VM run may take LB_BENCH_VM_TIMEOUT_S, 600 s, or 1,200 s above 2,000 services).
// The one-backend figure is also taken over a series of changes (LB_BENCH_CHANGES, 50; the nft
// peer LB_BENCH_PEER_CHANGES, 10: each costs it a dump of the whole table), as p50 and p99.
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createNetns, deleteNetns } from '../../dataplane/netlink/index.js';
import { frontendKey, openBackend, plan, type ApplyResult, type BackendKind, type Frontend, type LbState } from '../../dataplane/lb/index.js';
import { renderBase, renderChanges, renderFull } from '../../dataplane/lb/nft/render.js';
import { median, msSince, percentile, type Figure } from './figures.js';

const NS = `mtlbbench${process.pid % 100000}`;

export function bigState(n: number, m: number): LbState {
  const s: LbState = { frontends: {} };
  for (let i = 0; i < n; i++) {
    const f: Frontend = { match: { addr: `10.20.${i >> 8}.${i & 255}`, proto: 'tcp', port: 80 }, targetPort: 8080, backends: {} };
    for (let j = 0; j < m; j++) {
      const k = i * m + j;
      f.backends[`10.${30 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`] = 1;
    }
    s.frontends[frontendKey(f.match)] = f;
  }
  return s;
}

const time = async (fn: () => Promise<unknown> | unknown): Promise<number> => {
  const t0 = process.hrtime.bigint();
  await fn();
  return msSince(t0);
};

function fresh(): void {
  deleteNetns(NS);
  createNetns(NS);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
}

export interface LbTimes {
  full: number;
  incremental: number;
  /** one backend removed, its tracked connections flushed (conntrack) */
  removal: number;
  flushMs: number;
  noop: number;
  observe: number;
  /** a series of one-backend changes (added, or its weight flipped 1 <-> 2), planned from known() */
  series: number[];
  /** of each, the kernel transaction alone, and its CPU time (unaffected by other load) */
  seriesCommit: number[];
  seriesCpu: number[];
}

/** The next state of the series: one backend of one frontend added, or its weight flipped. */
function oneBackendChanged(s: LbState, keys: string[], i: number): LbState {
  const key = keys[(i * 7919) % keys.length]!;
  const f = structuredClone(s.frontends[key]!);
  const extra = '10.250.0.1';
  f.backends[extra] = f.backends[extra] === undefined ? 1 : 3 - f.backends[extra]!;
  return { frontends: { ...s.frontends, [key]: f } };
}

/** Our path: a backend from scratch, then the incremental change and a restart with nothing to do. */
export async function measureOurs(kind: BackendKind, n: number, m: number, rounds: number): Promise<LbTimes[]> {
  const out: LbTimes[] = [];
  const s = bigState(n, m);
  for (let r = 0; r < rounds; r++) {
    fresh();
    const be = openBackend(kind, NS);
    const full = await time(async () => be.apply(plan(s, await be.observe())));
    const next = structuredClone(s);
    const key = Object.keys(next.frontends)[Math.floor(n / 2)]!;
    next.frontends[key]!.backends['10.250.0.1'] = 1;
    const changes = plan(next, await be.observe());
    // The incremental figures are apply alone: the daemon keeps its last state and does not re-read
    // the kernel for every gossip event (observe is measured on its own).
    const incremental = await time(() => be.apply(changes));
    // The series: what a gossip event costs the daemon (plan against the model, no dump), apply timed.
    const series: number[] = [];
    const seriesCommit: number[] = [];
    const seriesCpu: number[] = [];
    let cur = next;
    const keys = Object.keys(s.frontends);
    for (let i = 0; i < Number(process.env.LB_BENCH_CHANGES ?? 50); i++) {
      const to = oneBackendChanged(cur, keys, i + 1);
      const known = be.known();
      if (!known) throw new Error('the backend lost its model of the kernel');
      const c = plan(to, known);
      if (c.length !== 1) throw new Error(`one backend changed planned ${c.length} changes`);
      let r: ApplyResult | undefined;
      series.push(await time(async () => { r = await be.apply(c); }));
      seriesCommit.push(r?.commitMs ?? 0);
      seriesCpu.push(r?.commitCpuMs ?? 0);
      cur = to;
    }
    // The rest starts again from `next`, as the kernel holds `cur` now.
    await be.apply(plan(next, be.known()!));
    const ips = Object.keys(next.frontends[key]!.backends);
    delete next.frontends[key]!.backends[ips[0]!];
    const rmChanges = plan(next, await be.observe());
    let flushMs = 0;
    const removal = await time(async () => { flushMs = (await be.apply(rmChanges)).flushMs ?? 0; });
    be.close();
    const again = openBackend(kind, NS);
    let observe = 0;
    const noop = await time(async () => {
      const t0 = process.hrtime.bigint();
      const o = await again.observe();
      observe = msSince(t0);
      const c = plan(next, o);
      if (c.length) throw new Error(`restart planned ${c.length} changes`);
      await again.apply(c);
    });
    if (again.writes !== 0) throw new Error('restart wrote to the kernel');
    again.close();
    out.push({ full, incremental, removal, flushMs, noop, observe, series, seriesCommit, seriesCpu });
  }
  deleteNetns(NS);
  return out;
}

/** The peer for nftables: the same rules, rendered once, loaded by `nft -f` alone. */
interface PeerTimes { full: number; incremental: number; series: number[] }

function nftByHand(n: number, m: number, rounds: number): PeerTimes[] {
  const s = bigState(n, m);
  const script = [...renderBase(), ...renderFull(Object.values(s.frontends))].join('\n') + '\n';
  const out: PeerTimes[] = [];
  const keys = Object.keys(s.frontends);
  for (let r = 0; r < rounds; r++) {
    fresh();
    const t0 = process.hrtime.bigint();
    execFileSync('nsenter', [`--net=/run/netns/${NS}`, 'nft', '-f', '-'], { input: script });
    const full = msSince(t0);
    // The same one-backend changes as ours, in render.ts's text of them (the frontend's map
    // emptied and filled again), each loaded by its own `nft -f`.
    const load = (from: LbState, to: LbState): number => {
      const text = renderChanges(plan(to, from)).join('\n') + '\n';
      const t1 = process.hrtime.bigint();
      execFileSync('nsenter', [`--net=/run/netns/${NS}`, 'nft', '-f', '-'], { input: text });
      return msSince(t1);
    };
    const next = structuredClone(s);
    next.frontends[keys[Math.floor(n / 2)]!]!.backends['10.250.0.1'] = 1;
    const incremental = load(s, next);
    const series: number[] = [];
    let cur = next;
    for (let i = 0; i < Number(process.env.LB_BENCH_PEER_CHANGES ?? 10); i++) {
      const to = oneBackendChanged(cur, keys, i + 1);
      series.push(load(cur, to));
      cur = to;
    }
    out.push({ full, incremental, series });
  }
  deleteNetns(NS);
  return out;
}

/** The peer for IPVS: the same fwmark services and destinations through ipvsadm-restore. */
function ipvsadmRestore(n: number, m: number): number {
  const s = bigState(n, m);
  const lines: string[] = [];
  let i = 0;
  for (const f of Object.values(s.frontends)) {
    const mark = ((f.targetPort << 16) | ++i) >>> 0;
    lines.push(`-A -f ${mark} -s wrr`);
    for (const ip of Object.keys(f.backends)) lines.push(`-a -f ${mark} -r ${ip}:${f.targetPort} -m -w 1`);
  }
  fresh();
  const t0 = process.hrtime.bigint();
  execFileSync('ip', ['netns', 'exec', NS, 'ipvsadm-restore'], { input: lines.join('\n') + '\n' });
  const ms = msSince(t0);
  deleteNetns(NS);
  return ms;
}

function figures(kind: string, n: number, m: number, ours: LbTimes[], peer?: PeerTimes[], peerName = ''): Figure[] {
  const size = `${n.toLocaleString('en')} x ${m}`;
  const med = (k: Exclude<keyof LbTimes, 'series' | 'seriesCommit' | 'seriesCpu'>): number => median(ours.map((o) => o[k]));
  const f: Figure[] = [
    { name: `lb ${kind}: program ${size} from empty`, value: med('full'), unit: 'ms' },
    { name: `lb ${kind}: one backend added at ${size}`, value: med('incremental'), unit: 'ms' },
    { name: `lb ${kind}: one backend removed + conntrack flush`, value: med('removal'), unit: 'ms', note: `flush ${med('flushMs').toFixed(0)} ms` },
    { name: `lb ${kind}: restart, nothing to do (0 writes)`, value: med('noop'), unit: 'ms', note: `observe ${med('observe').toFixed(0)} ms` },
  ];
  if (peer?.length) {
    f[0]!.peer = { name: peerName, value: median(peer.map((p) => p.full)) };
    if (peer.some((p) => p.incremental > 0)) f[1]!.peer = { name: peerName, value: median(peer.map((p) => p.incremental)) };
  }
  const series = ours.flatMap((o) => o.series);
  if (series.length) {
    const commits = ours.flatMap((o) => o.seriesCommit);
    const cpu = ours.flatMap((o) => o.seriesCpu);
    const peerSeries = (peer ?? []).flatMap((p) => p.series);
    const note = `${series.length} changes over ${ours.length} rounds; kernel transaction p50 ${percentile(commits, 50).toFixed(1)} / p99 ${percentile(commits, 99).toFixed(1)} ms, its CPU time p50 ${percentile(cpu, 50).toFixed(1)} / p99 ${percentile(cpu, 99).toFixed(1)} ms; load average ${os.loadavg()[0]!.toFixed(1)}`;
    for (const p of [50, 99]) {
      const fig: Figure = { name: `lb ${kind}: one-backend change p${p} at ${size}`, value: percentile(series, p), unit: 'ms', note };
      if (peerSeries.length) fig.peer = { name: `${peerName} (${peerSeries.length} changes)`, value: percentile(peerSeries, p) };
      f.splice(2 + (p === 99 ? 1 : 0), 0, fig);
    }
  }
  return f;
}

export async function lbBench(): Promise<Figure[]> {
  const n = Number(process.env.LB_BENCH_SERVICES ?? 10_000);
  const m = Number(process.env.LB_BENCH_BACKENDS ?? 10);
  const rounds = Number(process.env.LB_BENCH_ROUNDS ?? 3);
  const out = figures('nftables', n, m, await measureOurs('nftables', n, m, rounds), nftByHand(n, m, rounds), 'nft -f by hand');
  // IPVS: inside the vm tier's VM when one can run here (never set up from a bench).
  const script = fileURLToPath(new URL('../../../test/vm/microvm.sh', import.meta.url));
  if (process.env.LB_BENCH_IPVS === '0') {
    out.push({ name: 'lb ipvs: skipped (LB_BENCH_IPVS=0)', value: 0, unit: '' });
  } else if (spawnSync('bash', [script, 'check']).status === 0) {
    const ni = Number(process.env.LB_BENCH_IPVS_SERVICES ?? 1000);
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync('bash', [script, 'run', '-t', String(Number(process.env.LB_BENCH_VM_TIMEOUT_S ?? (ni > 2000 ? 1200 : 600))), '-e', `LB_BENCH_IPVS_SERVICES=${ni}`, '-e', `LB_BENCH_BACKENDS=${m}`, '--', `node ${self} --ipvs-in-vm`], { encoding: 'utf8', env: { ...process.env, MESH_VM_QUIET: '1' } });
    const line = r.stdout.split('\n').find((l) => l.startsWith('FIGURES '));
    if (line) out.push(...(JSON.parse(line.slice(8)) as Figure[]).map((f) => ({ ...f, note: `${f.note ? `${f.note}; ` : ''}in the VM (emulated CPU)` })));
    else out.push({ name: 'lb ipvs: VM run failed', value: r.status ?? 1, unit: 'exit', note: r.stdout.slice(-300) });
  } else {
    out.push({ name: 'lb ipvs: skipped (no VM: test/vm/microvm.sh setup)', value: 0, unit: '' });
  }
  return out;
}

// Inside the VM: IPVS figures, printed as one JSON line for the host.
if (process.argv.includes('--ipvs-in-vm')) {
  const n = Number(process.env.LB_BENCH_IPVS_SERVICES ?? 1000);
  const m = Number(process.env.LB_BENCH_BACKENDS ?? 10);
  const ours = await measureOurs('ipvs', n, m, 2);
  const peer = [{ full: ipvsadmRestore(n, m), incremental: 0, series: [] }];
  console.log(`FIGURES ${JSON.stringify(figures('ipvs', n, m, ours, peer, 'ipvsadm-restore'))}`);
}
