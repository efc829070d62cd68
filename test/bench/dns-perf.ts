// `npm run bench -- dns-perf`: dnsperf (Debian's) from inside a task's network namespace against our
// embedded DNS and, in the same run, against Docker's (swarm mode, attachable overlay), for a VIP
// name, a 10-task dnsrr name and an NXDOMAIN name:
//  - queries per second with 32 queries outstanding (one dnsperf client),
//  - p99 latency at a fixed 5,000 q/s (from dnsperf -v per-query times),
//  - CPU time per query: the serving process's utime+stime delta (/proc/PID/stat) over the
//    throughput run, divided by the queries answered.
// Our server is a separate process (dns-perf-server.ts) serving 127.0.0.11 inside a throwaway
// namespace, its table filled through the public API. DNS_PERF_SECONDS sets each run's length (3 s).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetns, deleteNetns, Rtnl } from '../../dataplane/netlink/index.js';
import { netnsPath } from '../../native/index.js';
import { median, percentile, type Figure } from './figures.js';
import { NAMES } from './dns-perf-table.js';
import { startDockerSide, type DockerSide } from './dns-perf-docker.js';

const SECONDS = Number(process.env.DNS_PERF_SECONDS ?? 3);
// Every measurement alternates between the two sides, ROUNDS each (DNS_PERF_ROUNDS), and the median
// round is reported: on a shared 2-core machine one round can land on someone else's burst.
const ROUNDS = Number(process.env.DNS_PERF_ROUNDS ?? 3);
const LAT_ROUNDS = ROUNDS;
const LAT_SECONDS = SECONDS;
const OUTSTANDING = 32;
const FIXED_QPS = 5000;
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

interface Run {
  qps: number;
  completed: number;
  lost: number;
  rcodes: string;
  cpuUsPerQuery: number;
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 256 << 20, timeout: (SECONDS + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

function queryFile(name: string): string {
  const f = path.join(os.tmpdir(), `mtdnsperf-${process.pid}-${name}.txt`);
  fs.writeFileSync(f, `${name} A\n`);
  return f;
}

/** dnsperf at full speed with OUTSTANDING queries in flight; CPU of `pid` over the run. */
async function throughput(enter: string[], pid: number, name: string): Promise<Run> {
  const file = queryFile(name);
  const t0 = cpuTicks(pid);
  const out = await sh(enter[0]!, [...enter.slice(1), 'dnsperf', '-s', '127.0.0.11', '-d', file, '-c', '1', '-q', String(OUTSTANDING), '-l', String(SECONDS)]);
  const ticks = cpuTicks(pid) - t0;
  fs.rmSync(file, { force: true });
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const completed = num(/Queries completed:\s+(\d+)/);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    completed,
    lost: num(/Queries lost:\s+(\d+)/),
    rcodes: /Response codes:\s+(.*)/.exec(out)?.[1]?.trim() ?? '?',
    cpuUsPerQuery: (ticks * TICK_US) / completed,
  };
}

function combine(rs: Run[]): Run {
  const completed = rs.reduce((a, r) => a + r.completed, 0);
  return {
    qps: median(rs.map((r) => r.qps)),
    completed,
    lost: rs.reduce((a, r) => a + r.lost, 0),
    rcodes: [...new Set(rs.map((r) => r.rcodes.replace(/ \d+ \(/, ' ('))) ].join(', '),
    cpuUsPerQuery: rs.reduce((a, r) => a + r.cpuUsPerQuery * r.completed, 0) / completed,
  };
}

/** p99 (ms) at a fixed rate, from dnsperf's per-query report. */
async function latency(enter: string[], name: string): Promise<{ p50: number; p99: number; n: number }> {
  const file = queryFile(name);
  const out = await sh(enter[0]!, [...enter.slice(1), 'dnsperf', '-s', '127.0.0.11', '-d', file, '-c', '1', '-q', String(OUTSTANDING), '-Q', String(FIXED_QPS), '-l', String(LAT_SECONDS), '-v']);
  fs.rmSync(file, { force: true });
  const ms: number[] = [];
  for (const m of out.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) ms.push(Number(m[1]) * 1000);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), n: ms.length };
}

