#!/usr/bin/env node
// node dist/test/probe/cli.js --proto http --port 8080 [options] [NAME=]HOST[:PORT]...
// An external client against every target: success rate, which replica answered, latency
// percentiles. Exit 0 when every target passes, 1 when one fails, 2 on a usage error.
import { parseArgs } from 'node:util';
import { probe, probeUntil } from './probe.js';
import { formatReport } from './report.js';
import { parseTargets, TargetError } from './targets.js';
import type { Proto } from './clients.js';

const USAGE = `usage: probe [--proto tcp|udp|http] [--port N] [--count N] [--timeout MS] [--concurrency N]
             [--path /] [--min-success 0..1] [--min-replicas N] [--wait SECONDS] [--format table|json]
             [NAME=]HOST[:PORT]...   (targets may also be comma-separated, or in $PROBE_TARGETS)`;

function num(v: string | undefined, flag: string, def: number, opts: { min?: number; max?: number } = {}): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) throw new TargetError(`${flag} ${v}: not a valid number`);
  return n;
}

export async function cliMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      proto: { type: 'string', default: 'http' },
      port: { type: 'string', short: 'p' },
      count: { type: 'string', short: 'n' },
      timeout: { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      path: { type: 'string' },
      'min-success': { type: 'string' },
      'min-replicas': { type: 'string' },
      wait: { type: 'string' },
      format: { type: 'string', default: 'table' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const proto = values.proto as Proto;
  if (!['tcp', 'udp', 'http'].includes(proto)) throw new TargetError(`--proto ${values.proto}: tcp, udp or http`);
  if (values.format !== 'table' && values.format !== 'json') throw new TargetError(`--format ${values.format}: table or json`);
  const specs = positionals.length ? positionals : (process.env.PROBE_TARGETS ?? '').split(/\s+/);
  const port = values.port === undefined ? undefined : num(values.port, '--port', 0, { min: 1, max: 65535 });
  const opts = {
    proto,
    targets: parseTargets(specs, port),
    count: num(values.count, '--count', 20, { min: 1 }),
    timeoutMs: num(values.timeout, '--timeout', 2000, { min: 1 }),
    concurrency: num(values.concurrency, '--concurrency', 4, { min: 1 }),
    ...(values.path ? { path: values.path } : {}),
    criteria: { minSuccess: num(values['min-success'], '--min-success', 1, { min: 0, max: 1 }), minReplicas: num(values['min-replicas'], '--min-replicas', 0, { min: 0 }) },
  };
  const waitS = num(values.wait, '--wait', 0, { min: 0 });
  const report = waitS > 0 ? await probeUntil(opts, waitS * 1000) : await probe(opts);
  console.log(values.format === 'json' ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.overall.pass ? 0 : 1;
}

cliMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`probe: ${(e as Error).message}\n${USAGE}`);
    process.exitCode = 2;
  },
);
