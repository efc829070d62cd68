// nf_tables transactions over our own NETLINK_NETFILTER socket in a namespace. The kernel runs a
// batch inside sendmsg (all or nothing) and queues every answer before returning, so a commit is
// one send and a few non-blocking reads. Unlike `nft`, nothing is dumped first: the caller plans
// from its own model of the table.
import { native, netnsPath } from '../../../native/index.js';
import { parseError, parseMessages } from '../../netlink/channel.js';
import { NETLINK_NETFILTER, NLMSG_ERROR } from '../../netlink/constants.js';
import { NetlinkError } from '../../netlink/errors.js';
import { encodeBatch, type NftMessage } from './nfnl.js';

const SOL_SOCKET = 1;
const SO_SNDBUFFORCE = 32;
const ANSWER_TIMEOUT_MS = 30_000;

export interface NftFailure {
  /** what the refused request did ("add 10.0.0.1 tcp 80 to fe_port"), or "commit" */
  what: string;
  errno: number;
  code: string;
  /** the kernel's extended-ack text, when it gave one */
  kernelMessage?: string;
}

/** The kernel refused a transaction: nothing of it was applied. */
export class NftTransactionError extends Error {
  override name = 'NftTransactionError';
  constructor(readonly netns: string, readonly failures: NftFailure[], readonly requests: number) {
    const list = failures.slice(0, 5).map((f) => `${f.what}: ${f.code}${f.kernelMessage ? ` (${f.kernelMessage})` : ` (${describe(f.code)})`}`);
    const more = failures.length > 5 ? `; and ${failures.length - 5} more` : '';
    super(`nftables transaction in namespace ${netns} refused, nothing applied (${requests} requests): ${list.join('; ')}${more}`);
  }
}

function describe(code: string): string {
  switch (code) {
    case 'ENOENT': return 'no such table, chain, set or element';
    case 'EEXIST': return 'already exists with other contents';
    case 'EBUSY': return 'still in use';
    case 'EINVAL': return 'malformed request';
    case 'EOPNOTSUPP': return 'not supported by this kernel';
    case 'EPERM': return 'operation not permitted: needs CAP_NET_ADMIN';
    case 'ERANGE': return 'value out of range';
    case 'ENODATA': return 'an expression reads a register nothing in the rule wrote';
    case 'ENOSPC': return 'the set is full';
    case 'ELOOP': return 'the jumps would loop';
    default: return 'kernel error';
  }
}

export class NftSocket {
  private fd: number;
  private seq = Math.floor(Math.random() * 0x3fffffff) + 1;
  private sndbuf = 4 << 20;
  private closed = false;

  constructor(readonly netns: string) {
    this.fd = native.netlinkOpen(NETLINK_NETFILTER, netnsPath(netns), 8 << 20, this.sndbuf);
  }

  /** Applies the messages as one transaction; throws NftTransactionError when the kernel refuses. */
  commit(msgs: readonly NftMessage[]): void {
    if (this.closed) throw new Error(`nftables socket for ${this.netns} is closed`);
    if (msgs.length === 0) return;
    const b = encodeBatch(msgs, this.seq);
    this.seq = (b.lastSeq + 2) >>> 0 || 1;
    // One datagram must fit the send buffer (the kernel doubles the value; keep room for headers).
    if (b.data.length + 4096 > this.sndbuf) {
      this.sndbuf = b.data.length + (1 << 20);
      native.setSockOptInt(this.fd, SOL_SOCKET, SO_SNDBUFFORCE, this.sndbuf);
    }
    this.drain(); // answers to an abandoned earlier batch must not be read as this one's
    native.netlinkSend(this.fd, b.data);
    const failures: NftFailure[] = [];
    let done = false;
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    const take = (dgram: Buffer): void => {
      for (const m of parseMessages(dgram)) {
        if (m.type !== NLMSG_ERROR) continue;
        const e = parseError(m);
        const req = b.bySeq.get(e.seq);
        if (e.seq === b.beginSeq) done = true; // the batch as a whole failed (commit, or malformed)
        else if (!req) continue;
        if (e.seq === b.lastSeq) done = true;
        if (e.errno !== 0) {
          const code = new NetlinkError('', '', e.errno).code;
          const f: NftFailure = { what: req?.what ?? 'commit', errno: e.errno, code };
          if (e.message) f.kernelMessage = e.message;
          failures.push(f);
        }
      }
    };
    while (!done) {
      const left = deadline - Date.now();
      const d = left > 0 ? native.netlinkRecv(this.fd, left) : null;
      if (d === null) throw new NftTransactionError(this.netns, [{ what: 'wait for the kernel\'s answer', errno: 110, code: 'ETIMEDOUT' }], msgs.length);
      take(d);
    }
    // Errors of a failed batch arrive together; read whatever else is queued.
    for (let d = native.netlinkRecv(this.fd, 0); d !== null; d = native.netlinkRecv(this.fd, 0)) take(d);
    if (failures.length) throw new NftTransactionError(this.netns, failures, msgs.length);
  }

  private drain(): void {
    while (native.netlinkRecv(this.fd, 0) !== null);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.close(this.fd);
  }
}
