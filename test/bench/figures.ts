// How a benchmark reports: named figures, and where a peer ran in the same run, the ratio.
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** the same work done by the reference implementation, same run */
  peer?: { name: string; value: number };
  /** true when a larger value is better (throughput); false for times */
  higherIsBetter?: boolean;
  note?: string;
}

export function ratioInOurFavour(f: Figure): number | undefined {
  if (!f.peer || f.value === 0 || f.peer.value === 0) return undefined;
  return f.higherIsBetter ? f.value / f.peer.value : f.peer.value / f.value;
}

export function formatFigure(f: Figure): string {
  const v = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  let s = `${f.name.padEnd(44)} ${`${v(f.value)} ${f.unit}`.padStart(14)}`;
  const r = ratioInOurFavour(f);
  if (f.peer) s += `   ${f.peer.name} ${v(f.peer.value)} ${f.unit}   ratio ${r === undefined ? 'n/a' : `${r.toFixed(2)}x`} (>1 is meshd ahead)`;
  if (f.note) s += `   ${f.note}`;
  return s;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const msSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
