#!/usr/bin/env node
// The README's test command (`npm test`): builds, then runs every tier with tap and prints one
// closing line "N passed, N failed, N skipped". Tiers: unit (pure), kernel (real netlink objects in
// throwaway namespaces), docker (the docker task runtime against a real dockerd), lab (several meshd in namespaces), vm (qemu guests with Debian's stock kernel:
// every dist/test/vm/**/*.test.js; test/vm/microvm.sh for IPVS, test/vm/cluster for a 3-VM cluster
// provisioned by the Vagrant scripts). Usage: node test/run.js [tier...]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALL = ['unit', 'kernel', 'docker', 'lab', 'vm'];
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
for (const t of tiers) if (!ALL.includes(t)) { console.error(`unknown tier "${t}" (tiers: ${ALL.join(', ')})`); process.exit(2); }

// Per-tier limits: tap kills a test file that runs longer than this (seconds).
const settings = { unit: { jobs: 2, timeout: 300 }, kernel: { jobs: 2, timeout: 120 }, docker: { jobs: 1, timeout: 300 }, lab: { jobs: 1, timeout: 600 }, vm: { jobs: 1, timeout: 900 } };

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: opts.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8', env: { ...process.env, ...opts.env } });
  if (r.error) throw r.error;
  return r;
}

if (!process.env.MESH_SKIP_BUILD) {
  const b = run('npm', ['run', '--silent', 'build']);
  if (b.status !== 0) { console.error('build failed'); console.log('0 passed, 1 failed'); process.exit(1); }
}

const needsRoot = tiers.filter((t) => t !== 'unit');
if (needsRoot.length && process.getuid?.() !== 0) {
  console.error(`tiers ${needsRoot.join(', ')} create kernel objects and need root: run as root (sudo npm test)`);
  process.exit(2);
}

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.name.endsWith('.test.js')) out.push(path.relative(root, p));
  }
  return out.sort();
}

// Test namespaces and links all start with "mt"; anything left after a tier is a leak.
function leftovers() {
  let ns = [];
  try { ns = fs.readdirSync('/run/netns').filter((n) => /^mt/.test(n)); } catch {}
  const links = fs.existsSync('/sys/class/net') ? fs.readdirSync('/sys/class/net').filter((n) => /^mt/.test(n)) : [];
  return [...ns.map((n) => `netns ${n}`), ...links.map((l) => `link ${l}`)];
}

// A run killed midway (a CI job at its limit, a session cut off) leaves its mt* objects behind. Sweep
// them when no other test run is alive, so they never count as this run's leaks; when another run is
// alive, leave its objects alone and count only what appears during this run.
let preexisting = new Set();
if (needsRoot.length) {
  const { otherTestRuns, sweepTestObjects } = await import('../dist/test/helpers/sweep.js');
  const others = otherTestRuns();
  if (others.length) {
    preexisting = new Set(leftovers());
    console.log(`another test run is alive (pids ${others.join(', ')}): its ${preexisting.size} mt* objects are left alone`);
  } else {
    const r = await sweepTestObjects((n) => /^mt/.test(n));
    const swept = [...r.labs.map((p) => `lab ${p}`), ...r.netns.map((n) => `netns ${n}`), ...r.links.map((l) => `link ${l}`)];
    if (swept.length) console.log(`swept what an earlier, killed test run left behind: ${swept.join(', ')}`);
  }
}

let pass = 0, fail = 0, skip = 0;
const started = Date.now();
for (const tier of tiers) {
  const files = findTests(path.join(root, 'dist', 'test', tier));
  if (!files.length) { console.log(`\n== ${tier}: no tests`); continue; }
  console.log(`\n== ${tier}: ${files.length} files`);
  const t0 = Date.now();
  const s = settings[tier];
  const r = run(path.join(root, 'node_modules', '.bin', 'tap'), ['--disable-coverage', '--allow-empty-coverage', '-R', 'tap', '--jobs', String(s.jobs), '--timeout', String(s.timeout), ...files], { capture: true });
  const out = r.stdout ?? '';
  // Keep the log short: failures in full, passes as one line per file.
  for (const line of out.split('\n')) {
    if (/^\s*# durations: /.test(line)) { console.log(line.trim()); continue; } // a tier's own timings (vm)
    if (/^(not ok|ok) \d+ - /.test(line) || /^\s+not ok/.test(line) || /^\s+(---|\.\.\.|\w+:|  )/.test(line) && /not ok|error|found|wanted|stack|at:|message/i.test(line)) console.log(line);
  }
  const summary = out.match(/# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, skip: (\d+))?/);
  let tp = 0, tf = 0, ts = 0;
  if (summary) { tp = Number(summary[2] ?? 0); tf = Number(summary[3] ?? 0); ts = Number(summary[4] ?? 0); }
  if (r.status !== 0 && tf === 0) tf = 1; // tap itself failed (timeout, crash)
  const leaks = tier === 'unit' ? [] : leftovers().filter((l) => !preexisting.has(l));
  if (leaks.length) { console.log(`not ok - ${tier} tier left kernel objects behind: ${leaks.join(', ')}`); tf += 1; }
  console.log(`== ${tier}: ${tp} passed, ${tf} failed, ${ts} skipped in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  pass += tp; fail += tf; skip += ts;
}
console.log(`\ntotal time ${((Date.now() - started) / 1000).toFixed(1)}s`);
console.log(`${pass} passed, ${fail} failed, ${skip} skipped`);
process.exit(fail ? 1 : 0);
