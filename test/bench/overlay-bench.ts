// Overlay benchmarks on a 2-node namespace lab with real meshd:
//   1. propagation: a task starts on n1 (its namespace appears) until n2's kernel holds its FDB and
//      neighbour entries; one task at a time, 100 tasks, p50/p99;
//   2. a TCP stream task-to-task across VXLAN vs the same stream node-to-node on the bare underlay,
//      same run (ratio: the overlay's share of the underlay's throughput).
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeSocketPath } from '../../control/lab/daemons.js';
import { Rtnl } from '../../dataplane/netlink/index.js';
import { median, percentile, type Figure } from './figures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const meshctl = path.join(root, 'bin/meshctl.js');
const workload = path.join(root, 'bin/workload.js');
const prefix = `mt${process.pid % 100000}b`;
const base = `198.19.${140 + (process.pid % 20)}`;

function cli(args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [meshctl, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => (err ? reject(new Error(`meshctl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}
const on = (n: string, ...args: string[]): Promise<string> => cli(['-H', `unix://${nodeSocketPath(`${prefix}-${n}`)}`, ...args]);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// A TCP sink and a source, as small node programs run inside namespaces.
const SINK = `const s=require('net').createServer(c=>{let n=0;c.on('data',d=>n+=d.length);c.on('end',()=>{console.log(n);s.close()})});s.listen(5201,'0.0.0.0',()=>console.log('ready'))`;
const SOURCE = (ip: string, ms: number): string =>
  `const c=require('net').connect(5201,'${ip}',()=>{const b=Buffer.alloc(1<<16);const end=Date.now()+${ms};const w=()=>{while(Date.now()<end){if(!c.write(b))return c.once('drain',w)}c.end()};w()})`;

async function stream(serverNs: string, clientNs: string, ip: string, ms = 3000): Promise<number> {
  const sink = spawn('ip', ['netns', 'exec', serverNs, process.execPath, '-e', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  sink.stdout.on('data', (d: Buffer) => (out += d.toString()));
  while (!out.includes('ready')) await sleep(10);
  const t0 = Date.now();
  execFileSync('ip', ['netns', 'exec', clientNs, process.execPath, '-e', SOURCE(ip, ms)], { stdio: 'inherit' });
  await new Promise((r) => sink.on('exit', r));
  const bytes = Number(out.split('\n').filter(Boolean).pop());
  return (bytes * 8) / ((Date.now() - t0) / 1000) / 1e9; // Gbit/s
}

function taskNs(node: string): string[] {
  return fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-${node}-t-`));
}

export async function overlayBench(): Promise<Figure[]> {
  const figures: Figure[] = [];
  await cli(['lab', 'down', '--prefix', prefix]).catch(() => undefined);
  await cli(['lab', 'up', '--prefix', prefix, '--subnet', `${base}.0/24`, '--nodes', '2', '--managers', '1']);
  try {
    await on('n1', 'network', 'create', 'bench');
    const vni = (JSON.parse(await on('n1', 'network', 'inspect', 'bench')) as { allocated: { vni: number } }[])[0]!.allocated.vni;
    const cmd = `${workload} http --port 80`;
    // n2 needs a task on the network to have a sandbox for it at all
    await on('n1', 'service', 'create', '--name', 'anchor', '--network', 'bench', '--constraint', 'node.hostname==n2', '--command', cmd);
    await on('n1', 'service', 'create', '--name', 'p', '--replicas', '0', '--network', 'bench', '--constraint', 'node.hostname==n1', '--command', cmd);
    const sbx = Rtnl.open(`${prefix}-n2-ov-${vni}`);
    const lat: number[] = [];
    try {
      for (let k = 1; k <= 100; k++) {
        const before = new Set(taskNs('n1'));
        const known = new Set(sbx.neighbors().map((n) => n.ip));
        void on('n1', 'service', 'scale', `p=${k}`, '--detach');
        let t0 = 0;
        const deadline = Date.now() + 20_000;
        // t0: the task's namespace appears on n1 (its start); t1: n2's kernel has both entries
        for (;;) {
          if (Date.now() > deadline) throw new Error(`task ${k}: no FDB/neighbour entry on n2 within 20 s`);
          if (!t0) {
            const fresh = taskNs('n1').find((n) => !before.has(n));
            if (fresh) t0 = performance.now();
          }
          const added = sbx.neighbors().filter((n) => !known.has(n.ip) && n.permanent);
          if (t0 && added.length) {
            const mac = added[0]!.mac;
            if (sbx.fdb().some((f) => f.mac === mac && f.dst)) {
              lat.push(performance.now() - t0);
              break;
            }
          }
          await sleep(1);
        }
      }
    } finally {
      sbx.close();
    }
    figures.push({ name: 'overlay: task start -> FDB+neigh on peer p50', value: median(lat), unit: 'ms', note: `${lat.length} tasks, one at a time` });
    figures.push({ name: 'overlay: task start -> FDB+neigh on peer p99', value: percentile(lat, 99), unit: 'ms' });

    // Throughput: an n1 task to the n2 anchor task across VXLAN, vs n1 to n2 on the underlay.
    const info = JSON.parse(await on('n1', 'network', 'inspect', 'bench')) as { tasks: { task: string; service: string; addresses: string[] }[] }[];
    const anchor = info[0]!.tasks.find((x) => x.service === 'anchor')!;
    const src = info[0]!.tasks.find((x) => x.service === 'p')!;
    const anchorNs = `${prefix}-n2-t-${anchor.task.slice(0, 12)}`;
    const srcNs = `${prefix}-n1-t-${src.task.slice(0, 12)}`;
    const ov: number[] = [];
    const ul: number[] = [];
    for (let i = 0; i < 3; i++) {
      ov.push(await stream(anchorNs, srcNs, anchor.addresses[0]!));
      ul.push(await stream(`${prefix}-n2`, `${prefix}-n1`, `${base}.12`));
    }
    figures.push({ name: 'overlay: TCP stream task-to-task over VXLAN', value: median(ov), unit: 'Gbit/s', higherIsBetter: true, peer: { name: 'bare underlay', value: median(ul) }, note: 'median of 3 x 3 s, one stream' });
  } finally {
    await cli(['lab', 'down', '--prefix', prefix]).catch(() => undefined);
  }
  return figures;
}
