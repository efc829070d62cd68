// Embedded service DNS: the table of service records, a pure resolver over its snapshots, upstream
// forwarding, and the per-task listeners at 127.0.0.11:53.
export * from './model.js';
export { DEFAULT_TTL } from './ttl.js';
export { DnsTable } from './table.js';
export { buildSnapshot, EMPTY_SNAPSHOT, type Snapshot, type NetworkView, type RecordSet } from './snapshot.js';
export { resolve, type Resolution, type ResolveContext, type Transport } from './resolver.js';
export { Forwarder, type ForwarderOptions, type ForwardResult, type ForwardStats } from './upstream.js';
export { parseResolvConf, readResolvConf, type Upstream } from './resolvconf.js';
export { DnsServer, type DnsServerOptions, type ListenerSpec, type SnapshotSource, type Reply } from './server.js';
export { newCounters, type DnsCounters } from './counters.js';
export { buildQuery, parseQuery, RCODE, TYPE, type ParsedQuery } from './wire.js';
