// Pure: attempts -> per-target reports -> verdicts and a table. Kept apart from the sockets so the
// arithmetic and the pass/fail rules are unit-tested.
import type { Attempt, Proto } from './clients.js';
import { countBy, evenness, summarizeLatency, type LatencySummary } from './stats.js';
import type { Target } from './targets.js';

export interface TargetReport {
  name: string;
  host: string;
  port: number;
  proto: Proto;
  attempts: number;
  ok: number;
  successRate: number;
  /** of the successful attempts */
  latencyMs: LatencySummary | null;
  /** answers per replica (task name; "?" when the answer named none; empty for tcp) */
  replicas: Record<string, number>;
  /** the addresses the requests arrived on, as the replicas saw them */
  replicaIps: string[];
  /** failures per cause */
  errors: Record<string, number>;
}

export interface Criteria {
  /** fraction of attempts that must succeed, per target (default 1) */
  minSuccess: number;
  /** distinct replicas each target must reach (http/udp); 0 = do not check */
  minReplicas: number;
}

export interface Verdict {
  pass: boolean;
  reasons: string[];
}

export interface ProbeReport {
  proto: Proto;
  criteria: Criteria;
  targets: (TargetReport & { verdict: Verdict })[];
  overall: {
    attempts: number;
    ok: number;
    successRate: number;
    latencyMs: LatencySummary | null;
    replicas: Record<string, number>;
    /** min/max replica share over all answers (1 = even) */
    evenness: number;
    pass: boolean;
  };
  durationMs: number;
}

export function summarizeTarget(target: Target, proto: Proto, attempts: readonly Attempt[]): TargetReport {
  const ok = attempts.filter((a) => a.ok);
  return {
    name: target.name,
    host: target.host,
    port: target.port,
    proto,
    attempts: attempts.length,
    ok: ok.length,
    successRate: attempts.length ? ok.length / attempts.length : 0,
    latencyMs: summarizeLatency(ok.map((a) => a.ms)),
    replicas: countBy(ok.flatMap((a) => (a.replica ? [a.replica.replica] : []))),
    replicaIps: Object.keys(countBy(ok.flatMap((a) => (a.replica?.ip ? [a.replica.ip] : [])))),
    errors: countBy(attempts.flatMap((a) => (a.ok ? [] : [a.error ?? 'unknown']))),
  };
}

export function judge(r: TargetReport, c: Criteria): Verdict {
  const reasons: string[] = [];
  if (r.attempts === 0) reasons.push('no attempts');
  if (r.successRate < c.minSuccess) {
    const errs = Object.entries(r.errors).map(([k, v]) => `${k} x${v}`).join(', ');
    reasons.push(`${r.ok}/${r.attempts} answered, need ${Math.ceil(c.minSuccess * r.attempts)}${errs ? ` (${errs})` : ''}`);
  }
  const distinct = Object.keys(r.replicas).length;
  if (c.minReplicas > 0 && r.proto !== 'tcp' && distinct < c.minReplicas) reasons.push(`${distinct} replica(s) answered, need ${c.minReplicas}`);
  return { pass: reasons.length === 0, reasons };
}

export function buildReport(proto: Proto, criteria: Criteria, results: readonly { target: Target; attempts: readonly Attempt[] }[], durationMs: number): ProbeReport {
  const targets = results.map(({ target, attempts }) => {
    const r = summarizeTarget(target, proto, attempts);
    return { ...r, verdict: judge(r, criteria) };
  });
  const all = results.flatMap((r) => r.attempts);
  const ok = all.filter((a) => a.ok);
  const replicas = countBy(ok.flatMap((a) => (a.replica ? [a.replica.replica] : [])));
  return {
    proto,
    criteria,
    targets,
    overall: {
      attempts: all.length,
      ok: ok.length,
      successRate: all.length ? ok.length / all.length : 0,
      latencyMs: summarizeLatency(ok.map((a) => a.ms)),
      replicas,
      evenness: evenness(replicas),
      pass: targets.length > 0 && targets.every((t) => t.verdict.pass),
    },
    durationMs,
  };
}

const ms = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1));

function pad(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n');
}

/** The human view: one row per target with PASS/FAIL, then the replica distribution. */
export function formatReport(r: ProbeReport): string {
  const rows = [['TARGET', 'ADDRESS', 'OK', 'RATE', 'P50 MS', 'P99 MS', 'REPLICAS', 'RESULT']];
  for (const t of r.targets) {
    rows.push([t.name, `${t.host}:${t.port}/${t.proto}`, `${t.ok}/${t.attempts}`, `${(t.successRate * 100).toFixed(0)}%`, ms(t.latencyMs?.p50), ms(t.latencyMs?.p99), t.proto === 'tcp' ? '-' : String(Object.keys(t.replicas).length), t.verdict.pass ? 'PASS' : `FAIL: ${t.verdict.reasons.join('; ')}`]);
  }
  const o = r.overall;
  const lines = [pad(rows), ''];
  if (Object.keys(o.replicas).length) {
    lines.push(`replicas that answered (${Object.keys(o.replicas).length}, evenness ${o.evenness.toFixed(2)}):`);
    for (const [name, n] of Object.entries(o.replicas)) lines.push(`  ${name.padEnd(24)} ${String(n).padStart(5)}  ${'#'.repeat(Math.max(1, Math.round((n / o.ok) * 40)))}`);
  }
  const l = o.latencyMs;
  lines.push(`overall: ${o.ok}/${o.attempts} answered (${(o.successRate * 100).toFixed(1)}%), latency ms p50 ${ms(l?.p50)} p90 ${ms(l?.p90)} p99 ${ms(l?.p99)} max ${ms(l?.max)}, in ${(r.durationMs / 1000).toFixed(1)} s: ${o.pass ? 'PASS' : 'FAIL'}`);
  return lines.join('\n');
}
