// Secure by default, with real meshd processes in the namespace lab: joins with a wrong secret, a
// wrong CA digest, an expired or a removed node's certificate are refused with a clear error and
// logged; a worker certificate cannot reach manager-only calls (nor Raft); rotating the worker token
// keeps the workers and refuses the old token; certificates renew while the cluster serves; an
// autolocked manager restarts locked and serves after unlock; nothing under a state directory holds
// a secret, a key (but the node's own, 0600) or a Raft entry in clear text.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { call, type Target } from '../../control/api/client.js';
import { nodeRunDir, nodeSocketPath, killNetnsProcesses, startNodeDaemon } from '../../control/lab/daemons.js';
import { clientOptions, MIN_TLS } from '../../control/ca/tls.js';
import { parseNodeCert } from '../../control/ca/pki.js';
import { RAFT_PREAMBLE } from '../../control/transport/raft-peers.js';
import { cli, WORKLOAD, type Res } from './services-helpers.js';

const tag = process.pid % 100000;
// 198.19.210-254: away from the other lab tests' 198.19.4x and 198.19.100-199
const third = (i: number): number => 210 + ((tag % 11) * 4 + i);

class Lab {
  constructor(
    readonly prefix: string,
    readonly base: string,
  ) {}
  ns(n: string): string {
    return `${this.prefix}-${n}`;
  }
  addr(n: string): string {
    return `${this.base}.${10 + Number(n.slice(1))}`;
  }
  on(n: string, ...args: string[]): Promise<Res> {
    return cli(['-H', `unix://${nodeSocketPath(this.ns(n))}`, ...args]);
  }
  log(n: string): string {
    return fs.readFileSync(path.join(nodeRunDir(this.ns(n)), 'meshd.log'), 'utf8');
  }
  stateDir(n: string): string {
    return path.join(nodeRunDir(this.ns(n)), 'state');
  }
  info(n: string): Promise<{ locked: boolean; certificate: { role: string; serial: string; notAfter: string } | null }> {
    return call({ socketPath: nodeSocketPath(this.ns(n)), display: n }, 'GET', '/v1/info');
  }
  /** A node's credentials as it keeps them (node.key unsealed: autolock off). */
  creds(n: string): { caCert: string; cert: string; key: string } {
    const dir = path.join(this.stateDir(n), 'certificates');
    const k = JSON.parse(fs.readFileSync(path.join(dir, 'node.key'), 'utf8')) as { secrets: { tlsKey: string } };
    return { caCert: fs.readFileSync(path.join(dir, 'root-ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'node.crt'), 'utf8'), key: k.secrets.tlsKey };
  }
  /** A 2377 target on node `to`, calling with `as`'s certificate (taken before it changes). */
  targetAs(c: { caCert: string; cert: string; key: string }, to: string): Target {
    const info = parseNodeCert(c.cert);
    return { host: this.addr(to), port: 2377, display: to, tls: clientOptions({ ...c, info }, { role: 'manager', display: to }) };
  }
  async waitFor(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await fn())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  async nodes(n = 'n1'): Promise<{ hostname: string; status: string }[]> {
    const r = await this.on(n, 'node', 'ls', '--format', 'json');
    if (r.code !== 0) throw new Error(`node ls on ${n}: ${r.stderr}`);
    return JSON.parse(r.stdout) as { hostname: string; status: string }[];
  }
}

async function up(t: Test, name: string, nodes: number, managers: number, i: number): Promise<Lab> {
  const lab = new Lab(`mt${tag}s${name}`, `198.19.${third(i)}`);
  t.teardown(async () => {
    await cli(['lab', 'down', '--prefix', lab.prefix]);
  });
  const r = await cli(['lab', 'up', '--prefix', lab.prefix, '--subnet', `${lab.base}.0/24`, '--nodes', String(nodes), '--managers', String(managers)]);
  if (r.code !== 0) throw new Error(`lab up: ${r.stderr}${r.stdout}`);
  return lab;
}

async function callErr(target: Target, method: string, p: string, body?: unknown): Promise<{ status: number; message: string }> {
  try {
    await call(target, method, p, body, 5000);
    return { status: 200, message: '' };
  } catch (e) {
    const ce = e as { status: number; message: string };
    return { status: ce.status, message: ce.message };
  }
}

t.test('joins with a wrong secret or CA are refused; a worker certificate cannot reach manager-only calls or Raft; token rotation; removed nodes', async (t) => {
  const lab = await up(t, 'a', 3, 1, 0);
  const n1 = `${lab.addr('n1')}:2377`;
  const tok = (await lab.on('n1', 'swarm', 'join-token', 'worker', '-q')).stdout.trim();
  t.match(tok, /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);

  // --- a worker's certificate against manager-only calls, and against Raft
  const w2 = lab.creds('n2');
  t.equal(parseNodeCert(w2.cert).role, 'worker');
  const asWorker = lab.targetAs(w2, 'n1');
  const upd = await callErr(asWorker, 'POST', '/v1/nodes/n1/update', { availability: 'drain' });
  t.equal(upd.status, 403, 'node update with a worker certificate: 403');
  t.match(upd.message, /is a worker: only managers may make this call/);
  const svc = await callErr(asWorker, 'POST', '/v1/services', { spec: {} });
  t.equal(svc.status, 403, 'service create with a worker certificate: 403');
  const jt = await callErr(asWorker, 'GET', '/v1/swarm/join-token/manager');
  t.equal(jt.status, 403, 'the join tokens are not served on 2377 at all');
  const anon: Target = { host: lab.addr('n1'), port: 2377, display: 'n1', tls: { ca: [w2.caCert], checkServerIdentity: () => undefined, minVersion: MIN_TLS } };
  const a = await callErr(anon, 'POST', '/v1/nodes/n1/update', {});
  t.equal(a.status, 401, 'no certificate: 401');
  t.match(a.message, /needs a node certificate/);
  // a plain-TCP client gets nowhere (TLS only)
  const plain = await callErr({ host: lab.addr('n1'), port: 2377, display: 'n1' }, 'GET', '/v1/ca/root');
  t.not(plain.status, 200);
  // Raft with a worker certificate: the stream is cut and the manager says why
  const raftRefused = await new Promise<boolean>((resolve) => {
    const s = tls.connect({ host: lab.addr('n1'), port: 2377, ...clientOptions({ ...w2, info: parseNodeCert(w2.cert) }, { role: 'manager', display: 'n1' }) });
    s.on('secureConnect', () => s.write(RAFT_PREAMBLE));
    s.on('close', () => resolve(true));
    s.on('error', () => undefined);
    setTimeout(() => resolve(false), 5000);
  });
  t.ok(raftRefused, 'the Raft stream from a worker is closed');
  await lab.waitFor('the refusal in the log', async () => /Raft stream refused: node \S+ is a worker/.test(lab.log('n1')), 3000);
  t.match(lab.log('n1'), /refused .*\/v1\/nodes\/n1\/update refused: node \S+ is a worker/, 'the 403 is logged');

  // --- joins: wrong secret, wrong CA digest
  t.equal((await lab.on('n3', 'swarm', 'leave')).code, 0);
  t.notOk(fs.existsSync(path.join(lab.stateDir('n3'), 'certificates')), 'leaving removes the certificates and keys');
  const forged = tok.replace(/-[0-9a-z]{25}$/, '-' + 'c'.repeat(25));
  const bad1 = await lab.on('n3', 'swarm', 'join', '--token', forged, n1);
  t.not(bad1.code, 0);
  t.match(bad1.stderr, /secret does not match/);
  t.match(lab.log('n1'), /join refused for n3 .*secret does not match/, 'the manager logs the refused join');
  const otherCa = tok.replace(/^SWMTKN-1-[0-9a-z]{50}/, 'SWMTKN-1-' + 'a'.repeat(50));
  const bad2 = await lab.on('n3', 'swarm', 'join', '--token', otherCa, n1);
  t.not(bad2.code, 0);
  t.match(bad2.stderr, new RegExp(`manager at tcp://${n1.replace(/\./g, '\\.')} presented a CA whose digest is [0-9a-z]{50}, but the token pins a{50}: check the token`));
  t.match(lab.log('n3'), /join via .* presented a CA whose digest/, 'the joining node logs it too');

  // --- token rotation: the old token is refused, existing workers stay, the new token works
  const rot = await lab.on('n1', 'swarm', 'join-token', 'worker', '--rotate', '-q');
  t.equal(rot.code, 0, rot.stderr);
  const old = await lab.on('n3', 'swarm', 'join', '--token', tok, n1);
  t.match(old.stderr, /secret does not match/, 'the old worker token is refused');
  await new Promise((r) => setTimeout(r, 3500)); // more than 3 heartbeats
  t.equal((await lab.nodes()).find((n) => n.hostname === 'n2')?.status, 'Ready', 'n2 (joined with the old token) is still Ready');
  const ok = await lab.on('n3', 'swarm', 'join', '--token', rot.stdout.trim(), n1);
  t.equal(ok.code, 0, ok.stderr);
  t.match(rot.stdout.trim(), /^SWMTKN-1-/);
  // the token is not kept anywhere on the node after joining
  for (const f of walk(lab.stateDir('n3'))) t.notOk(fs.readFileSync(f).includes(rot.stdout.trim().slice(-25)), `${path.relative(lab.stateDir('n3'), f)} does not hold the join token`);

  // --- node rm: a live node needs --force; then its certificate is refused at once
  const rmLive = await lab.on('n1', 'node', 'rm', 'n2');
  t.match(rmLive.stderr, /is up .*--force/);
  t.equal((await lab.on('n1', 'node', 'rm', '--force', 'n2')).code, 0);
  const after = await callErr(asWorker, 'POST', '/v1/dispatcher/session', { nodeId: parseNodeCert(w2.cert).nodeId, reports: [], waitMs: 0, knownVersion: '' });
  t.equal(after.status, 401, 'the removed node\'s certificate is refused');
  t.match(after.message, /was removed from the cluster at .*; its certificate is no longer accepted/);
  await lab.waitFor('the removed node to notice', async () => /session was refused: .*was removed from the cluster/.test(lab.log('n2')), 5000);
  t.match(lab.log('n1'), /security: refused .*was removed from the cluster/, 'the manager logs the refusal');
  t.notOk((await lab.nodes()).some((n) => n.hostname === 'n2'), 'n2 stays out (its heartbeats do not bring it back)');
});

t.test('certificates renew while the cluster serves; an expired certificate is refused', async (t) => {
  const lab = await up(t, 'b', 3, 1, 1);
  const c = await lab.on('n1', 'service', 'create', '--name', 'web', '--replicas', '3', '--command', `${WORKLOAD} http --port 80`);
  t.equal(c.code, 0, c.stderr);
  const tasks = async (): Promise<string[]> => {
    const r = await lab.on('n1', 'service', 'ps', 'web', '--format', 'json');
    if (r.code !== 0) return [];
    return (JSON.parse(r.stdout) as { id: string; state: string }[]).filter((x) => x.state === 'running').map((x) => x.id).sort();
  };
  await lab.waitFor('3 running tasks', async () => (await tasks()).length === 3, 20_000);
  const before = await tasks();
  const serials = new Map<string, Set<string>>();
  const note = async (): Promise<void> => {
    for (const n of ['n1', 'n2', 'n3']) {
      const i = await lab.info(n);
      if (!serials.has(n)) serials.set(n, new Set());
      if (i.certificate) serials.get(n)!.add(i.certificate.serial);
    }
  };
  await note();
  const set = await lab.on('n1', 'swarm', 'update', '--cert-expiry', '12s');
  t.equal(set.code, 0, set.stderr);
  // ~30 s: every node renews (the shorter expiry at once, then every 6-10 s) while writes and
  // heartbeats go on
  const t0 = Date.now();
  let writes = 0;
  let notReady = 0;
  while (Date.now() - t0 < 30_000) {
    const w = await lab.on('n1', 'node', 'update', '--label-add', `w=${writes}`, 'n2');
    t.equal(w.code, 0, `write ${writes} during renewals: ${w.stderr}`);
    writes++;
    const ns = await lab.nodes();
    notReady += ns.filter((n) => n.status !== 'Ready').length;
    await note();
    await new Promise((r) => setTimeout(r, 500));
  }
  t.equal(notReady, 0, 'no node was ever seen Down during renewals');
  for (const [n, s] of serials) t.ok(s.size >= 3, `${n} renewed its certificate ${s.size - 1} times`);
  t.same(await tasks(), before, 'the same 3 tasks kept running (agents kept their sessions)');
  t.match(lab.log('n3'), /certificate renewed \(the cluster's certificate expiry was shortened\)/);
  const i3 = await lab.info('n3');
  t.ok(Date.parse(i3.certificate!.notAfter) - Date.now() <= 13_000, 'the new certificates follow --cert-expiry');

  // --- an expired certificate: stop n3 past its certificate's end, start it again
  await lab.on('n1', 'swarm', 'update', '--cert-expiry', '10s');
  await new Promise((r) => setTimeout(r, 6000));
  const last = await lab.info('n3');
  await killNetnsProcesses(lab.ns('n3'));
  const wait = Date.parse(last.certificate!.notAfter) - Date.now() + 1500;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await startNodeDaemon(lab.ns('n3'), 'n3');
  await lab.waitFor('the expired certificate to be refused and logged', async () => /refused .*certificate of node \S+ \(swarm-worker\) was refused: it has expired/.test(lab.log('n1')), 10_000);
  await lab.waitFor('n3 to say why', async () => /this node's certificate expired at .*leave.* join again/.test(lab.log('n3')), 10_000);
  t.pass('the expired certificate is refused by the manager and both sides log it');
  await lab.waitFor('n3 to be marked Down', async () => (await lab.nodes()).find((n) => n.hostname === 'n3')?.status === 'Down', 10_000);
  t.pass('a node with an expired certificate is Down');
});

t.test('autolock: a restarted manager stays locked until unlocked; rotation; nothing secret in clear on disk', async (t) => {
  const lab = await up(t, 'c', 3, 2, 2);
  const MARK = `mtmarker${tag}xyz`;
  const f = path.join('/tmp', `${lab.prefix}-cfg.txt`);
  fs.writeFileSync(f, `${MARK}-config-data`);
  const cfg = await lab.on('n1', 'config', 'create', 'mtcfg', f);
  fs.rmSync(f);
  t.equal(cfg.code, 0, cfg.stderr);
  t.equal((await lab.on('n1', 'node', 'update', '--label-add', `secretlabel=${MARK}`, 'n3')).code, 0);
  const svc = await lab.on('n1', 'service', 'create', '--name', 'envsvc', '--replicas', '1', '--env', `TOKENISH=${MARK}`, '--command', `${WORKLOAD} http --port 80`);
  t.equal(svc.code, 0, svc.stderr);
  const lock = await lab.on('n1', 'swarm', 'update', '--autolock=true');
  t.equal(lock.code, 0, lock.stderr);
  const key = /SWMKEY-1-\S+/.exec(lock.stdout)?.[0];
  t.ok(key, 'an unlock key is shown');
  const shown = await lab.on('n2', 'swarm', 'unlock-key', '-q');
  t.equal(shown.stdout.trim(), key, 'every manager knows the current unlock key');
  await lab.waitFor('both managers to seal their keys', async () => ['n1', 'n2'].every((n) => /"locked":true/.test(fs.readFileSync(path.join(lab.stateDir(n), 'certificates', 'node.key'), 'utf8'))), 5000);
  const wt = (await lab.on('n1', 'swarm', 'join-token', 'worker', '-q')).stdout.trim();
  const mt = (await lab.on('n1', 'swarm', 'join-token', 'manager', '-q')).stdout.trim();

  // --- at rest: every file under every state directory
  const secrets: [string, string][] = [
    ['the config/label/env marker', MARK],
    ['the config data', Buffer.from(`${MARK}-config-data`).toString('base64').slice(0, 20)],
    ['the worker token secret', wt.slice(-25)],
    ['the manager token secret', mt.slice(-25)],
    ['the unlock key', key!.slice('SWMKEY-1-'.length)],
    ['a private key in PEM', 'PRIVATE KEY'],
    ['a Raft entry (store command JSON)', '"ops":'],
    ['a stored object', '"hostname":"n3"'],
  ];
  let files = 0;
  for (const n of ['n1', 'n2', 'n3']) {
    for (const f of walk(lab.stateDir(n))) {
      const rel = `${n}:${path.relative(lab.stateDir(n), f)}`;
      const body = fs.readFileSync(f);
      files++;
      if (rel.endsWith('certificates/node.key')) {
        t.equal((fs.statSync(f).mode & 0o777).toString(8), '600', `${rel} is 0600`);
        if (n !== 'n3') {
          t.notOk(body.includes('PRIVATE KEY'), `${rel}: sealed under autolock (manager)`);
          continue;
        }
        // a worker's own TLS key is the one key expected in clear (mode 0600, like Swarm's)
        t.ok(body.includes('PRIVATE KEY'), `${rel}: the worker's own key, 0600`);
        continue;
      }
      for (const [what, s] of secrets) {
        if (body.includes(s) || body.includes(Buffer.from(s).toString('base64'))) t.fail(`${rel} holds ${what} in clear`);
      }
    }
  }
  t.ok(files >= 10, `checked ${files} files`);
  t.ok(fs.statSync(path.join(lab.stateDir('n1'), 'raft', 'wal')).size > 1000, 'the WAL is not empty (it holds the encrypted entries)');

  // --- restart n1 locked
  await killNetnsProcesses(lab.ns('n1'));
  await startNodeDaemon(lab.ns('n1'), 'n1');
  t.equal((await lab.info('n1')).locked, true, 'n1 came back locked');
  const ls = await lab.on('n1', 'node', 'ls');
  t.not(ls.code, 0);
  t.match(ls.stderr, /this manager is locked .*meshctl swarm unlock/);
  // locked: it does not even answer TLS on 2377
  const probe = await callErr({ host: lab.addr('n1'), port: 2377, display: 'n1', tls: { rejectUnauthorized: false, minVersion: MIN_TLS } }, 'GET', '/v1/ca/root');
  t.not(probe.status, 200, 'a locked manager serves nothing on 2377');
  const wrong = await lab.on('n1', 'swarm', 'unlock', '--key', `SWMKEY-1-${Buffer.alloc(32, 7).toString('base64')}`);
  t.match(wrong.stderr, /invalid unlock key/);
  t.match(lab.log('n1'), /unlock refused: invalid unlock key/);
  const un = await lab.on('n1', 'swarm', 'unlock', '--key', key!);
  t.equal(un.code, 0, un.stderr);
  await lab.waitFor('n1 to serve again', async () => (await lab.on('n1', 'node', 'ls')).code === 0, 15_000);
  await lab.waitFor('every node Ready', async () => (await lab.nodes('n1')).every((n) => n.status === 'Ready'), 15_000);
  const labels = JSON.parse((await lab.on('n1', 'node', 'inspect', 'n3')).stdout) as { labels: Record<string, string> };
  t.equal(labels.labels.secretlabel, MARK, 'the data is back, decrypted with the unsealed data key');

  // --- rotate the unlock key: the old one no longer opens n2 after a restart, the new one does
  const rot = await lab.on('n1', 'swarm', 'unlock-key', '--rotate', '-q');
  t.equal(rot.code, 0, rot.stderr);
  const key2 = rot.stdout.trim();
  t.not(key2, key);
  await new Promise((r) => setTimeout(r, 1500)); // n2 re-seals when it applies the change
  await killNetnsProcesses(lab.ns('n2'));
  await startNodeDaemon(lab.ns('n2'), 'n2');
  t.match((await lab.on('n2', 'swarm', 'unlock', '--key', key!)).stderr, /invalid unlock key/, 'the old key is refused');
  t.equal((await lab.on('n2', 'swarm', 'unlock', '--key', key2)).code, 0, 'the new key opens it');
  await lab.waitFor('n2 to serve again', async () => (await lab.on('n2', 'node', 'ls')).code === 0, 15_000);
  // autolock off: the keys are unsealed again, restarts need no key
  t.equal((await lab.on('n1', 'swarm', 'update', '--autolock=false')).code, 0);
  await lab.waitFor('the managers to unseal', async () => ['n1', 'n2'].every((n) => /"locked":false/.test(fs.readFileSync(path.join(lab.stateDir(n), 'certificates', 'node.key'), 'utf8'))), 5000);
});

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
