import os from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, n]) => [n, name] as [number, string]),
);

/** A request the kernel refused: names the operation, the object and the kernel's reason. */
export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(
    readonly op: string,
    readonly object: string,
    errno: number,
    readonly kernelMessage?: string,
  ) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    const why = kernelMessage ? `${code}: ${kernelMessage}` : `${code} (${describe(errno)})`;
    super(`${op} ${object}: ${why}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
  }
}

function describe(errno: number): string {
  switch (errno) {
    case os.constants.errno.EEXIST: return 'already exists';
    case os.constants.errno.ENOENT: return 'no such object';
    case os.constants.errno.ENODEV: return 'no such device';
    case os.constants.errno.EPERM: return 'operation not permitted: run as root';
    case os.constants.errno.EBUSY: return 'device or resource busy';
    case os.constants.errno.EINVAL: return 'invalid argument';
    case os.constants.errno.EOPNOTSUPP: return 'not supported by this kernel';
    case os.constants.errno.EADDRNOTAVAIL: return 'address not available';
    case os.constants.errno.ENETUNREACH: return 'network unreachable';
    default: return 'kernel error';
  }
}
