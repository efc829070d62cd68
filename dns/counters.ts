// What the DNS server counts: enough to see load, failures and hostile traffic at a glance.
import { RCODE_NAMES } from './wire.js';

export interface DnsCounters {
  queries: { udp: number; tcp: number };
  /** Responses sent, by rcode name (NOERROR, NXDOMAIN, FORMERR, SERVFAIL, ...). */
  responses: Record<string, number>;
  /** NOERROR answers with no record (e.g. AAAA of an IPv4-only name). */
  nodata: number;
  /** UDP answers cut to the TC bit. */
  truncated: number;
  forwarded: number;
  dropped: {
    /** Shorter than a header: nothing to answer to. */
    short: number;
    /** QR set: never answer a response. */
    response: number;
    /** Bigger than any query we accept. */
    oversized: number;
    /** A TCP connection over its limits (pending queries, unread output, frame shorter than a header). */
    overload: number;
    /** The kernel would not take the reply (socket buffer full). */
    sendFailed: number;
  };
  /** Unexpected exceptions, caught so that one packet cannot stop the server. Should stay 0. */
  errors: number;
}

export function newCounters(): DnsCounters {
  return {
    queries: { udp: 0, tcp: 0 },
    responses: {},
    nodata: 0,
    truncated: 0,
    forwarded: 0,
    dropped: { short: 0, response: 0, oversized: 0, overload: 0, sendFailed: 0 },
    errors: 0,
  };
}

export function countResponse(c: DnsCounters, rcode: number): void {
  const name = RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
  c.responses[name] = (c.responses[name] ?? 0) + 1;
}
