// Embedded service DNS: the table of service records, a pure resolver over its snapshots, upstream
// forwarding, and the per-task listeners at 127.0.0.11:53.
//
// The daemon uses one EmbeddedDns per node (embedded.ts):
//
//   const dns = new EmbeddedDns({ upstreams: readResolvConf() });      // default: /etc/resolv.conf
//   // the table, from the store (networks, services) and the gossip endpoint tables (tasks):
//   dns.upsertNetwork({ id, name, subnets });
//   dns.upsertService({ id, name, mode: 'vip' | 'dnsrr', networks: [{ network, vips, aliases }] });
//   dns.upsertTask({ id, serviceId, slot, networks: [{ network, addresses, aliases }] });  // running tasks only
//   dns.removeTask(id); dns.removeService(id); dns.removeNetwork(id);
//   dns.setTable(networks, services, tasks);                          // or: a full resync, same effect
//   // listeners, from the agent's task lifecycle:
//   await dns.attach(taskId, '/run/netns/<task ns>', [primaryNetworkId, ...]);
//   dns.setTaskNetworks(taskId, networkIds);                          // the task joined/left a network
//   await dns.detach(taskId);
//   dns.setUpstreams(upstreams); dns.stats(); await dns.close();
//
// Setters are idempotent and cheap (an equal record is a no-op); bad records throw TypeError at the
// setter. The snapshot is rebuilt lazily at the next query, once per burst of changes.
export * from './model.js';
export { DEFAULT_TTL } from './ttl.js';
export { EmbeddedDns, type EmbeddedDnsOptions, type EmbeddedDnsStats } from './embedded.js';
export { DnsTable, sameNetwork, sameService, sameTask } from './table.js';
export { validateNetwork, validateService, validateTask } from './validate.js';
export { buildSnapshot, EMPTY_SNAPSHOT, type Snapshot, type NetworkView, type RecordSet } from './snapshot.js';
export { resolve, type Resolution, type ResolveContext, type Transport } from './resolver.js';
export { Forwarder, type ForwarderOptions, type ForwardResult, type ForwardStats } from './upstream.js';
export { parseResolvConf, readResolvConf, type Upstream } from './resolvconf.js';
export { DnsServer, type DnsServerOptions, type ListenerSpec, type SnapshotSource, type Reply } from './server.js';
export { newCounters, type DnsCounters } from './counters.js';
export { buildQuery, parseQuery, RCODE, TYPE, type ParsedQuery } from './wire.js';
