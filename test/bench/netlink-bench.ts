// Our netlink layer against iproute2's batch mode (`ip -batch`, `bridge -batch`), same work, same
// run: 1,000 veth pairs created and removed; 10,000 FDB + 10,000 permanent neighbour entries.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rtnl, createNetns, deleteNetns, type Change } from '../../dataplane/netlink/index.js';
import { median, msSince, type Figure } from './figures.js';

const NS = `mtbench${process.pid % 100000}`;
const ROUNDS = 5;
const SLOW_ROUNDS = 1; // per-link deletion of 1,000 veths takes ~17 s each way

// Deleting a namespace finishes asynchronously in the kernel (cleanup_net): let it settle before
// timing, so neither tool pays for the previous round's teardown.
async function freshNetns(): Promise<Rtnl> {
  deleteNetns(NS);
  createNetns(NS);
  await new Promise((r) => setTimeout(r, 300));
  return Rtnl.open(NS);
}

function ipBatch(tool: 'ip' | 'bridge', lines: string[]): number {
  const file = path.join(os.tmpdir(), `meshd-bench-${process.pid}.batch`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const t0 = process.hrtime.bigint();
  execFileSync(tool, ['-n', NS, '-batch', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  const ms = msSince(t0);
  fs.rmSync(file);
  return ms;
}

const GROUP = 4242;

interface VethTimes {
  create: number;
  remove: number;
}

/** Creates 1,000 pairs, then removes them by group (one kernel batch) or one by one. */
async function vethRound(useOurs: boolean, n: number, byGroup: boolean): Promise<VethTimes> {
  const r = await freshNetns();
  try {
    let create: number;
    let remove: number;
    if (useOurs) {
      let t0 = process.hrtime.bigint();
      const add: Change[] = [];
      for (let i = 0; i < n; i++) add.push({ op: 'add-veth', spec: { name: `va${i}`, peerName: `vb${i}`, group: GROUP } });
      const e1 = r.apply(add).errors;
      create = msSince(t0);
      t0 = process.hrtime.bigint();
      let e2;
      if (byGroup) {
        e2 = r.apply([{ op: 'del-group', group: GROUP }]).errors;
      } else {
        const del: Change[] = [];
        for (let i = 0; i < n; i++) del.push({ op: 'del-link', name: `va${i}` });
        e2 = r.apply(del).errors;
      }
      remove = msSince(t0);
      if (e1.length || e2.length) throw new Error(`veth bench: ${e1.length + e2.length} failures, first: ${(e1[0] ?? e2[0])!.message}`);
    } else {
      const lines: string[] = [];
      for (let i = 0; i < n; i++) lines.push(`link add va${i} group ${GROUP} type veth peer name vb${i}`);
      create = ipBatch('ip', lines);
      remove = byGroup ? ipBatch('ip', [`link del group ${GROUP}`]) : ipBatch('ip', Array.from({ length: n }, (_, i) => `link del va${i}`));
    }
    const left = r.links().filter((l) => l.name !== 'lo').length;
    if (left !== 0) throw new Error(`veth bench (${useOurs ? 'meshd' : 'iproute2'}): ${left} links left after removal`);
    return { create, remove };
  } finally {
    r.close();
  }
}

function mac(i: number): string {
  return `02:42:${[(i >> 16) & 255, (i >> 8) & 255, i & 255, 1].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}
const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 0}`;
const vtep = (i: number): string => `198.18.1.${(i % 250) + 2}`;

async function fdbRound(useOurs: boolean, n: number): Promise<number> {
  const r = await freshNetns();
  try {
    r.createBridge('br0');
    r.createVxlan({ name: 'vx0', vni: 4096, local: '198.18.1.1' });
    const br = r.mustLink('br0');
    const vx = r.mustLink('vx0');
    r.setLink(vx.index, { master: br.index, up: true });
    r.setLink(br.index, { up: true });
    let ms: number;
    if (useOurs) {
      const t0 = process.hrtime.bigint();
      const changes: Change[] = [];
      for (let i = 1; i <= n; i++) changes.push({ op: 'add-fdb', entry: { index: vx.index, mac: mac(i), dst: vtep(i) } });
      for (let i = 1; i <= n; i++) changes.push({ op: 'add-neigh', entry: { index: br.index, ip: ip(i), mac: mac(i) } });
      const res = r.apply(changes);
      ms = msSince(t0);
      if (res.errors.length) throw new Error(`fdb bench: ${res.errors.length} failures, first: ${res.errors[0]!.message}`);
    } else {
      const fdb: string[] = [];
      const neigh: string[] = [];
      for (let i = 1; i <= n; i++) fdb.push(`fdb replace ${mac(i)} dev vx0 dst ${vtep(i)} self permanent`);
      for (let i = 1; i <= n; i++) neigh.push(`neigh replace ${ip(i)} lladdr ${mac(i)} dev br0 nud permanent`);
      ms = ipBatch('bridge', fdb) + ipBatch('ip', neigh);
    }
    // Both must have produced the same kernel state.
    const fdbCount = r.fdb(vx.index).filter((f) => f.dst).length;
    const neighCount = r.neighbors(2, br.index).length;
    if (fdbCount !== n || neighCount !== n) throw new Error(`fdb bench (${useOurs ? 'meshd' : 'iproute2'}): kernel holds ${fdbCount} fdb / ${neighCount} neigh entries, wanted ${n} each`);
    return ms;
  } finally {
    r.close();
  }
}

export async function netlinkBench(): Promise<Figure[]> {
  try {
    const figures: Figure[] = [];
    const ours: VethTimes[] = [];
    const theirs: VethTimes[] = [];
    // ABBA order: each tool goes first in half of the rounds.
    for (let i = 0; i < ROUNDS * 2; i++) {
      if ((i & 1) === (i >> 1 & 1)) theirs.push(await vethRound(false, 1000, true));
      else ours.push(await vethRound(true, 1000, true));
    }
    const oursSlow: number[] = [];
    const theirsSlow: number[] = [];
    for (let i = 0; i < SLOW_ROUNDS; i++) {
      theirsSlow.push((await vethRound(false, 1000, false)).remove);
      oursSlow.push((await vethRound(true, 1000, false)).remove);
    }
    const oc = median(ours.map((x) => x.create));
    const tc = median(theirs.map((x) => x.create));
    const og = median(ours.map((x) => x.remove));
    const tg = median(theirs.map((x) => x.remove));
    figures.push({ name: 'netlink: 1,000 veth pairs create+remove', value: oc + og, unit: 'ms', peer: { name: 'ip -batch', value: tc + tg }, note: 'removal by link group in both' });
    figures.push({ name: '  create 1,000 veth pairs', value: oc, unit: 'ms', peer: { name: 'ip -batch', value: tc } });
    figures.push({ name: '  remove them by link group', value: og, unit: 'ms', peer: { name: 'ip link del group', value: tg } });
    figures.push({ name: '  remove them one by one', value: median(oursSlow), unit: 'ms', peer: { name: 'ip -batch', value: median(theirsSlow) }, note: 'kernel waits an RCU grace period per device' });
    const fOurs: number[] = [];
    const fIp: number[] = [];
    for (let i = 0; i < ROUNDS * 2; i++) {
      if ((i & 1) === (i >> 1 & 1)) fIp.push(await fdbRound(false, 10_000));
      else fOurs.push(await fdbRound(true, 10_000));
    }
    figures.push({ name: 'netlink: 10,000 FDB + 10,000 neighbour entries', value: median(fOurs), unit: 'ms', peer: { name: 'bridge/ip -batch', value: median(fIp) } });
    return figures;
  } finally {
    deleteNetns(NS);
  }
}
