// Typed access to the meshnative N-API addon (native/src/meshnative.c).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

export interface UdpDatagram {
  data: Buffer;
  address: string;
  port: number;
  truncated: boolean;
}

/** An opaque uv_poll watcher owned by the addon. */
export interface WatchHandle {
  readonly __watch: unique symbol;
}

export interface MeshNative {
  netnsCreate(name: string): void;
  netnsDelete(name: string): void;
  netlinkOpen(protocol: number, nsPath: string | null, rcvbuf: number, sndbuf: number): number;
  netlinkSend(fd: number, data: Buffer): number;
  netlinkRecv(fd: number, timeoutMs: number): Buffer | null;
  netlinkPortId(fd: number): number;
  setSockOptInt(fd: number, level: number, name: number, value: number): void;
  socketOpen(nsPath: string | null, kind: 'udp' | 'tcp' | 'icmp', address: string, port: number, backlog: number): number;
  writeFileInNetns(nsPath: string | null, file: string, data: string): void;
  /** Up to 32 small files (< 512 bytes each, e.g. sysctls) read inside a namespace; null: no such file. */
  readFilesInNetns(nsPath: string | null, files: readonly string[]): (string | null)[];
  udpRecv(fd: number): UdpDatagram | null;
  udpSend(fd: number, data: Buffer, address: string, port: number): boolean;
  watchReadable(fd: number, callback: (events: number) => void): WatchHandle;
  unwatch(handle: WatchHandle): void;
  watchRef(handle: WatchHandle, ref: boolean): void;
  close(fd: number): void;
}

/** An error the addon threw from a system call: code is the errno name, errno its number. */
export interface NativeError extends Error {
  code: string;
  errno: number;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number';
}

function findAddon(): string {
  // Works from the source tree (native/index.ts) and from the build (dist/native/index.js).
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'native', 'build', 'Release', 'meshnative.node');
    if (fs.existsSync(candidate)) return candidate;
    const here = path.join(dir, 'build', 'Release', 'meshnative.node');
    if (fs.existsSync(here)) return here;
    dir = path.dirname(dir);
  }
  throw new Error('meshnative addon is not built: run `npm run build` (needs g++, make and python3)');
}

const require = createRequire(import.meta.url);
export const native: MeshNative = require(findAddon()) as MeshNative;

/** Path of a named network namespace, as `ip netns` keeps them. */
export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}
