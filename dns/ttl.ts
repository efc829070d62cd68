// TTL choice. Docker answers with 600 s, so any client that caches (JVM, nginx `resolver`,
// systemd-resolved, Go's and Node's caching libraries) keeps calling a dead task for up to ten minutes.
//
// - Task-derived records (dnsrr, tasks.<svc>, task names): 5 s. A task can die at any moment and our
//   gossip budget removes it in about a second; 5 s keeps a caching client's staleness in the same order
//   (CoreDNS's kubernetes plugin makes the same choice). The cost is one extra query per name per 5 s per
//   caching client, to a server on the client's own loopback: nothing.
// - Service VIPs: 10 s. A VIP survives task churn and rolling updates (the load balancer absorbs those)
//   and changes only when the service is removed and re-created, which an operator expects to see within
//   seconds, not minutes.
// - Negative answers carry no SOA, so by RFC 2308 they are not cached at all: a new service resolves
//   as soon as its first record arrives.
import type { TtlPolicy } from './model.js';

export const DEFAULT_TTL: TtlPolicy = Object.freeze({ vip: 10, task: 5 });
