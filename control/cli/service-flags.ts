// Parsing of `service create/update` flags into spec fragments, Docker's syntax where Docker has one.
export class FlagError extends Error {
  override name = 'FlagError';
}

/** "8080:80", "8080:80/udp", "published=8080,target=80,protocol=udp,mode=host" */
export function parsePublish(v: string): { published: number; target: number; protocol: 'tcp' | 'udp'; mode: 'ingress' | 'host' } {
  const port = (s: string | undefined, what: string): number => {
    if (!s || !/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new FlagError(`--publish ${v}: ${what} port must be 1-65535`);
    return Number(s);
  };
  if (v.includes('=')) {
    const kv = Object.fromEntries(v.split(',').map((p) => {
      const i = p.indexOf('=');
      if (i < 0) throw new FlagError(`--publish ${v}: "${p}" is not KEY=VALUE`);
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
    })) as Record<string, string>;
    for (const k of Object.keys(kv)) if (!['published', 'target', 'protocol', 'mode'].includes(k)) throw new FlagError(`--publish ${v}: unknown key "${k}" (published, target, protocol, mode)`);
    const protocol = kv.protocol ?? 'tcp';
    const mode = kv.mode ?? 'ingress';
    if (protocol !== 'tcp' && protocol !== 'udp') throw new FlagError(`--publish ${v}: protocol must be tcp or udp`);
    if (mode !== 'ingress' && mode !== 'host') throw new FlagError(`--publish ${v}: mode must be ingress or host`);
    return { published: port(kv.published, 'published'), target: port(kv.target, 'target'), protocol, mode };
  }
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(v);
  if (!m) throw new FlagError(`--publish ${v}: use PUBLISHED:TARGET[/tcp|udp] or published=,target=,protocol=,mode=`);
  return { published: port(m[1], 'published'), target: port(m[2], 'target'), protocol: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp', mode: 'ingress' };
}

/** "app" or "name=app,alias=db,alias=cache" */
export function parseNetwork(v: string): { target: string; aliases: string[] } {
  if (!v.includes('=')) return { target: v, aliases: [] };
  let target = '';
  const aliases: string[] = [];
  for (const part of v.split(',')) {
    const i = part.indexOf('=');
    const k = part.slice(0, i).trim();
    const val = part.slice(i + 1).trim();
    if (k === 'name' || k === 'target') target = val;
    else if (k === 'alias') aliases.push(val);
    else throw new FlagError(`--network ${v}: unknown key "${k}" (name, alias)`);
  }
  if (!target) throw new FlagError(`--network ${v}: needs name=NETWORK`);
  return { target, aliases };
}

/** "0", "500ms", "5s", "1m30s", "2h" -> milliseconds */
export function parseDuration(v: string, flag: string): number {
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    if (m.index !== consumed) break;
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed = re.lastIndex;
  }
  if (consumed !== v.length || v.length === 0) throw new FlagError(`${flag} ${v}: use a duration like 500ms, 5s, 1m30s`);
  return Math.round(total);
}

/** A duration as parseDuration reads it back: 1h30m, 5s, 250ms. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

/** "512M", "1G", "1048576" -> bytes */
export function parseBytes(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmgt]i?b?|b)?$/i.exec(v.trim());
  if (!m) throw new FlagError(`${flag} ${v}: use a size like 512M or 1G`);
  const unit = (m[2] ?? 'b').toLowerCase()[0]!;
  const mult = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit as 'b' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

/** "0.5" CPUs -> nano CPUs */
export function parseCpus(v: string, flag: string): number {
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new FlagError(`${flag} ${v}: use a number of CPUs like 0.5 or 2`);
  return Math.round(Number(v) * 1e9);
}

/** "KEY=VALUE" */
export function parseEnv(v: string): [string, string] {
  const i = v.indexOf('=');
  if (i <= 0) throw new FlagError(`--env ${v}: use KEY=VALUE`);
  return [v.slice(0, i), v.slice(i + 1)];
}
