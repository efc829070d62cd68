// Named network namespaces, visible to `ip netns` (bind mounts under /run/netns).
import fs from 'node:fs';
import { native, netnsPath, isNativeError } from '../../native/index.js';
import { NetlinkError } from './errors.js';

export { netnsPath };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new TypeError(`"${name}" is not a valid namespace name (letters, digits, . _ -; at most 64)`);
}

// A name under /run/netns is a namespace only while a nsfs bind mount sits on it. A crash between
// creating the file and mounting, or a mount made in another mount namespace that did not propagate,
// leaves a plain file: it must count as absent (and be replaced), never be setns()'d into.
let nsfsDev: number | undefined;
export function isNetnsMount(file: string): boolean {
  try {
    nsfsDev ??= fs.statSync('/proc/self/ns/net').dev;
    return fs.statSync(file).dev === nsfsDev;
  } catch {
    return false;
  }
}

export function createNetns(name: string): void {
  checkName(name);
  const file = netnsPath(name);
  if (fs.existsSync(file) && !isNetnsMount(file)) fs.rmSync(file, { force: true });
  try {
    native.netnsCreate(name);
  } catch (e) {
    if (isNativeError(e)) throw new NetlinkError('create netns', name, e.errno, e.message);
    throw e;
  }
}

/** Removes a namespace; returns false if it did not exist. */
export function deleteNetns(name: string): boolean {
  checkName(name);
  const file = netnsPath(name);
  if (fs.existsSync(file) && !isNetnsMount(file)) {
    fs.rmSync(file, { force: true }); // a leftover plain file (see isNetnsMount)
    return true;
  }
  try {
    native.netnsDelete(name);
    return true;
  } catch (e) {
    if (isNativeError(e) && e.code === 'ENOENT') return false;
    if (isNativeError(e)) throw new NetlinkError('delete netns', name, e.errno, e.message);
    throw e;
  }
}

export function listNetns(): string[] {
  try {
    return fs.readdirSync('/run/netns').sort();
  } catch {
    return [];
  }
}

export function netnsExists(name: string): boolean {
  return isNetnsMount(netnsPath(name));
}

/** Opens a namespace file for IFLA_NET_NS_FD; the caller closes it. */
export function openNetnsFd(name: string): number {
  return fs.openSync(netnsPath(name), 'r');
}
