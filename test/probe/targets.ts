// Pure parsing of probe targets: "[name=]host[:port]", IPv4, a host name or "[v6]:port".

export interface Target {
  /** what the report calls it: the given name, else host:port */
  name: string;
  host: string;
  port: number;
}

export class TargetError extends Error {
  override name = 'TargetError';
}

function port(s: string, whole: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new TargetError(`target "${whole}": port must be 1-65535`);
  return Number(s);
}

export function parseTarget(spec: string, defaultPort?: number): Target {
  const s = spec.trim();
  const eq = s.indexOf('=');
  const label = eq > 0 ? s.slice(0, eq) : undefined;
  const rest = eq > 0 ? s.slice(eq + 1) : s;
  let host: string;
  let p: number | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    host = v6[1]!;
    if (v6[2] !== undefined) p = port(v6[2], spec);
  } else {
    const m = /^([A-Za-z0-9._-]+)(?::(\w+))?$/.exec(rest);
    if (!m) throw new TargetError(`target "${spec}": use [NAME=]HOST[:PORT]`);
    host = m[1]!;
    if (m[2] !== undefined) p = port(m[2], spec);
  }
  const finalPort = p ?? defaultPort;
  if (finalPort === undefined) throw new TargetError(`target "${spec}" has no port and no --port was given`);
  const hostPort = host.includes(':') ? `[${host}]:${finalPort}` : `${host}:${finalPort}`;
  return { name: label ?? hostPort, host, port: finalPort };
}

/** Targets from arguments that may each hold several, separated by commas or whitespace. */
export function parseTargets(specs: readonly string[], defaultPort?: number): Target[] {
  const out = specs.flatMap((s) => s.split(/[\s,]+/)).filter((s) => s.length > 0).map((s) => parseTarget(s, defaultPort));
  if (out.length === 0) throw new TargetError('no targets given');
  return out;
}
