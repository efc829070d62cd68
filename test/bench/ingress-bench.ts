// HTTP through a published ingress port vs straight to a task, same run: a 2-node lab, one replica on
// n2, the load generator in n1's namespace (a client of the node) with 32 keep-alive connections.
// Through the mesh: n1's own address, published port -> n1's ingress sandbox -> VXLAN -> the task.
// Direct: the task's overlay address from a task on n1 (same VXLAN hop, no load balancer).
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeSocketPath } from '../../control/lab/daemons.js';
import type { Figure } from './figures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const meshctl = path.join(root, 'bin/meshctl.js');
const workload = path.join(root, 'bin/workload.js');
const prefix = `mt${process.pid % 100000}i`;
const base = `198.19.${160 + (process.pid % 10)}`;

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [meshctl, ...args], { timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`meshctl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}
const on = (n: string, ...args: string[]): Promise<string> => cli(['-H', `unix://${nodeSocketPath(`${prefix}-${n}`)}`, ...args]);

// A small closed-loop load generator: C keep-alive connections, each sending the next request as soon
// as the previous answer arrived, for D ms; prints requests/s and the p99 latency in ms.
const LOAD = (url: string, conns: number, ms: number): string => `
const http=require('http');const agent=new http.Agent({keepAlive:true,maxSockets:${conns}});
const lat=[];let n=0,err=0;const end=Date.now()+${ms};
function one(){if(Date.now()>end)return Promise.resolve();const t=process.hrtime.bigint();
return new Promise(r=>{http.get('${url}',{agent},res=>{res.resume();res.on('end',()=>{lat.push(Number(process.hrtime.bigint()-t)/1e6);n++;r()})}).on('error',()=>{err++;r()})}).then(one)}
const t0=Date.now();Promise.all(Array.from({length:${conns}},one)).then(()=>{lat.sort((a,b)=>a-b);
console.log(JSON.stringify({rps:n/((Date.now()-t0)/1000),p99:lat[Math.floor(lat.length*0.99)]||0,err}));process.exit(0)})`;

function load(netns: string, url: string): { rps: number; p99: number; err: number } {
  const r = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', LOAD(url, 32, 4000)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`load generator: ${r.stderr}`);
  return JSON.parse(r.stdout) as { rps: number; p99: number; err: number };
}

export async function ingressBench(): Promise<Figure[]> {
  await cli(['lab', 'down', '--prefix', prefix]).catch(() => undefined);
  await cli(['lab', 'up', '--prefix', prefix, '--subnet', `${base}.0/24`, '--nodes', '2', '--managers', '1']);
  try {
    await on('n1', 'network', 'create', 'bench');
    await on('n1', 'service', 'create', '--name', 'web', '--network', 'bench', '--constraint', 'node.hostname==n2', '--publish', '8080:80', '--command', `${workload} http --port 80`);
    await on('n1', 'service', 'create', '--name', 'client', '--network', 'bench', '--constraint', 'node.hostname==n1', '--command', '/bin/sleep 100000');
    const info = JSON.parse(await on('n1', 'network', 'inspect', 'bench')) as { tasks: { task: string; service: string; addresses: string[] }[] }[];
    const web = info[0]!.tasks.find((x) => x.service === 'web')!;
    const client = info[0]!.tasks.find((x) => x.service === 'client')!;
    const clientNs = `${prefix}-n1-t-${client.task.slice(0, 12)}`;
    const mesh = `http://${base}.11:8080/`;
    const direct = `http://${web.addresses[0]}:80/`;
    for (let i = 0; i < 50; i++) if (load(`${prefix}-n1`, mesh).rps > 0) break; // until the mesh answers
    const m: { rps: number; p99: number }[] = [];
    const d: { rps: number; p99: number }[] = [];
    for (let i = 0; i < 3; i++) {
      m.push(load(`${prefix}-n1`, mesh));
      d.push(load(clientNs, direct));
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return [
      { name: 'ingress: HTTP req/s through a published port', value: med(m.map((x) => x.rps)), unit: 'req/s', higherIsBetter: true, peer: { name: 'straight to the task', value: med(d.map((x) => x.rps)) }, note: '32 keep-alive conns, median of 3 x 4 s' },
      { name: 'ingress: HTTP p99 through a published port', value: med(m.map((x) => x.p99)), unit: 'ms', peer: { name: 'straight to the task', value: med(d.map((x) => x.p99)) } },
    ];
  } finally {
    await cli(['lab', 'down', '--prefix', prefix]).catch(() => undefined);
  }
}
