// The outside probe: attempts against every target, a bounded number in flight at once, then the
// report. Independent of meshctl and of the cluster: it only needs addresses and a port.
import { performance } from 'node:perf_hooks';
import { attempt, type Attempt, type Proto } from './clients.js';
import { buildReport, type Criteria, type ProbeReport } from './report.js';
import type { Target } from './targets.js';

export interface ProbeOptions {
  proto: Proto;
  targets: Target[];
  /** attempts per target */
  count: number;
  timeoutMs: number;
  /** attempts in flight at once, over all targets */
  concurrency?: number;
  /** HTTP path */
  path?: string;
  criteria?: Partial<Criteria>;
}

export async function probe(o: ProbeOptions): Promise<ProbeReport> {
  const t0 = performance.now();
  const results = o.targets.map((target) => ({ target, attempts: [] as Attempt[] }));
  // Interleave targets (round-robin over them) so a slow node does not hold back the others' turns.
  const queue: { i: number }[] = [];
  for (let n = 0; n < o.count; n++) for (let i = 0; i < results.length; i++) queue.push({ i });
  const workers = Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, queue.length)) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const r = results[job.i]!;
      r.attempts.push(await attempt(o.proto, r.target.host, r.target.port, { timeoutMs: o.timeoutMs, ...(o.path ? { path: o.path } : {}) }));
    }
  });
  await Promise.all(workers);
  const criteria: Criteria = { minSuccess: o.criteria?.minSuccess ?? 1, minReplicas: o.criteria?.minReplicas ?? 0 };
  return buildReport(o.proto, criteria, results, performance.now() - t0);
}

/**
 * Probes until the report passes or the deadline is over (a routing mesh converges after a deploy):
 * returns the last report, passing or not.
 */
export async function probeUntil(o: ProbeOptions, deadlineMs: number, pauseMs = 500): Promise<ProbeReport> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = await probe(o);
    if (r.overall.pass || Date.now() + pauseMs > end) return r;
    await new Promise((res) => setTimeout(res, pauseMs));
  }
}
