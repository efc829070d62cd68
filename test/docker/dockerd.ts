// A real dockerd for the docker tier: use the running one, or start Debian's (docker.io) ourselves
// with no iptables and no default bridge (our tasks run with NetworkMode none anyway), and stop it
// afterwards only if we started it. The test image is built here with `docker import` from a
// busybox-static root filesystem, so nothing is ever pulled.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';

export interface Dockerd {
  docker: Docker;
  startedByUs: boolean;
  /** stops dockerd if we started it */
  stop(): Promise<void>;
}

const PID_FILE = '/run/mt-dockerd.pid';
const LOG_FILE = path.join(os.tmpdir(), 'mt-dockerd.log');

function which(name: string): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(d, name);
    if (d && fs.existsSync(p)) return p;
  }
  return undefined;
}

async function pingable(docker: Docker, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await docker.ping();
      return true;
    } catch {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Returns a reachable dockerd, or a string saying why docker cannot run here (the tests skip). */
export async function ensureDockerd(): Promise<Dockerd | string> {
  const docker = new Docker();
  if (await pingable(docker, 0)) return { docker, startedByUs: false, stop: async () => undefined };
  const bin = which('dockerd');
  if (!bin) return 'dockerd is not installed (apt-get install -y docker.io)';
  if (process.getuid?.() !== 0) return 'starting dockerd needs root';
  const log = fs.openSync(LOG_FILE, 'w');
  const child = spawn(bin, ['--iptables=false', '--bridge=none', `--pidfile=${PID_FILE}`, '--data-root=/var/lib/docker'], { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  child.unref();
  let exited = false;
  child.once('exit', () => (exited = true));
  if (!(await pingable(docker, 30_000)) || exited) {
    try {
      if (child.pid) process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const tail = fs.readFileSync(LOG_FILE, 'utf8').split('\n').slice(-8).join('\n');
    return `dockerd did not come up within 30 s here:\n${tail}`;
  }
  return {
    docker,
    startedByUs: true,
    stop: async () => {
      if (!child.pid) return;
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        return;
      }
      for (let i = 0; i < 150 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
      if (!exited) process.kill(child.pid, 'SIGKILL');
    },
  };
}

/**
 * Imports a busybox-static image: /bin/busybox plus applet links, /www for httpd (a CGI that prints
 * the task's name and address). Returns the image ID (sha256:...).
 */
export async function importTestImage(docker: Docker): Promise<string> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error('busybox not found (apt-get install -y busybox-static)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtimg-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'www/cgi-bin', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'etc/resolv.conf'), '');
    fs.writeFileSync(path.join(root, 'etc/hosts'), '');
    fs.writeFileSync(path.join(root, 'www/index.html'), 'hello from busybox\n');
    // CGI: the docker image's stand-in for the node workload (names the task and the address hit)
    fs.writeFileSync(path.join(root, 'www/cgi-bin/whoami'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "task=$MESH_TASK_NAME remote=$REMOTE_ADDR"\n', { mode: 0o755 });
    const tar = execFileSync('tar', ['-C', root, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
    const { Readable } = await import('node:stream');
    const out = await docker.importImage(Readable.from([tar]), { repo: 'mt-meshd-test', tag: 'latest' } as object);
    const text = await new Promise<string>((resolve, reject) => {
      let buf = '';
      out.on('data', (d: Buffer) => (buf += d.toString()));
      out.on('end', () => resolve(buf));
      out.on('error', reject);
    });
    const id = /sha256:[0-9a-f]{64}/.exec(text)?.[0];
    if (!id) throw new Error(`docker import gave no image ID: ${text}`);
    return id;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
