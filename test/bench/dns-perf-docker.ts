// Docker's side of the dnsperf bench: a private dockerd (Debian's docker.io, its own socket, data and
// exec roots, so it never touches a dockerd someone else is using), in swarm mode with an attachable
// overlay, the same two services as ours and a client container whose namespace dnsperf enters. The
// image is imported from a busybox-static tarball and referenced by ID: nothing is pulled. Names that
// are not the cluster's go to Docker's upstream, here a local responder that answers NXDOMAIN at once
// (Docker forwards unknown single-label names; we answer them ourselves).
import { execFile, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildResponse, parseQuery, RCODE } from '../../dns/wire.js';
import { NAMES } from './dns-perf-table.js';

const run = promisify(execFile);
const ROOT = '/run/mtdnsb';
const SOCK = `unix://${ROOT}/docker.sock`;
const DATA = '/var/lib/mtdnsb-docker';
const GW = { subnet: '172.31.250.0/24', gateway: '172.31.250.1', bridge: 'mtdnsbgw' };

export interface DockerSide {
  /** PID of the dockerd whose CPU is counted (its embedded DNS runs in-process). */
  dockerdPid: number;
  /** PID of a process in the client container's network namespace (for nsenter -n -t). */
  clientPid: number;
  /** CPU time the NXDOMAIN upstream used so far (us). */
  upstreamCpuUs(): number;
  close(): Promise<void>;
}

function which(name: string): string | undefined {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin']) if (fs.existsSync(path.join(d, name))) return path.join(d, name);
  return undefined;
}

const dockerCli = (): string => (fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker');

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run(dockerCli(), ['-H', SOCK, ...args], { maxBuffer: 16 << 20 });
  return stdout.trim();
}

async function quiet(...args: string[]): Promise<void> {
  await docker(...args).catch(() => undefined);
}

/** A UDP responder answering NXDOMAIN to every query (Docker's upstream for the NXDOMAIN name). */
async function nxResponder(address: string): Promise<{ close(): void; cpuUs(): number }> {
  const s = dgram.createSocket('udp4');
  const cpu0 = process.cpuUsage();
  s.on('message', (m, r) => {
    const p = parseQuery(m);
    if (p.kind !== 'query') return;
    const q = p.query;
    const { bytes } = buildResponse({ id: q.id, opcode: 0, rd: q.rd, cd: q.cd, rcode: RCODE.NXDOMAIN, aa: true, question: q.question, edns: q.edns }, [], 512);
    s.send(bytes, r.port, r.address);
  });
  await new Promise<void>((ok, fail) => {
    s.once('error', fail);
    s.bind(53, address, ok);
  });
  return { close: () => s.close(), cpuUs: () => { const c = process.cpuUsage(cpu0); return c.user + c.system; } };
}

