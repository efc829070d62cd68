// The built-in test workload, so demos and tests need no image registry:
//   node bin/workload.js http [--port 80] [--name NAME]   every request answers with JSON naming the
//                                                         task and the address the request arrived on
//                                                         (what load-balancing tests count); /healthz -> ok
//   node bin/workload.js udp  [--port 9000] [--name NAME] echo: replies {"task","echo"} to each datagram
// The name defaults to $MESH_TASK_NAME (set by both runtimes), then the hostname.
import http from 'node:http';
import dgram from 'node:dgram';
import os from 'node:os';
import { parseArgs } from 'node:util';

export interface WorkloadOptions {
  port: number;
  name?: string;
  /** listen address; default all (IPv4 and IPv6 where available) */
  host?: string;
}

export interface RunningWorkload {
  /** the bound port (useful with port 0) */
  port: number;
  close(): Promise<void>;
}

function taskName(name?: string): string {
  return name ?? process.env.MESH_TASK_NAME ?? os.hostname();
}

/** What the HTTP workload answers; tests parse it. */
export interface HttpWorkloadReply {
  task: string;
  hostname: string;
  /** the address the request arrived on: the task IP on a network, or a VIP/ingress IP if not NATed */
  ip: string;
  port: number;
  /** the client's address as the task saw it (source-IP preservation checks) */
  remote: string;
  method: string;
  path: string;
}

function strip(addr: string | undefined): string {
  // IPv4 on a dual-stack socket shows up as ::ffff:a.b.c.d
  return (addr ?? '').replace(/^::ffff:/, '');
}

export async function runHttpWorkload(opts: WorkloadOptions): Promise<RunningWorkload> {
  const name = taskName(opts.name);
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const body: HttpWorkloadReply = {
      task: name,
      hostname: os.hostname(),
      ip: strip(req.socket.localAddress),
      port: req.socket.localPort ?? opts.port,
      remote: strip(req.socket.remoteAddress),
      method: req.method ?? 'GET',
      path: req.url ?? '/',
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  });
  // Short keep-alive: a test that counts backends should not stick to one connection for long.
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function runUdpEchoWorkload(opts: WorkloadOptions): Promise<RunningWorkload> {
  const name = taskName(opts.name);
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  sock.on('message', (msg, rinfo) => {
    sock.send(JSON.stringify({ task: name, echo: msg.toString('utf8') }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(opts.port, opts.host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return { port: sock.address().port, close: () => new Promise<void>((r) => sock.close(() => r())) };
}

const USAGE = 'usage: workload http|udp [--port N] [--name NAME] [--host ADDR]';

/** CLI entry (bin/workload.js, or `meshd workload ...`): argv without node and script. */
export async function workloadMain(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: 'string', short: 'p' }, name: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const kind = positionals[0];
  if (values.help || (kind !== 'http' && kind !== 'udp')) {
    console.error(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  const port = Number(values.port ?? (kind === 'http' ? 80 : 9000));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`workload: bad --port ${values.port}`);
    process.exit(2);
  }
  const opts: WorkloadOptions = { port, ...(values.name ? { name: values.name } : {}), ...(values.host ? { host: values.host } : {}) };
  const w = kind === 'http' ? await runHttpWorkload(opts) : await runUdpEchoWorkload(opts);
  console.log(`workload ${kind} ${taskName(values.name)} listening on ${w.port}`);
  // A clean exit on SIGTERM: `stop` of a healthy task then reports exit code 0, not 143.
  const shutdown = (sig: string): void => {
    console.log(`workload: ${sig}, exiting`);
    void w.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
