// Tables for people, JSON for scripts (`--format json` everywhere).
import { Option } from 'commander';
export type Format = 'table' | 'json';

export function parseFormat(v: string): Format {
  if (v !== 'table' && v !== 'json') throw new Error(`--format must be "table" or "json", not "${v}"`);
  return v;
}

export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('   ').trimEnd()).join('\n');
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/** The `--format table|json` option every listing command takes. */
export function formatOption(): Option {
  return new Option('--format <fmt>', 'table or json').default('table').argParser(parseFormat);
}
