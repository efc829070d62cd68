// Pure parsing of what the built-in workload answers (dataplane/runtime/workload.ts): HTTP replies
// are JSON naming the task and the address the request arrived on; the UDP echo replies
// {"task","echo"}. Anything else still counts as an answer, from an unnamed replica.
import type { HttpWorkloadReply } from '../../dataplane/runtime/workload.js';

export interface ReplicaId {
  /** the task name, or "?" when the reply does not name one */
  replica: string;
  /** the address the request arrived on, as the replica saw it */
  ip?: string;
  /** the client's address as the replica saw it (source-IP preservation) */
  remote?: string;
}

export const UNKNOWN_REPLICA = '?';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseHttpReply(body: string): ReplicaId {
  try {
    const v: unknown = JSON.parse(body);
    if (isObject(v) && typeof v.task === 'string' && v.task.length > 0) {
      const r = v as Partial<HttpWorkloadReply>;
      return { replica: v.task, ...(typeof r.ip === 'string' ? { ip: r.ip } : {}), ...(typeof r.remote === 'string' ? { remote: r.remote } : {}) };
    }
  } catch {
    // not the workload: fall through
  }
  return { replica: UNKNOWN_REPLICA };
}

/** The echo must carry our nonce back: a reply to another request (or a stray datagram) is not ours. */
export function parseUdpReply(body: string, nonce: string): ReplicaId | { mismatch: string } {
  try {
    const v: unknown = JSON.parse(body);
    if (isObject(v) && typeof v.echo === 'string') {
      if (v.echo !== nonce) return { mismatch: `echo "${v.echo.slice(0, 40)}" is not our "${nonce}"` };
      return { replica: typeof v.task === 'string' && v.task ? v.task : UNKNOWN_REPLICA };
    }
  } catch {
    // a plain echo server
  }
  return body === nonce ? { replica: UNKNOWN_REPLICA } : { mismatch: `reply "${body.slice(0, 40)}" does not echo "${nonce}"` };
}