/** Starts everything, or returns why Docker cannot be measured here. */
export async function startDockerSide(log: (s: string) => void): Promise<DockerSide | string> {
  const dockerd = which('dockerd');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!dockerd) return 'dockerd not installed (apt-get install docker.io)';
  if (!busybox) return 'busybox not installed (apt-get install busybox-static)';
  await stopLeftovers();
  fs.mkdirSync(ROOT, { recursive: true });
  const logFd = fs.openSync(path.join(os.tmpdir(), 'mtdnsb-dockerd.log'), 'w');
  const child = spawn(dockerd, ['--data-root', DATA, '--exec-root', `${ROOT}/exec`, '-H', SOCK, '--pidfile', `${ROOT}/dockerd.pid`,
    '--iptables=false', '--bridge=none'], { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  child.unref();
  let responder: { close(): void; cpuUs(): number } | null = null;
  const close = async (): Promise<void> => {
    responder?.close();
    await quiet('rm', '-f', 'mtdnsbclient');
    await quiet('service', 'rm', NAMES.vip, NAMES.rr);
    await new Promise((r) => setTimeout(r, 2000)); // tasks leave the overlay before it goes
    await quiet('network', 'rm', 'mtdnsbnet');
    await quiet('swarm', 'leave', '--force');
    await quiet('network', 'rm', 'docker_gwbridge');
    await quiet('image', 'prune', '-a', '-f');
    await stopLeftovers();
  };
  try {
    for (let i = 0; ; i++) {
      if (await docker('version').then(() => true, () => false)) break;
      if (i > 100 || child.exitCode !== null) throw new Error('dockerd did not start (see /tmp/mtdnsb-dockerd.log)');
      await new Promise((r) => setTimeout(r, 200));
    }
    const dockerdPid = child.pid!;
    // The image: busybox-static and its applets, imported, referenced by ID.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtdnsb-img-'));
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d));
    fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of ['sh', 'sleep']) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'etc/resolv.conf'), '');
    fs.writeFileSync(path.join(root, 'etc/hosts'), '');
    const tar = path.join(os.tmpdir(), `mtdnsb-img-${process.pid}.tar`);
    execFileSync('tar', ['-C', root, '-cf', tar, '.']);
    fs.rmSync(root, { recursive: true, force: true });
    const image = await docker('import', tar);
    fs.rmSync(tar, { force: true });
    if (!/^sha256:[0-9a-f]{64}$/.test(image)) throw new Error(`docker import gave "${image}"`);
    // Our own gateway bridge (an mt* name, a fixed subnet) so the upstream responder has an address.
    await docker('network', 'create', '--subnet', GW.subnet, '--gateway', GW.gateway, '-o', `com.docker.network.bridge.name=${GW.bridge}`,
      '-o', 'com.docker.network.bridge.enable_icc=false', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false', 'docker_gwbridge');
    await docker('swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', '127.0.0.1:23770', '--data-path-port', '47890');
    await docker('network', 'create', '-d', 'overlay', '--attachable', '--subnet', '10.201.0.0/16', 'mtdnsbnet');
    await docker('service', 'create', '-d', '--no-resolve-image', '--name', NAMES.vip, '--network', 'mtdnsbnet', '--replicas', '3', image, 'sleep', '1d');
    await docker('service', 'create', '-d', '--no-resolve-image', '--name', NAMES.rr, '--endpoint-mode', 'dnsrr', '--network', 'mtdnsbnet', '--replicas', '10', image, 'sleep', '1d');
    responder = await nxResponder(GW.gateway);
    await docker('run', '-d', '--name', 'mtdnsbclient', '--network', 'mtdnsbnet', '--dns', GW.gateway, image, 'sleep', '1d');
    const clientPid = Number(await docker('inspect', '-f', '{{.State.Pid}}', 'mtdnsbclient'));
    for (let i = 0; ; i++) {
      const ls = await docker('service', 'ls', '--format', '{{.Name}} {{.Replicas}}');
      if (/vipsvc 3\/3/.test(ls) && /rr10 10\/10/.test(ls)) {
        // Running is not yet in DNS: wait until the client sees all 10 tasks.
        const { stdout } = await run('nsenter', ['-n', '-t', String(clientPid), 'dig', '+short', '+time=1', '@127.0.0.11', NAMES.rr]).catch(() => ({ stdout: '' }));
        if (stdout.trim().split('\n').filter(Boolean).length === 10) break;
      }
      if (i > 300) throw new Error(`docker services did not converge: ${ls}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    log(`docker: dockerd ${dockerdPid} (${await docker('version', '-f', '{{.Server.Version}}')}), swarm, overlay mtdnsbnet, 3 + 10 tasks, client ${clientPid}`);
    const r = responder;
    return { dockerdPid, clientPid, upstreamCpuUs: () => r.cpuUs(), close };
  } catch (e) {
    await close();
    return `docker side failed: ${(e as Error).message}`;
  }
}

/** Stops our private dockerd (from a crashed earlier run too) and removes its state. */
async function stopLeftovers(): Promise<void> {
  let pid = 0;
  try {
    pid = Number(fs.readFileSync(`${ROOT}/dockerd.pid`, 'utf8'));
  } catch {
    // not running
  }
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 150; i++) {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 100));
      }
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  // Mounts of the private instance (overlay2 layers, netns bind mounts) go before its directories.
  for (const dir of [`${ROOT}/exec`, DATA]) {
    try {
      const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir)).reverse();
      for (const m of mounts) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // best effort
    }
  }
  try {
    execFileSync('ip', ['link', 'del', GW.bridge], { stdio: 'ignore' });
  } catch {
    // already gone with its network
  }
  fs.rmSync(ROOT, { recursive: true, force: true });
  fs.rmSync(DATA, { recursive: true, force: true });
}
