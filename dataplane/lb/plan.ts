// plan(desired, observed) -> the minimal change list; simulate(state, changes) -> what the changes
// do. Both pure. The unit tests check simulate(o, plan(d, o)) == d, plan(x, x) == [], and that a
// change touches exactly the frontends that differ (one backend changed = one change).
import type { Frontend, LbChange, LbState } from './model.js';

/** Frontend attributes other than its backends: a change in them replaces the frontend. */
const sameShape = (a: Frontend, b: Frontend): boolean =>
  a.targetPort === b.targetPort && (a.snat ?? '') === (b.snat ?? '') &&
  a.match.addr === b.match.addr && a.match.proto === b.match.proto && a.match.port === b.match.port;

const clone = (f: Frontend): Frontend => {
  const c: Frontend = { match: { ...f.match }, targetPort: f.targetPort, backends: { ...f.backends } };
  if (f.snat !== undefined) c.snat = f.snat;
  return c;
};

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Deletions first (a replaced frontend's old form goes before its new form is added), then
 * additions, then backend changes; within each, by key, so the same inputs give the same list.
 * Only the changes are sorted: at 10,000 frontends sorting every key twice per event cost more than
 * the kernel write of a one-backend change. Unchanged frontends are skipped after an unsorted check.
 */
export function plan(desired: LbState, observed: LbState): LbChange[] {
  const dels: LbChange[] = [];
  const adds: LbChange[] = [];
  const sets: LbChange[] = [];
  for (const key in observed.frontends) {
    const o = observed.frontends[key]!;
    const d = desired.frontends[key];
    if (!d || !sameShape(o, d)) dels.push({ op: 'del-frontend', key, frontend: clone(o) });
  }
  for (const key in desired.frontends) {
    const d = desired.frontends[key]!;
    const o = observed.frontends[key];
    if (!o || !sameShape(o, d)) {
      adds.push({ op: 'add-frontend', key, frontend: clone(d) });
      continue;
    }
    if (d === o || sameBackends(d.backends, o.backends)) continue;
    const added: Record<string, number> = {};
    const reweighted: Record<string, number> = {};
    const removed: string[] = [];
    for (const ip of Object.keys(d.backends).sort(byKey)) {
      const w = d.backends[ip]!;
      const ow = o.backends[ip];
      if (ow === undefined) added[ip] = w;
      else if (ow !== w) reweighted[ip] = w;
    }
    for (const ip of Object.keys(o.backends).sort(byKey)) if (d.backends[ip] === undefined) removed.push(ip);
    sets.push({ op: 'set-backends', key, frontend: clone(d), added, reweighted, removed });
  }
  const byChangeKey = (a: LbChange, b: LbChange): number => byKey(a.key, b.key);
  return [...dels.sort(byChangeKey), ...adds.sort(byChangeKey), ...sets.sort(byChangeKey)];
}

function sameBackends(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  let n = 0;
  for (const ip in a) {
    if (a[ip] !== b[ip]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

/** The model of what each change does to the kernel's state. Throws on a change that cannot apply. */
export function simulate(state: LbState, changes: readonly LbChange[]): LbState {
  // Copy on write: untouched frontends are shared with the input (at 10,000 frontends a full copy
  // costs more than the kernel write of a one-backend change). Treat both as immutable.
  const st: LbState = { frontends: { ...state.frontends } };
  const copied = new Set<string>();
  for (const c of changes) {
    if (!copied.has(c.key) && st.frontends[c.key]) st.frontends[c.key] = clone(st.frontends[c.key]!);
    copied.add(c.key);
    const cur = st.frontends[c.key];
    switch (c.op) {
      case 'del-frontend':
        if (!cur) throw new Error(`simulate: no frontend ${c.key} to delete`);
        delete st.frontends[c.key];
        break;
      case 'add-frontend':
        if (cur) throw new Error(`simulate: frontend ${c.key} exists`);
        st.frontends[c.key] = clone(c.frontend);
        break;
      case 'set-backends': {
        if (!cur) throw new Error(`simulate: no frontend ${c.key} to change`);
        for (const [ip, w] of Object.entries(c.added)) {
          if (cur.backends[ip] !== undefined) throw new Error(`simulate: backend ${ip} of ${c.key} exists`);
          cur.backends[ip] = w;
        }
        for (const [ip, w] of Object.entries(c.reweighted)) {
          if (cur.backends[ip] === undefined) throw new Error(`simulate: no backend ${ip} of ${c.key}`);
          cur.backends[ip] = w;
        }
        for (const ip of c.removed) {
          if (cur.backends[ip] === undefined) throw new Error(`simulate: no backend ${ip} of ${c.key}`);
          delete cur.backends[ip];
        }
        break;
      }
    }
  }
  return st;
}

/** Backend addresses whose connections must be flushed after the changes: they left a frontend. */
export function flushTargets(changes: readonly LbChange[]): { key: string; ip: string }[] {
  const out: { key: string; ip: string }[] = [];
  for (const c of changes) {
    if (c.op === 'set-backends') for (const ip of c.removed) out.push({ key: c.key, ip });
    else if (c.op === 'del-frontend') for (const ip of Object.keys(c.frontend.backends)) out.push({ key: c.key, ip });
  }
  return out;
}

/** A readable one-line summary per change (logs, `meshctl debug dataplane`). */
export function describeChange(c: LbChange): string {
  if (c.op !== 'set-backends') return `${c.op} ${c.key} (${Object.keys(c.frontend.backends).length} backends)`;
  const parts: string[] = [];
  for (const [ip, w] of Object.entries(c.added)) parts.push(`+${ip}:${w}`);
  for (const [ip, w] of Object.entries(c.reweighted)) parts.push(`~${ip}:${w}`);
  for (const ip of c.removed) parts.push(`-${ip}`);
  return `set-backends ${c.key} ${parts.join(' ')}`;
}
