// What a node publishes into a network's gossip table ("ep"): one entry per local task attachment
// and one for the node's ingress sandbox. Every node on the network turns them into FDB and
// neighbour entries (the overlay), DNS records and load-balancer backends. The wire form is JSON:
// small, and readable with `meshctl mesh table ls NETWORK` when debugging.
import { z } from 'zod';

export const ENDPOINT_TABLE = 'ep';

const ip4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/);

const TaskEndpoint = z
  .object({
    kind: z.literal('task'),
    task: z.string().max(64),
    service: z.string().max(64),
    serviceName: z.string().max(128),
    mode: z.enum(['vip', 'dnsrr']),
    /** replica slot, or the node id for global services (as task names are made) */
    slot: z.union([z.number().int(), z.string().max(64)]),
    node: z.string().max(64),
    ip: ip4,
    vtep: ip4,
    vip: ip4.optional(),
    /** the service's aliases on this network */
    aliases: z.array(z.string().max(253)).max(64),
    /** being stopped: load balancers give it no new connections (weight 0) */
    draining: z.boolean().optional(),
  })
  .strict();

const NodeEndpoint = z
  .object({
    kind: z.literal('node'),
    node: z.string().max(64),
    hostname: z.string().max(255),
    ip: ip4,
    vtep: ip4,
  })
  .strict();

export const EndpointRecord = z.discriminatedUnion('kind', [TaskEndpoint, NodeEndpoint]);
export type EndpointRecord = z.infer<typeof EndpointRecord>;
export type TaskEndpointRecord = z.infer<typeof TaskEndpoint>;
export type NodeEndpointRecord = z.infer<typeof NodeEndpoint>;

export const endpointKey = (r: EndpointRecord): string => (r.kind === 'task' ? r.task : `node:${r.node}`);

export function encodeEndpoint(r: EndpointRecord): Uint8Array {
  return Buffer.from(JSON.stringify(r), 'utf8');
}

/** undefined for anything malformed: a bad entry from one peer must not stop the others. */
export function decodeEndpoint(b: Uint8Array): EndpointRecord | undefined {
  try {
    const r = EndpointRecord.safeParse(JSON.parse(Buffer.from(b).toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
