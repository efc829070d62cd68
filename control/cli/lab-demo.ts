// The second half of `meshctl lab demo`: an overlay network, the built-in HTTP workload with 6
// replicas published on 8080 in ingress mode, every node's port probed from the host side (outside
// the cluster) with which replica answered, and a DNS answer from inside a task.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, type Target } from '../api/client.js';
import { labRun } from '../lab/lab.js';
import { table } from './output.js';

const WORKLOAD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/workload.js');

function get(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', agent: false, timeout: 2000 }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => {
        try {
          resolve((JSON.parse(b) as { task: string }).task);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** Returns the number of problems found. */
export async function demoServices(n1: Target, nodes: { name: string; netns: string; address: string }[], log: (l: string) => void): Promise<number> {
  let bad = 0;
  log('\n== meshctl network create app');
  await call(n1, 'POST', '/v1/networks', { name: 'app' });
  log(`\n== meshctl service create --name web --replicas 6 --network app --publish 8080:80 --command "${WORKLOAD} http --port 80"`);
  await call(n1, 'POST', '/v1/services', { spec: { name: 'web', replicas: 6, task: { command: [WORKLOAD, 'http', '--port', '80'] }, networks: [{ target: 'app' }], endpoint: { ports: [{ published: 8080, target: 80 }] } } });
  const t0 = Date.now();
  let running = 0;
  while (Date.now() - t0 < 60_000) {
    const r = await call<{ tasks: { desiredState: string; state: string }[] }>(n1, 'GET', '/v1/services/web/tasks');
    running = r.tasks.filter((t) => t.desiredState === 'running' && t.state === 'running').length;
    if (running === 6) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  log(`   web: ${running}/6 running in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (running !== 6) bad++;

  log('\n== from the host side (outside the cluster): 12 requests to port 8080 of every node');
  const rows: string[][] = [];
  const all = new Set<string>();
  for (const n of nodes) {
    const seen = new Map<string, number>();
    for (let i = 0; i < 50 && !(await get(n.address, 8080)); i++) await new Promise((res) => setTimeout(res, 100)); // the mesh converging
    let failed = 0;
    for (let i = 0; i < 12; i++) {
      const who = await get(n.address, 8080);
      if (!who) failed++;
      else {
        seen.set(who, (seen.get(who) ?? 0) + 1);
        all.add(who);
      }
    }
    if (failed) bad++;
    rows.push([`${n.name} (${n.address}:8080)`, `${12 - failed}/12`, [...seen].sort().map(([w, c]) => `${w.split('.').pop()}x${c}`).join(' ')]);
  }
  log(table(['NODE', 'ANSWERED', 'REPLICA (slot) x REQUESTS'], rows));
  log(`   ${all.size} of 6 replicas answered`);

  const task = (await call<{ tasks: { id: string; node: string; state: string }[] }>(n1, 'GET', '/v1/services/web/tasks')).tasks.find((t) => t.state === 'running');
  const node = nodes.find((n) => n.name === task?.node);
  if (task && node) {
    const ns = `${node.netns}-t-${task.id.slice(0, 12)}`;
    log(`\n== DNS inside task web on ${node.name}: dig @127.0.0.11 web / tasks.web`);
    const vip = await labRun(ns, ['dig', '@127.0.0.11', '+short', 'web']);
    const tasks = await labRun(ns, ['dig', '@127.0.0.11', '+short', 'tasks.web']);
    log(`   web       -> ${vip.stdout.trim() || 'no answer'} (the service VIP)`);
    log(`   tasks.web -> ${tasks.stdout.trim().split('\n').join(' ') || 'no answer'}`);
    if (!vip.stdout.trim()) bad++;
  } else bad++;
  return bad;
}
