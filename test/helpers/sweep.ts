// What a killed test run leaves behind (a session cut off mid-lab, a CI job killed at its limit):
// namespaces, host links, daemons and task containers named "mt…". The runner sweeps them before
// its tiers when no other test run is alive, so a crashed run never fails the next one's leak check.
import fs from 'node:fs';
import { Rtnl, deleteNetns, listNetns } from '../../dataplane/netlink/index.js';
import { killNetnsProcesses } from '../../control/lab/daemons.js';
import { labDown } from '../../control/lab/lab.js';

export interface SweepReport {
  /** lab prefixes taken down with `lab down` (daemons, tasks, containers, run dirs) */
  labs: string[];
  /** other namespaces removed (after stopping what ran in them) */
  netns: string[];
  /** root-namespace links removed */
  links: string[];
}

// A lab's namespaces are PREFIX-ul and PREFIX-nN[...]; its host link is PREFIX-h.
const LAB_NAME = /^(mt[0-9A-Za-z]+?)-(?:ul|h|n\d+(?:-.+)?)$/;

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function parentOf(pid: number): number {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^PPid:\s+(\d+)/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Processes of another test run that may own live mt* objects: a runner (test/run.js) or a test file
 * under dist/test. This process and its ancestors (npm, the shell running the script) don't count.
 */
export function otherTestRuns(self = process.pid): number[] {
  const mine = new Set<number>();
  for (let p = self; p > 1 && !mine.has(p); p = parentOf(p)) mine.add(p);
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (mine.has(pid)) continue;
    const c = cmdline(pid);
    if (/test\/run\.js|\/dist\/test\/\S+\.js/.test(c)) out.push(pid);
  }
  return out;
}

function rootLinks(match: (name: string) => boolean): string[] {
  return fs.existsSync('/sys/class/net') ? fs.readdirSync('/sys/class/net').filter(match) : [];
}

/** Removes every namespace and root-namespace link whose name `match` accepts. */
export async function sweepTestObjects(match: (name: string) => boolean): Promise<SweepReport> {
  const report: SweepReport = { labs: [], netns: [], links: [] };
  const names = [...listNetns().filter(match), ...rootLinks(match)];
  const prefixes = [...new Set(names.map((n) => LAB_NAME.exec(n)?.[1]).filter((p): p is string => p !== undefined))];
  for (const prefix of prefixes.sort()) {
    try {
      await labDown(prefix);
      report.labs.push(prefix);
    } catch {
      // not a valid lab prefix: its objects fall to the generic pass below
    }
  }
  for (const ns of listNetns().filter(match)) {
    await killNetnsProcesses(ns);
    if (deleteNetns(ns)) report.netns.push(ns);
  }
  const links = rootLinks(match);
  if (links.length) {
    const r = Rtnl.open();
    try {
      for (const l of links) if (r.deleteLink(l)) report.links.push(l);
    } finally {
      r.close();
    }
  }
  return report;
}
