// Pure statistics of a probe run: latency percentiles and how answers spread over replicas.

export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Nearest-rank percentile over an ascending array (p in 0..100). Nearest-rank, not interpolation:
 * every reported figure is a latency that was really measured.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarizeLatency(samples: readonly number[]): LatencySummary | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { count: s.length, min: s[0]!, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1]!, mean: sum / s.length };
}

/** Occurrences of each value, keys sorted (stable output for tables and JSON diffs). */
export function countBy(values: readonly string[]): Record<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * How evenly answers spread: the smallest replica's share over the largest's (1 = perfectly even,
 * 0 = one replica never answered though it is expected). With `expected` replicas, replicas that
 * never answered count as 0.
 */
export function evenness(dist: Record<string, number>, expected?: number): number {
  const counts = Object.values(dist);
  if (counts.length === 0) return 0;
  if (expected !== undefined && counts.length < expected) return 0;
  const max = Math.max(...counts);
  return max === 0 ? 0 : Math.min(...counts) / max;
}