async function startOurs(): Promise<{ ns: string; child: ChildProcess; close(): Promise<void> }> {
  const ns = `mt${process.pid % 100000}dnsperf`;
  deleteNetns(ns);
  createNetns(ns);
  const r = Rtnl.open(ns);
  try {
    r.setLink(r.mustLink('lo').index, { up: true });
  } finally {
    r.close();
  }
  const script = fileURLToPath(new URL('./dns-perf-server.js', import.meta.url));
  const child = spawn(process.execPath, [script, netnsPath(ns)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    child.once('exit', (c) => fail(new Error(`dns-perf-server exited with ${c}`)));
    child.stdout!.once('data', () => ok());
  });
  return {
    ns, child,
    close: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      deleteNetns(ns);
    },
  };
}

export async function dnsPerfBench(): Promise<Figure[]> {
  if (process.getuid?.() !== 0) throw new Error('dns-perf needs root (namespaces, nsenter)');
  const log = (s: string): void => console.log(`  ${s}`);
  log(`load before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (2 cores shared: compare ratios, both sides run in the same minute)`);
  const ours = await startOurs();
  let theirs: DockerSide | string = 'not started';
  const figures: Figure[] = [];
  try {
    theirs = await startDockerSide(log);
    if (typeof theirs === 'string') log(`docker side skipped: ${theirs}`);
    const dk = typeof theirs === 'string' ? null : theirs;
    const oursEnter = ['ip', 'netns', 'exec', ours.ns];
    const dockerEnter = dk ? ['nsenter', '-n', '-t', String(dk.clientPid)] : [];
    for (const [label, name] of [['VIP', NAMES.vip], ['dnsrr 10 tasks', NAMES.rr], ['NXDOMAIN', NAMES.nx]] as const) {
      // Throughput alternates too (ROUNDS each); q/s is the median round, CPU per query over all.
      const os_: Run[] = [], ds: Run[] = [];
      let upCpu = 0;
      for (let i = 0; i < ROUNDS; i++) {
        os_.push(await throughput(oursEnter, ours.child.pid!, name));
        const up0 = dk?.upstreamCpuUs() ?? 0;
        if (dk) ds.push(await throughput(dockerEnter, dk.dockerdPid, name));
        upCpu += (dk?.upstreamCpuUs() ?? 0) - up0;
      }
      const o = combine(os_);
      const d = dk ? combine(ds) : null;
      const upUs = d ? upCpu / d.completed : 0;
      log(`${label}: q/s per round: meshd ${os_.map((r) => Math.round(r.qps)).join(' ')}${dk ? `; docker ${ds.map((r) => Math.round(r.qps)).join(' ')}` : ''}`);
      log(`${label}: meshd ${o.completed} answered, ${o.lost} lost, ${o.rcodes}` +
        (d ? `; docker ${d.completed} answered, ${d.lost} lost, ${d.rcodes}` : '') +
        (d && name === NAMES.nx ? ` (docker forwards it: its upstream used ${upUs.toFixed(1)} us CPU/query more, not counted)` : ''));
      const ors: Awaited<ReturnType<typeof latency>>[] = [], drs: typeof ors = [];
      for (let i = 0; i < LAT_ROUNDS; i++) {
        ors.push(await latency(oursEnter, name));
        if (dk) drs.push(await latency(dockerEnter, name));
      }
      const fmt = (rs: typeof ors): string => rs.map((r) => `${r.p50.toFixed(3)}/${r.p99.toFixed(2)}`).join(' ');
      log(`${label}: at ${FIXED_QPS} q/s, p50/p99 ms per round: meshd ${fmt(ors)}${dk ? `; docker ${fmt(drs)}` : ''}`);
      const ol = { p99: median(ors.map((r) => r.p99)) };
      const dl = dk ? { p99: median(drs.map((r) => r.p99)) } : null;
      const peer = (value: number | undefined) => (value === undefined ? {} : { peer: { name: 'docker', value } });
      figures.push(
        { name: `dns ${label}: q/s, ${OUTSTANDING} outstanding (median of ${ROUNDS})`, value: o.qps, unit: 'q/s', higherIsBetter: true, ...peer(d?.qps) },
        { name: `dns ${label}: p99 at ${FIXED_QPS} q/s (median of ${LAT_ROUNDS})`, value: ol.p99, unit: 'ms', ...peer(dl?.p99) },
        { name: `dns ${label}: CPU per query`, value: o.cpuUsPerQuery, unit: 'us', ...peer(d?.cpuUsPerQuery) },
      );
    }
  } finally {
    if (typeof theirs !== 'string') await theirs.close();
    await ours.close();
    log(`load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  }
  return figures;
}
